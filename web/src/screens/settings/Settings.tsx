// A project's Settings page (its managers and admins): the workflow, applying a template, what customers may do,
// and the custom fields of requests. Every change saves on its own and says so; a refusal says why and the page
// shows the state as the server has it.
import { useEffect, useState } from "preact/hooks";
import type { Project, Status, User } from "../../api";
import { t, type MessageKey } from "../../i18n";
import { listTemplates } from "../../people-api";
import {
  applyTemplate,
  getSettings,
  listRequestFields,
  listStatuses,
  mayConfigure,
  PERMISSIONS,
  updateSettings,
  type CustomerSettings,
  type Permission,
  type RequestField,
  type Template,
} from "../../workflow-api";
import { api, ApiError } from "../../api";
import { usePageLoad } from "../common/page-load";
import { PageNotReady, PageOutOfDate } from "../common/PageNotReady";
import { ProjectNav } from "../common/ProjectNav";
import { Confirm, explain, failed, Field, NoticeLine, type Notice } from "../people/ui";
import { RequestFields } from "./RequestFields";
import { Statuses } from "./Statuses";
import "./settings.css";

interface Loaded {
  project: Project;
  statuses: Status[];
  templates: Template[];
  settings: CustomerSettings;
  fields: RequestField[];
}

export function ProjectSettings({ projectId, user }: { projectId: number; user: User }) {
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const page = usePageLoad(projectId);
  const [notice, setNotice] = useState<Notice | null>(null);

  const load = async () => {
    const [project, statuses, templates, settings, fields] = await Promise.all([
      api<Project>("GET", `/api/projects/${projectId}`),
      listStatuses(projectId),
      user.role === "customer" ? Promise.resolve([]) : listTemplates(),
      getSettings(projectId),
      listRequestFields(projectId),
    ]);
    setLoaded({ project, statuses, templates, settings, fields });
  };
  // Never throws: a failure before the page is shown says so with Try again; after a change, the page stays as it
  // was, said to be possibly out of date (PageOutOfDate).
  const reload = () => page.run(load);
  useEffect(() => {
    setLoaded(null);
    void reload();
  }, [projectId]);

  if (!loaded) return <PageNotReady class="settings-page" error={page.failed} retry={reload} />;
  const { project } = loaded;
  if (!mayConfigure.project(user, project))
    return (
      <main class="page">
        <ProjectNav projectId={projectId} current="settings" />
        <h1>{project.name}</h1>
        <PageOutOfDate error={page.failed} retry={reload} />
        <p class="hint">{t("settings.readOnly")}</p>
      </main>
    );
  return (
    <main class="page settings-page">
      <ProjectNav projectId={projectId} current="settings" manages />
      <h1>
        {t("wf.title")}: {project.name}
      </h1>
      <PageOutOfDate error={page.failed} retry={reload} />
      <NoticeLine notice={notice} />
      <div class="settings-grid" data-staff-only>
        <div>
          <Statuses projectId={projectId} statuses={loaded.statuses} onNotice={setNotice} reload={reload} />
          <ApplyTemplate
            projectId={projectId}
            templates={loaded.templates}
            statuses={loaded.statuses}
            onNotice={setNotice}
            reload={reload}
          />
        </div>
        <div>
          <Permissions projectId={projectId} settings={loaded.settings} onNotice={setNotice} reload={reload} />
          <RequestFields projectId={projectId} fields={loaded.fields} onNotice={setNotice} reload={reload} />
        </div>
      </div>
    </main>
  );
}

function Permissions(props: {
  projectId: number;
  settings: CustomerSettings;
  onNotice: (notice: Notice | null) => void;
  reload: () => Promise<void>;
}) {
  const [busy, setBusy] = useState<Permission | null>(null);
  const [state, setState] = useState<Partial<Record<Permission, string>>>({});
  // What the person just chose shows at once; the server's answer (or, on failure, its state) replaces it.
  const [chosen, setChosen] = useState<Partial<Record<Permission, boolean>>>({});
  const toggle = async (permission: Permission, on: boolean) => {
    setChosen((c) => ({ ...c, [permission]: on }));
    setBusy(permission);
    setState((s) => ({ ...s, [permission]: t("common.saving") }));
    props.onNotice(null);
    try {
      await updateSettings(props.projectId, { [permission]: on });
      setState((s) => ({ ...s, [permission]: t("common.saved") }));
    } catch (err) {
      setState((s) => ({ ...s, [permission]: "" }));
      props.onNotice(failed(err));
    } finally {
      await props.reload();
      setChosen(({ [permission]: _, ...rest }) => rest);
      setBusy(null);
    }
  };
  return (
    <section class="panel-section" aria-labelledby="permissions-title">
      <h2 id="permissions-title">{t("wf.permissions")}</h2>
      <fieldset class="choices">
        <legend class="hint">{t("wf.permissionsHint")}</legend>
        {PERMISSIONS.map((permission) => (
          <label class="choice" key={permission} aria-busy={busy === permission}>
            <input
              type="checkbox"
              id={`perm-${permission}`}
              checked={chosen[permission] ?? props.settings[permission]}
              disabled={busy === permission}
              onChange={(e) => void toggle(permission, e.currentTarget.checked)}
            />
            <span>
              {t(`wf.perm.${permission}` as MessageKey)}
              <small role="status" id={`perm-${permission}-status`}>
                {state[permission] ?? ""}
              </small>
            </span>
          </label>
        ))}
      </fieldset>
    </section>
  );
}

function ApplyTemplate(props: {
  projectId: number;
  templates: Template[];
  statuses: Status[];
  onNotice: (notice: Notice | null) => void;
  reload: () => Promise<void>;
}) {
  const { templates } = props;
  const [chosen, setChosen] = useState("");
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  // Statuses the template removes that hold tasks: the API names them (409 status_in_use); the person says where.
  const [needed, setNeeded] = useState<number[]>([]);
  const [moves, setMoves] = useState<Record<string, string>>({});
  const template = templates.find((tpl) => String(tpl.id) === chosen);

  const apply = async () => {
    if (!template) return;
    setBusy(true);
    setError("");
    try {
      await applyTemplate(props.projectId, template.id, moves);
      props.onNotice({ kind: "ok", text: t("wf.applied", { name: template.name }) });
      setAsking(false);
      setNeeded([]);
      setMoves({});
    } catch (err) {
      if (err instanceof ApiError && err.code === "status_in_use") {
        const ids = err.details.map((d) => Number(d.field.split(".").pop()));
        setNeeded(ids);
        setMoves((m) => Object.fromEntries(ids.map((id) => [String(id), m[String(id)] ?? template.statuses[0].name])));
        setError(t("wf.applyNeedsMoves"));
      } else setError(explain(err).message);
    } finally {
      setBusy(false);
      await props.reload();
    }
  };

  if (!templates.length) return null;
  return (
    <section class="panel-section" aria-labelledby="template-title">
      <h2 id="template-title">{t("wf.template")}</h2>
      <p class="hint">{t("wf.templateHint")}</p>
      <div class="stack">
        <Field id="template-choice" label={t("wf.templateChoice")}>
          {(a) => (
            <select {...a} value={chosen} onChange={(e) => setChosen(e.currentTarget.value)}>
              <option value="">—</option>
              {templates.map((tpl) => (
                <option key={tpl.id} value={String(tpl.id)}>
                  {tpl.name} ({tpl.statuses.map((s) => s.name).join(", ")})
                </option>
              ))}
            </select>
          )}
        </Field>
        <div class="actions">
          <button
            type="button"
            class="secondary"
            id="apply-template"
            disabled={!template}
            onClick={() => {
              setError("");
              setNeeded([]);
              setAsking(true);
            }}
          >
            {t("wf.apply")}
          </button>
        </div>
      </div>
      {asking && template && (
        <Confirm
          title={t("wf.applyTitle", { name: template.name })}
          body={t("wf.applyBody")}
          action={t("wf.apply")}
          busy={busy}
          error={error}
          onConfirm={() => void apply()}
          onClose={() => setAsking(false)}
        >
          {needed.map((id) => {
            const status = props.statuses.find((s) => s.id === id);
            return (
              <Field key={id} id={`apply-move-${id}`} label={t("wf.moveTasksOf", { name: status?.name ?? String(id) })}>
                {(a) => (
                  <select
                    {...a}
                    value={moves[String(id)]}
                    onChange={(e) => setMoves((m) => ({ ...m, [String(id)]: e.currentTarget.value }))}
                  >
                    {template.statuses.map((s) => (
                      <option key={s.name} value={s.name}>
                        {s.name}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
            );
          })}
        </Confirm>
      )}
    </section>
  );
}
