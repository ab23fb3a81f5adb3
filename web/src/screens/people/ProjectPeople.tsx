// A project's People page: who is on it, inviting someone by email, pending invitations (copy link, resend,
// revoke), and for its managers the project's name, description, archiving and deletion.
import { useEffect, useState } from "preact/hooks";
import type { User } from "../../api";
import { t } from "../../i18n";
import {
  changeMember,
  listMembers,
  listPendingInvites,
  getProject,
  may,
  removeMember,
  revokeInvite,
  resendInvite,
  type Invite,
  type Member,
  type ProjectDetails,
  type ProjectRole,
} from "../../people-api";
import { usePageLoad } from "../common/page-load";
import { PageNotReady, PageOutOfDate } from "../common/PageNotReady";
import { ProjectNav } from "../common/ProjectNav";
import { InviteForm } from "./InviteForm";
import { ProjectDetailsPanel } from "./ProjectDetailsPanel";
import { Confirm, CopyLink, explain, failed, formatDateTime, NoticeLine, roleName, type Notice } from "./ui";

export function ProjectPeople({ projectId, user }: { projectId: number; user: User }) {
  const [project, setProject] = useState<ProjectDetails | null>(null);
  const [members, setMembers] = useState<Member[]>([]);
  const [pending, setPending] = useState<Invite[]>([]);
  const page = usePageLoad(projectId);
  const [notice, setNotice] = useState<Notice | null>(null);

  const load = async () => {
    const loaded = await getProject(projectId);
    const manage = may.manageProject(user, loaded);
    const [people, invites] = await Promise.all([
      listMembers(projectId),
      manage ? listPendingInvites(projectId) : Promise.resolve([]),
    ]);
    setProject(loaded);
    setMembers(people);
    setPending(invites);
  };
  // Never throws: a failure before the page is shown says so with Try again; after a change, the page stays as it
  // was, said to be possibly out of date (PageOutOfDate).
  const reload = () => page.run(load);
  useEffect(() => {
    setProject(null);
    void reload();
  }, [projectId]);

  if (!project) return <PageNotReady class="people-page" error={page.failed} retry={reload} />;
  const manage = may.manageProject(user, project);
  return (
    <main class="page people-page">
      <ProjectNav projectId={projectId} current="people" manages={manage} />
      <h1>
        {project.name}
        {project.archived && <span class="tag tag-muted">{t("home.archived")}</span>}
      </h1>
      <p class="muted">
        {project.client_name}
        {project.description ? ` · ${project.description}` : ""}
      </p>
      <PageOutOfDate error={page.failed} retry={reload} />
      <NoticeLine notice={notice} />
      {/* Inviting comes first (on a phone too), with its pending invitations; then who is on it, and the project. */}
      <div class={manage ? "people-grid" : undefined}>
        <div data-staff-only={manage || undefined}>
          {manage && <InviteForm project={project} user={user} onInvited={reload} />}
          {manage && <PendingInvites invites={pending} onNotice={setNotice} reload={reload} />}
        </div>
        <div>
          <Members
            project={project}
            members={members}
            user={user}
            manage={manage}
            onNotice={setNotice}
            reload={reload}
          />
          {manage ? (
            <ProjectDetailsPanel project={project} user={user} onChanged={setProject} onNotice={setNotice} />
          ) : (
            <p class="hint">{t("settings.readOnly")}</p>
          )}
        </div>
      </div>
    </main>
  );
}

function Members(props: {
  project: ProjectDetails;
  members: Member[];
  user: User;
  manage: boolean;
  onNotice: (notice: Notice | null) => void;
  reload: () => Promise<void>;
}) {
  const { project, members, user, manage, onNotice, reload } = props;
  const [busy, setBusy] = useState<number | null>(null);
  const [removing, setRemoving] = useState<Member | null>(null);
  const [removeError, setRemoveError] = useState("");

  const changeRole = async (member: Member, role: ProjectRole) => {
    setBusy(member.user_id);
    onNotice(null);
    try {
      await changeMember(project.id, member.user_id, role);
      onNotice({ kind: "ok", text: t("people.roleChanged", { name: member.name, role: roleName(role) }) });
    } catch (err) {
      onNotice(failed(err));
    } finally {
      await reload();
      setBusy(null);
    }
  };

  const remove = async () => {
    if (!removing) return;
    setBusy(removing.user_id);
    setRemoveError("");
    try {
      await removeMember(project.id, removing.user_id);
      onNotice({ kind: "ok", text: t("people.removed", { name: removing.name }) });
      setRemoving(null);
      await reload();
    } catch (err) {
      setRemoveError(explain(err).message);
      await reload();
    } finally {
      setBusy(null);
    }
  };

  return (
    <section class="panel-section" aria-labelledby="members-title">
      <h2 id="members-title">{t("people.members")}</h2>
      {members.length === 0 ? (
        <p class="empty">{t("people.noMembers")}</p>
      ) : (
        <ul class="rows members">
          {members.map((member) => (
            <li class="member" key={member.user_id} data-user-id={member.user_id} aria-busy={busy === member.user_id}>
              <span class="row-who">
                <strong>{member.name}</strong> {member.user_id === user.id && t("people.you")}
                {member.is_customer && <span class="tag">{t("people.customerTag")}</span>}
                {member.email && <small>{member.email}</small>}
              </span>
              {manage ? (
                <span class="row-controls" data-staff-only>
                  <select
                    aria-label={t("people.roleOf", { name: member.name })}
                    value={member.role}
                    disabled={busy === member.user_id}
                    onChange={(e) => void changeRole(member, e.currentTarget.value as ProjectRole)}
                  >
                    {may.rolesFor(member).map((role) => (
                      <option key={role} value={role}>
                        {roleName(role)}
                      </option>
                    ))}
                  </select>
                  {busy === member.user_id && <span class="muted">{t("common.saving")}</span>}
                  <button
                    type="button"
                    class="secondary danger-quiet"
                    aria-label={t("people.removeOf", { name: member.name })}
                    disabled={busy === member.user_id}
                    onClick={() => {
                      setRemoveError("");
                      setRemoving(member);
                    }}
                  >
                    {t("people.remove")}
                  </button>
                </span>
              ) : (
                <span class="muted">{roleName(member.role)}</span>
              )}
            </li>
          ))}
        </ul>
      )}
      {removing && (
        <Confirm
          title={t("people.removeOf", { name: removing.name })}
          body={t("people.confirmRemove", { name: removing.name, project: project.name })}
          action={t("people.remove")}
          busy={busy === removing.user_id}
          error={removeError}
          onConfirm={() => void remove()}
          onClose={() => setRemoving(null)}
        />
      )}
    </section>
  );
}

function PendingInvites(props: {
  invites: Invite[];
  onNotice: (notice: Notice | null) => void;
  reload: () => Promise<void>;
}) {
  const { invites, onNotice, reload } = props;
  const [busy, setBusy] = useState<number | null>(null);
  const [links, setLinks] = useState<Record<number, string>>({});
  const [revoking, setRevoking] = useState<Invite | null>(null);
  const [revokeError, setRevokeError] = useState("");

  const resend = async (invite: Invite) => {
    setBusy(invite.id);
    onNotice(null);
    try {
      const result = await resendInvite(invite.id);
      if (result.link) setLinks((known) => ({ ...known, [invite.id]: result.link! }));
      else onNotice({ kind: "ok", text: t("people.resent", { email: invite.email }) });
      await reload();
    } catch (err) {
      onNotice(failed(err));
      await reload();
    } finally {
      setBusy(null);
    }
  };

  const revoke = async () => {
    if (!revoking) return;
    setBusy(revoking.id);
    setRevokeError("");
    try {
      await revokeInvite(revoking.id);
      onNotice({ kind: "ok", text: t("people.revoked", { email: revoking.email }) });
      setRevoking(null);
    } catch (err) {
      setRevokeError(explain(err).message);
    } finally {
      setBusy(null);
      await reload();
    }
  };

  const now = Date.now();
  return (
    <section class="panel-section" aria-labelledby="pending-title">
      <h2 id="pending-title">{t("people.pending")}</h2>
      {invites.length === 0 ? (
        <p class="empty">{t("people.noPending")}</p>
      ) : (
        <>
          <p class="hint">{t("people.linkHint")}</p>
          <ul class="rows">
            {invites.map((invite) => {
              const expired = new Date(invite.expires_at).getTime() <= now;
              return (
                <li class="pending-invite" key={invite.id} data-invite-id={invite.id} aria-busy={busy === invite.id}>
                  <span class="row-who">
                    <strong>{invite.email}</strong>
                    <small>
                      {roleName(invite.role)} ·{" "}
                      {expired ? t("people.expired") : t("people.expires", { date: formatDateTime(invite.expires_at) })}
                    </small>
                  </span>
                  <span class="row-controls">
                    <button
                      type="button"
                      class="secondary resend"
                      aria-label={t("people.resendOf", { email: invite.email })}
                      disabled={busy === invite.id}
                      onClick={() => void resend(invite)}
                    >
                      {busy === invite.id ? t("common.working") : t("people.resend")}
                    </button>
                    <button
                      type="button"
                      class="secondary danger-quiet revoke"
                      aria-label={t("people.revokeOf", { email: invite.email })}
                      disabled={busy === invite.id}
                      onClick={() => {
                        setRevokeError("");
                        setRevoking(invite);
                      }}
                    >
                      {t("people.revoke")}
                    </button>
                  </span>
                  {links[invite.id] && (
                    <div class="row-link" role="status">
                      <p class="hint">{t("people.invitedLink", { email: invite.email })}</p>
                      <CopyLink id={`invite-link-${invite.id}`} link={links[invite.id]} label={invite.email} />
                    </div>
                  )}
                </li>
              );
            })}
          </ul>
        </>
      )}
      {revoking && (
        <Confirm
          title={t("people.revokeOf", { email: revoking.email })}
          body={t("people.confirmRevoke", { email: revoking.email })}
          action={t("people.revoke")}
          busy={busy === revoking.id}
          error={revokeError}
          onConfirm={() => void revoke()}
          onClose={() => setRevoking(null)}
        />
      )}
    </section>
  );
}
