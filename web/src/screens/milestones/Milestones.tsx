// A project's milestones (staff): create, rename, date, share or make internal (asked first: it changes who sees
// it), complete (a shared milestone's completion asks the customers for feedback: the row then says so), delete.
import { useEffect, useState } from "preact/hooks";
import { api, type Milestone, type Project, type User } from "../../api";
import { formatDate, t, tn } from "../../i18n";
import {
  createMilestone,
  deleteMilestone,
  listMilestones,
  mayConfigure,
  updateMilestone,
} from "../../workflow-api";
import { usePageLoad } from "../common/page-load";
import { PageNotReady, PageOutOfDate } from "../common/PageNotReady";
import { ProjectNav } from "../common/ProjectNav";
import { Confirm, explain, failed, Field, NoticeLine, type FieldErrors, type Notice } from "../people/ui";
import "../settings/settings.css";

interface FeedbackRequest {
  id: number;
  milestone_id: number | null;
  answers: number;
}

type Asking =
  | { kind: "share" | "unshare" | "delete"; milestone: Milestone }
  | null;

export function Milestones({ projectId, user }: { projectId: number; user: User }) {
  const [project, setProject] = useState<Project | null>(null);
  const [milestones, setMilestones] = useState<Milestone[]>([]);
  const [asked, setAsked] = useState<FeedbackRequest[]>([]);
  const page = usePageLoad(projectId);
  const [notice, setNotice] = useState<Notice | null>(null);
  const [busy, setBusy] = useState<number | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [saved, setSaved] = useState<Record<number, string>>({});
  const [asking, setAsking] = useState<Asking>(null);
  const [askError, setAskError] = useState("");

  const load = async () => {
    const [p, items, feedback] = await Promise.all([
      api<Project>("GET", `/api/projects/${projectId}`),
      listMilestones(projectId),
      api<{ items: FeedbackRequest[] }>("GET", `/api/projects/${projectId}/feedback/requests`),
    ]);
    setProject(p);
    setMilestones(items);
    setAsked(feedback.items);
  };
  // Never throws: a failure before the page is shown says so with Try again; after a change, the page stays as it
  // was, said to be possibly out of date (PageOutOfDate).
  const reload = () => page.run(load);
  useEffect(() => {
    setProject(null);
    void reload();
  }, [projectId]);

  const change = async (milestone: Milestone, field: string, body: Parameters<typeof updateMilestone>[1]) => {
    const key = `${milestone.id}.${field}`;
    setErrors(({ [key]: _, ...rest }) => rest);
    setBusy(milestone.id);
    setSaved((s) => ({ ...s, [milestone.id]: t("common.saving") }));
    setNotice(null);
    try {
      const updated = await updateMilestone(milestone.id, body);
      setMilestones((all) => all.map((m) => (m.id === updated.id ? updated : m))); // the answer first, then a refetch
      setSaved((s) => ({ ...s, [milestone.id]: t("common.saved") }));
      if (body.completed && updated.visibility === "shared")
        setNotice({ kind: "ok", text: t("ms.completedAsked", { name: updated.name }) });
      else if (body.completed !== undefined)
        setNotice({ kind: "ok", text: t(body.completed ? "ms.completed" : "ms.reopened", { name: updated.name }) });
      return true;
    } catch (err) {
      const { fields, message } = explain(err);
      setErrors((e) => ({ ...e, [key]: fields[field] ?? message }));
      setSaved((s) => ({ ...s, [milestone.id]: "" }));
      setNotice(failed(err));
      return false;
    } finally {
      setBusy(null);
      await reload();
    }
  };

  const rename = (milestone: Milestone, value: string) => {
    const name = value.trim();
    if (name === milestone.name) return;
    const key = `${milestone.id}.name`;
    if (!name || name.length > 200) {
      setErrors((e) => ({ ...e, [key]: name ? "≤ 200" : t("common.required") }));
      return;
    }
    void change(milestone, "name", { name });
  };

  const confirmAsked = async () => {
    if (!asking) return;
    setAskError("");
    const { kind, milestone } = asking;
    setBusy(milestone.id);
    try {
      if (kind === "delete") {
        await deleteMilestone(milestone.id);
        setNotice({ kind: "ok", text: t("ms.deleted", { name: milestone.name }) });
      } else {
        await updateMilestone(milestone.id, { visibility: kind === "share" ? "shared" : "internal" });
        setNotice({ kind: "ok", text: t(kind === "share" ? "ms.shared" : "ms.unshared", { name: milestone.name }) });
      }
      setAsking(null);
    } catch (err) {
      setAskError(explain(err).message);
    } finally {
      setBusy(null);
      await reload();
    }
  };

  if (!project) return <PageNotReady class="milestones-page" error={page.failed} retry={reload} />;
  const manage = mayConfigure.milestones(user);
  return (
    <main class="page milestones-page">
      <ProjectNav projectId={projectId} current="milestones" manages={mayConfigure.project(user, project)} />
      <h1>
        {t("ms.title")}: {project.name}
      </h1>
      <PageOutOfDate error={page.failed} retry={reload} />
      <NoticeLine notice={notice} />
      <section class="panel-section" aria-labelledby="milestones-title">
        <h2 id="milestones-title">{t("ms.title")}</h2>
        {milestones.length === 0 ? (
          <p class="empty">{t("ms.none")}</p>
        ) : (
          <ul class="rows milestones">
            {milestones.map((m) => {
              const id = `milestone-${m.id}`;
              const request = asked.find((r) => r.milestone_id === m.id);
              const shared = m.visibility === "shared";
              return (
                <li
                  key={m.id}
                  class={`milestone-row${m.completed_at ? " completed" : ""}${shared ? "" : " card-internal"}`}
                  data-milestone-id={m.id}
                  data-visibility={m.visibility}
                  aria-busy={busy === m.id}
                >
                  {manage ? (
                    <div class="status-fields" data-staff-only>
                      <Field id={`${id}-name`} label={t("ms.name")} error={errors[`${m.id}.name`]}>
                        {(a) => (
                          <input
                            {...a}
                            value={m.name}
                            maxLength={200}
                            onBlur={(e) => rename(m, e.currentTarget.value)}
                            onKeyDown={(e) => e.key === "Enter" && rename(m, e.currentTarget.value)}
                          />
                        )}
                      </Field>
                      <Field id={`${id}-due`} label={t("ms.due")} error={errors[`${m.id}.due_date`]}>
                        {(a) => (
                          <input
                            {...a}
                            type="date"
                            value={m.due_date ?? ""}
                            onChange={(e) => void change(m, "due_date", { due_date: e.currentTarget.value || null })}
                          />
                        )}
                      </Field>
                    </div>
                  ) : (
                    <span class="row-who">
                      <strong>{m.name}</strong>
                      {m.due_date && <small>{formatDate(m.due_date)}</small>}
                    </span>
                  )}
                  <span class="row-who">
                    <span class={shared ? "tag" : "tag-internal"}>
                      {shared ? t("ms.sharedTag") : `🔒 ${t("ms.internalTag")}`}
                    </span>
                    {m.completed_at && <span class="tag tag-muted">✓ {t("ms.done")}</span>}
                    {request && (
                      <small class="milestone-asked">
                        {tn("ms.asked", request.answers)}
                      </small>
                    )}
                  </span>
                  {manage && (
                    <span class="row-controls" data-staff-only>
                      <button
                        type="button"
                        class="secondary complete"
                        aria-label={t(m.completed_at ? "ms.reopenOf" : "ms.completeOf", { name: m.name })}
                        disabled={busy === m.id}
                        onClick={() => void change(m, "completed", { completed: !m.completed_at })}
                      >
                        {m.completed_at ? t("ms.reopen") : t("ms.complete")}
                      </button>
                      <button
                        type="button"
                        class="secondary visibility"
                        aria-label={t(shared ? "ms.unshareOf" : "ms.shareOf", { name: m.name })}
                        disabled={busy === m.id}
                        onClick={() => {
                          setAskError("");
                          setAsking({ kind: shared ? "unshare" : "share", milestone: m });
                        }}
                      >
                        {shared ? t("ms.unshare") : t("ms.share")}
                      </button>
                      <button
                        type="button"
                        class="secondary danger-quiet"
                        aria-label={t("ms.deleteOf", { name: m.name })}
                        disabled={busy === m.id}
                        onClick={() => {
                          setAskError("");
                          setAsking({ kind: "delete", milestone: m });
                        }}
                      >
                        {t("ms.delete")}
                      </button>
                      <span class="muted" role="status" id={`${id}-status`}>
                        {saved[m.id] ?? ""}
                      </span>
                    </span>
                  )}
                </li>
              );
            })}
          </ul>
        )}
        {manage && <AddMilestone projectId={projectId} onNotice={setNotice} reload={reload} />}
      </section>
      {asking && (
        <Confirm
          title={t(
            asking.kind === "delete" ? "ms.deleteOf" : asking.kind === "share" ? "ms.shareOf" : "ms.unshareOf",
            { name: asking.milestone.name },
          )}
          body={t(
            asking.kind === "delete" ? "ms.confirmDelete" : asking.kind === "share" ? "ms.confirmShare" : "ms.confirmUnshare",
            { name: asking.milestone.name },
          )}
          action={t(asking.kind === "delete" ? "ms.delete" : asking.kind === "share" ? "ms.share" : "ms.unshare")}
          busy={busy === asking.milestone.id}
          error={askError}
          onConfirm={() => void confirmAsked()}
          onClose={() => setAsking(null)}
        />
      )}
    </main>
  );
}

function AddMilestone(props: { projectId: number; onNotice: (n: Notice | null) => void; reload: () => Promise<void> }) {
  const [name, setName] = useState("");
  const [due, setDue] = useState("");
  const [shared, setShared] = useState(false);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const trimmed = name.trim();
    if (!trimmed || trimmed.length > 200) {
      setErrors({ name: trimmed ? "≤ 200" : t("common.required") });
      return;
    }
    setErrors({});
    setBusy(true);
    props.onNotice(null);
    try {
      const created = await createMilestone(props.projectId, {
        name: trimmed,
        due_date: due || null,
        visibility: shared ? "shared" : "internal",
      });
      props.onNotice({ kind: "ok", text: t("ms.added", { name: created.name }) });
      setName("");
      setDue("");
    } catch (err) {
      setErrors(explain(err).fields);
      props.onNotice(failed(err));
    } finally {
      setBusy(false);
      await props.reload();
    }
  };
  return (
    <form class="stack" onSubmit={submit} noValidate aria-labelledby="add-milestone-title" data-staff-only>
      <h3 id="add-milestone-title">{t("ms.add")}</h3>
      <div class="status-fields">
        <Field id="new-milestone-name" label={t("ms.name")} error={errors.name}>
          {(a) => <input {...a} value={name} maxLength={200} onInput={(e) => setName(e.currentTarget.value)} />}
        </Field>
        <Field id="new-milestone-due" label={t("ms.due")} error={errors.due_date}>
          {(a) => <input {...a} type="date" value={due} onInput={(e) => setDue(e.currentTarget.value)} />}
        </Field>
      </div>
      <label class="choice">
        <input type="checkbox" id="new-milestone-shared" checked={shared} onChange={(e) => setShared(e.currentTarget.checked)} />
        <span>
          {t("ms.shareNew")}
          <small>{t("ms.shareNewHint")}</small>
        </span>
      </label>
      <div class="actions">
        <button type="submit" class="primary" id="add-milestone" aria-busy={busy} disabled={busy}>
          {busy ? t("common.saving") : t("ms.addButton")}
        </button>
      </div>
    </form>
  );
}
