// Clients & staff: the organization's customer companies (admins add and rename them) and its staff (owners
// change a colleague's role or access). Staff see both lists; what they may not change is not offered.
import { useEffect, useState } from "preact/hooks";
import type { User } from "../../api";
import { t, tn } from "../../i18n";
import { SecondFactorPolicy } from "./SecondFactorPolicy";
import {
  changeStaff,
  createClient,
  listClients,
  listProjects,
  listStaff,
  may,
  renameClient,
  type Client,
  type StaffPerson,
} from "../../people-api";
import { SignInSettings } from "./SignInSettings";
import { PageNotReady, PageOutOfDate } from "../common/PageNotReady";
import { usePageLoad } from "../common/page-load";
import { checkName, Confirm, explain, failed, Field, NoticeLine, roleName, type FieldErrors, type Notice } from "../people/ui";

export function Organization({ user }: { user: User }) {
  const [clients, setClients] = useState<Client[] | null>(null);
  const [projectCounts, setProjectCounts] = useState<Record<number, number>>({});
  const [staff, setStaff] = useState<StaffPerson[]>([]);
  const [notice, setNotice] = useState<Notice | null>(null);
  const page = usePageLoad();

  const load = async () => {
    const [loadedClients, projects, people] = await Promise.all([listClients(), listProjects(), listStaff()]);
    const counts: Record<number, number> = {};
    for (const project of projects) counts[project.client_id] = (counts[project.client_id] ?? 0) + 1;
    setClients(loadedClients);
    setProjectCounts(counts);
    setStaff(people);
  };
  // Never throws: a failure before the page is shown says so with Try again; after a change, the page stays as it
  // was, said to be possibly out of date (PageOutOfDate).
  const reload = () => page.run(load);
  useEffect(() => {
    void reload();
  }, []);

  if (!clients) return <PageNotReady class="organization-page" error={page.failed} retry={reload} />;
  return (
    <main class="page organization-page">
      <h1>{t("org.title")}</h1>
      <PageOutOfDate error={page.failed} retry={reload} />
      <NoticeLine notice={notice} />
      <div class="people-grid">
        <Clients clients={clients} counts={projectCounts} user={user} onNotice={setNotice} reload={reload} />
        <Staff staff={staff} user={user} onNotice={setNotice} reload={reload} />
      </div>
      <SignInSettings user={user} />
      {user.role === "owner" && <SecondFactorPolicy />}
    </main>
  );
}

function Clients(props: {
  clients: Client[];
  counts: Record<number, number>;
  user: User;
  onNotice: (notice: Notice | null) => void;
  reload: () => Promise<void>;
}) {
  const { clients, counts, user, onNotice, reload } = props;
  const manage = may.manageClients(user);
  const [name, setName] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);

  const add = async (event: Event) => {
    event.preventDefault();
    const problem = checkName(name);
    setErrors(problem ? { name: problem } : {});
    if (problem) return;
    setBusy(true);
    onNotice(null);
    try {
      await createClient(name.trim());
      setName("");
    } catch (err) {
      setErrors(explain(err).fields);
      onNotice(failed(err));
    } finally {
      setBusy(false);
      await reload();
    }
  };

  return (
    <section class="panel-section" aria-labelledby="clients-title">
      <h2 id="clients-title">{t("org.clients")}</h2>
      {clients.length === 0 ? (
        <p class="empty">{t("org.noClients")}</p>
      ) : (
        <ul class="rows">
          {clients.map((client) => (
            <ClientRow
              key={client.id}
              client={client}
              count={counts[client.id] ?? 0}
              manage={manage}
              onNotice={onNotice}
              reload={reload}
            />
          ))}
        </ul>
      )}
      {manage && (
        <form class="stack add-client" data-staff-only onSubmit={add} noValidate>
          <Field id="new-client-name" label={t("org.clientName")} error={errors.name}>
            {(a) => <input {...a} maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
          </Field>
          <div class="actions">
            <button type="submit" id="add-client" class="primary" disabled={busy} aria-busy={busy}>
              {busy ? t("org.adding") : t("org.addClient")}
            </button>
          </div>
        </form>
      )}
    </section>
  );
}

function ClientRow(props: {
  client: Client;
  count: number;
  manage: boolean;
  onNotice: (notice: Notice | null) => void;
  reload: () => Promise<void>;
}) {
  const { client, count, manage, onNotice, reload } = props;
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(client.name);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const inputId = `client-name-${client.id}`;

  const save = async (event: Event) => {
    event.preventDefault();
    const problem = checkName(name);
    setError(problem);
    if (problem) return;
    setBusy(true);
    onNotice(null);
    try {
      await renameClient(client.id, name.trim());
      setEditing(false);
      onNotice({ kind: "ok", text: t("common.saved") });
    } catch (err) {
      setError(explain(err).fields.name ?? "");
      onNotice(failed(err));
    } finally {
      setBusy(false);
      await reload();
    }
  };

  return (
    <li class="client" data-client-id={client.id}>
      {editing ? (
        <form class="row-who actions" onSubmit={save} noValidate>
          <Field id={inputId} label={t("org.renameOf", { name: client.name })} error={error}>
            {(a) => <input {...a} maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
          </Field>
          <button type="submit" class="primary" disabled={busy} aria-busy={busy}>
            {busy ? t("common.saving") : t("common.save")}
          </button>
          <button
            type="button"
            class="secondary"
            onClick={() => {
              setEditing(false);
              setName(client.name);
              setError("");
            }}
          >
            {t("common.cancel")}
          </button>
        </form>
      ) : (
        <>
          <span class="row-who">
            <strong>{client.name}</strong>
            <small>{tn("org.projectsOf", count)}</small>
          </span>
          {manage && (
            <span class="row-controls" data-staff-only>
              <button
                type="button"
                class="secondary"
                aria-label={t("org.renameOf", { name: client.name })}
                onClick={() => setEditing(true)}
              >
                {t("org.rename")}
              </button>
            </span>
          )}
        </>
      )}
    </li>
  );
}

function Staff(props: {
  staff: StaffPerson[];
  user: User;
  onNotice: (notice: Notice | null) => void;
  reload: () => Promise<void>;
}) {
  const { staff, user, onNotice, reload } = props;
  const manage = may.manageStaff(user);
  const [busy, setBusy] = useState<number | null>(null);
  const [deactivating, setDeactivating] = useState<StaffPerson | null>(null);
  const [confirmError, setConfirmError] = useState("");

  const change = async (person: StaffPerson, change: { role?: "admin" | "staff"; active?: boolean }) => {
    setBusy(person.id);
    onNotice(null);
    try {
      await changeStaff(person.id, change);
      onNotice({ kind: "ok", text: t("common.saved") });
      setDeactivating(null);
    } catch (err) {
      if (deactivating) setConfirmError(explain(err).message);
      onNotice(failed(err));
    } finally {
      setBusy(null);
      await reload();
    }
  };

  return (
    <section class="panel-section" aria-labelledby="staff-title">
      <h2 id="staff-title">{t("org.staff")}</h2>
      <p class="hint">{manage ? t("org.staffHint") : t("org.ownersOnly")}</p>
      <ul class="rows">
        {staff.map((person) => {
          const changeable = manage && person.role !== "owner" && person.id !== user.id;
          return (
            <li class="staff-person" key={person.id} data-user-id={person.id} aria-busy={busy === person.id}>
              <span class="row-who">
                <strong>{person.name}</strong> {person.id === user.id && t("people.you")}
                {!person.active && <span class="tag tag-muted">{t("org.inactive")}</span>}
                <small>{person.email}</small>
              </span>
              <span class="row-controls">
                {changeable ? (
                  <>
                    <select
                      aria-label={t("org.orgRoleOf", { name: person.name })}
                      value={person.role}
                      disabled={busy === person.id}
                      onChange={(e) => void change(person, { role: e.currentTarget.value as "admin" | "staff" })}
                    >
                      {(["staff", "admin"] as const).map((role) => (
                        <option key={role} value={role}>
                          {roleName(role)}
                        </option>
                      ))}
                    </select>
                    {busy === person.id && <span class="muted">{t("common.saving")}</span>}
                    {person.active ? (
                      <button
                        type="button"
                        class="secondary danger-quiet"
                        aria-label={t("org.deactivateOf", { name: person.name })}
                        disabled={busy === person.id}
                        onClick={() => {
                          setConfirmError("");
                          setDeactivating(person);
                        }}
                      >
                        {t("org.deactivate")}
                      </button>
                    ) : (
                      <button
                        type="button"
                        class="secondary"
                        aria-label={t("org.reactivateOf", { name: person.name })}
                        disabled={busy === person.id}
                        onClick={() => void change(person, { active: true })}
                      >
                        {t("org.reactivate")}
                      </button>
                    )}
                  </>
                ) : (
                  <span class="muted">{roleName(person.role)}</span>
                )}
              </span>
            </li>
          );
        })}
      </ul>
      {deactivating && (
        <Confirm
          title={t("org.deactivateOf", { name: deactivating.name })}
          body={t("org.confirmDeactivate", { name: deactivating.name })}
          action={t("org.deactivate")}
          busy={busy === deactivating.id}
          error={confirmError}
          onConfirm={() => void change(deactivating, { active: false })}
          onClose={() => setDeactivating(null)}
        />
      )}
    </section>
  );
}
