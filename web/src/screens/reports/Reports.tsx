// A project's live report: health, KPI tiles, charts, a pivot table and customer feedback. Staff see the staff
// numbers and may preview what the customer sees; customers get numbers computed from shared items only (the API
// decides). The snapshot follows `report:project:{id}:{audience}` live.
import { useEffect, useState } from "preact/hooks";
import { api, type Project, type User } from "../../api";
import { liveClient } from "../../app/session";
import { t, type MessageKey } from "../../i18n";
import { usePageLoad } from "../common/page-load";
import { PageNotReady, PageOutOfDate } from "../common/PageNotReady";
import { ProjectNav } from "../common/ProjectNav";
import { Chart } from "./Chart";
import { Feedback } from "./Feedback";
import { HealthBadge } from "./HealthBadge";
import { kpiTiles, pivotPath, TASK_DIMENSIONS, type Kpis, type PivotOut } from "./kpis";
import "./reports.css";

const CATEGORIES = ["todo", "active", "blocked", "done"];

export function Reports({ projectId, who }: { projectId: number; who: User }) {
  const staff = who.role !== "customer";
  const [audience, setAudience] = useState<"staff" | "shared">(staff ? "staff" : "shared");
  const [project, setProject] = useState<Project | null>(null);
  const [kpis, setKpis] = useState<Kpis | null>(null);
  // The project and the numbers load apart (the numbers again for each audience); each keeps its own failure, so
  // one that succeeds never hides the other's.
  const projectLoad = usePageLoad(projectId);
  const kpiLoad = usePageLoad(`${projectId}/${audience}`);
  const loadProject = async () => setProject(await api<Project>("GET", `/api/projects/${projectId}`));
  const loadKpis = async () => setKpis(await api<Kpis>("GET", `/api/projects/${projectId}/reports/kpis?audience=${audience}`));
  const failed = projectLoad.failed || kpiLoad.failed;
  const retry = () =>
    Promise.all([projectLoad.failed && projectLoad.run(loadProject), kpiLoad.failed && kpiLoad.run(loadKpis)]);

  useEffect(() => void projectLoad.run(loadProject), [projectId]);

  useEffect(() => {
    void kpiLoad.run(loadKpis);
    // Snapshots are computed once per audience on the server and replace what we hold.
    return liveClient().subscribe(`report:project:${projectId}:${audience}`, (message) => {
      if (message.kind === "reload") return void kpiLoad.run(loadKpis);
      if (message.kind !== "event") return;
      const data = message.event.data as { type?: string; kpis?: Kpis };
      if (data.type === "kpi.changed" && data.kpis) setKpis(data.kpis);
    });
  }, [projectId, audience]);

  if (!project || !kpis) return <PageNotReady class="reports" error={failed} retry={retry} />;
  const k = kpis;
  const categories = CATEGORIES.map((c) => t(`reports.category.${c}` as MessageKey));
  return (
    <main class="page reports">
      <ProjectNav projectId={projectId} current="reports" />
      <h1>{t("reports.title", { project: project.name })}</h1>
      <PageOutOfDate error={failed} retry={retry} />
      {staff && (
        <p class="report-tools" data-staff-only>
          <label for="preview-customer" class="choice">
            <input
              type="checkbox"
              id="preview-customer"
              checked={audience === "shared"}
              onChange={(e) => setAudience(e.currentTarget.checked ? "shared" : "staff")}
            />{" "}
            {t("reports.preview")}
          </label>{" "}
          <a href="/reports">{t("reports.portfolio")}</a>
        </p>
      )}
      <p class="kpi-health">
        <HealthBadge health={k.health} /> {k.health_reasons.map((r) => t(`reports.reason.${r}` as MessageKey)).join(" · ")}
      </p>
      <dl class="kpi-tiles" aria-live="polite">
        {kpiTiles(k).map(([key, value]) => (
          <div class="kpi" key={key}>
            <dt>{t(key)}</dt>
            <dd>{value}</dd>
          </div>
        ))}
      </dl>
      <p>
        <a class="button" download="" href={`/api/projects/${projectId}/reports/kpis?audience=${audience}&format=csv`}>
          {t("reports.csv")}
        </a>
      </p>
      <div class="charts">
        <Chart
          id="chart-categories"
          title={t("reports.byCategory")}
          kind="bar"
          labels={categories}
          series={[{ label: t("reports.tasks"), values: CATEGORIES.map((c) => k.by_category[c] ?? 0) }]}
        />
        <Chart
          id="chart-burnup"
          title={t("reports.burnup")}
          kind="line"
          labels={k.burnup.map((p) => p.week)}
          series={[
            { label: t("reports.scope"), values: k.burnup.map((p) => p.scope) },
            { label: t("reports.done"), values: k.burnup.map((p) => p.done), colour: "--done" },
          ]}
        />
        <Chart
          id="chart-milestones"
          title={t("reports.byMilestone")}
          kind="bar"
          horizontal
          stacked
          labels={k.by_milestone.map((m) => m.name || t("reports.noMilestone"))}
          series={[
            { label: t("reports.done"), values: k.by_milestone.map((m) => m.done), colour: "--done" },
            { label: t("reports.open"), values: k.by_milestone.map((m) => m.total - m.done) },
          ]}
        />
      </div>
      <Pivot projectId={projectId} audience={audience} version={k} />
      <Feedback projectId={projectId} staff={staff} projectRole={project.my_role} />
    </main>
  );
}

/** Tasks grouped by one dimension; drawn again whenever the snapshot changes (`version`). */
function Pivot(props: { projectId: number; audience: string; version: unknown }) {
  const [dimension, setDimension] = useState("status");
  const [result, setResult] = useState<PivotOut | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    api<PivotOut>("GET", pivotPath(props.projectId, [dimension], props.audience)).then(
      (r) => (setResult(r), setError("")),
      () => setError(t("reports.pivotFailed")),
    );
  }, [props.projectId, props.audience, dimension, props.version]);
  return (
    <section class="pivot" aria-labelledby="pivot-title">
      <h2 id="pivot-title">{t("reports.pivot")}</h2>
      <p class="pivot-tools">
        <label for="pivot-dimension">{t("reports.groupBy")}</label>{" "}
        <select id="pivot-dimension" value={dimension} onChange={(e) => setDimension(e.currentTarget.value)}>
          {TASK_DIMENSIONS.map((d) => (
            <option key={d} value={d}>
              {t(`reports.dim.${d}` as MessageKey)}
            </option>
          ))}
        </select>{" "}
        <a class="button" download="" href={pivotPath(props.projectId, [dimension], props.audience, true)}>
          {t("reports.csv")}
        </a>
      </p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {result && <PivotTable result={result} />}
    </section>
  );
}

function PivotTable({ result }: { result: PivotOut }) {
  const head = [...result.group_by.map((d) => t(`reports.dim.${d}` as MessageKey)), t("reports.count"), t("reports.avgCycle")];
  return (
    <div class="pivot-table" tabIndex={0} role="region" aria-labelledby="pivot-title">
      <table>
        <thead>
          <tr>
            {head.map((c) => (
              <th scope="col" key={c}>
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {result.rows.map((r, i) => (
            <tr key={i}>
              {result.group_by.map((d) => (
                <td key={d}>{r.key[d]}</td>
              ))}
              <td>{r.count}</td>
              <td>{r.averages.cycle_days === null || r.averages.cycle_days === undefined ? "–" : `${r.averages.cycle_days.toFixed(1)} d`}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
