// Report dashboards: a project's live KPIs (with charts, a pivot and feedback) and the staff portfolio.
// Loaded on demand (main.ts imports it dynamically), with Chart.js.
import "./reports.css";
import { api, ApiError, type User } from "../api";
import { h, mount } from "../dom";
import { t, tn, type MessageKey } from "../i18n";
import type { LiveClient } from "../live";
import { chartBox } from "./charts";
import { projectNav } from "./common";
import { reasonFor } from "../app/errors";

export interface Durations {
  count: number;
  pending: number;
  median_hours: number | null;
  p90_hours: number | null;
}

export interface Kpis {
  project_id: number;
  audience: "staff" | "shared";
  total: number;
  done: number;
  progress: number;
  by_category: Record<string, number>;
  by_milestone: { milestone_id: number | null; name: string; done: number; total: number }[];
  overdue: number;
  waiting_on_customer: number;
  waiting_oldest_days: number | null;
  first_response: Durations;
  request_turnaround: Durations;
  burnup: { week: string; scope: number; done: number }[];
  feedback: { responses: number; score: number | null; trend: number | null; metric: number | null };
  health: "on_track" | "at_risk" | "late";
  health_reasons: string[];
}

export interface PivotOut {
  group_by: string[];
  measures: string[];
  rows: { key: Record<string, string>; count: number; sums: Record<string, number>; averages: Record<string, number | null> }[];
  total: { count: number };
}

interface Theme {
  theme: string;
  helped: number;
  hindered: number;
  quotes: { answer_id: number | null; comment_id: number | null; kind: string; text: string; score: number | null }[];
  actions: { task_id: number; title: string; done: boolean }[];
}

interface FeedbackView {
  responses: number;
  score: number | null;
  trend: number | null;
  metric: number | null;
  themes: Theme[];
}

interface FeedbackRequest {
  id: number;
  milestone_name: string | null;
  answered_by_me: boolean;
  closed_at: string | null;
}

interface PortfolioItem {
  project_id: number;
  name: string;
  client_name: string;
  total: number;
  done: number;
  progress: number;
  overdue: number;
  waiting_on_customer: number;
  feedback_score: number | null;
  health: Kpis["health"];
  health_reasons: string[];
}

export const TASK_DIMENSIONS = ["status", "category", "assignee", "milestone", "priority", "visibility", "week"];

export function formatHours(hours: number | null): string {
  if (hours === null) return "–";
  return hours < 48 ? `${hours.toFixed(1)} h` : `${(hours / 24).toFixed(1)} d`;
}

/** The headline numbers of a KPI snapshot, as (label key, value) pairs; the metric only for staff. */
export function kpiTiles(k: Kpis): [MessageKey, string][] {
  const tiles: [MessageKey, string][] = [
    ["reports.progress", `${Math.round(k.progress * 100)} % (${k.done}/${k.total})`],
    ["reports.overdue", String(k.overdue)],
    ["reports.waiting", k.waiting_oldest_days === null ? "0" : `${k.waiting_on_customer} (${k.waiting_oldest_days.toFixed(1)} d)`],
    ["reports.firstResponse", `${formatHours(k.first_response.median_hours)} / ${formatHours(k.first_response.p90_hours)}`],
    ["reports.turnaround", formatHours(k.request_turnaround.median_hours)],
    ["reports.feedbackScore", k.feedback.score === null ? "–" : `${k.feedback.score.toFixed(1)} / 5${trend(k.feedback.trend)}`],
  ];
  if (k.feedback.metric !== null) tiles.push(["reports.feedbackMetric", k.feedback.metric.toFixed(1)]);
  return tiles;
}

function trend(value: number | null): string {
  if (value === null || value === 0) return "";
  return value > 0 ? ` ↑${value.toFixed(1)}` : ` ↓${Math.abs(value).toFixed(1)}`;
}

export function pivotPath(projectId: number | null, groupBy: string[], audience: string | null, csv = false): string {
  const params = new URLSearchParams({ group_by: groupBy.join(","), measures: "age_days,cycle_days" });
  if (audience) params.set("audience", audience);
  if (csv) params.set("format", "csv");
  return `${projectId === null ? "/api/reports/pivot" : `/api/projects/${projectId}/reports/pivot`}?${params}`;
}

export function healthBadge(health: Kpis["health"]): HTMLElement {
  const icon = { on_track: "✓", at_risk: "!", late: "✖" }[health];
  return h("span", { class: `badge health-${health}` }, h("span", { "aria-hidden": "true" }, icon), " ", t(`reports.health.${health}` as MessageKey));
}

export async function renderReports(
  root: HTMLElement,
  projectId: number,
  user: User,
  live: LiveClient,
): Promise<() => void> {
  const staff = user.role !== "customer";
  let audience: "staff" | "shared" = staff ? "staff" : "shared";
  const project = await api<{ name: string }>("GET", `/api/projects/${projectId}`);
  const tiles = h("dl", { class: "kpi-tiles", "aria-live": "polite" });
  const health = h("p", { class: "kpi-health" });
  const csv = h("a", { class: "button", download: "" }, t("reports.csv"));
  const categories = chartBox(t("reports.byCategory"), "bar", [], []);
  const burnup = chartBox(t("reports.burnup"), "line", [], []);
  const milestones = chartBox(t("reports.byMilestone"), "bar", [], [], { horizontal: true, stacked: true });

  const show = (k: Kpis) => {
    tiles.replaceChildren(...kpiTiles(k).flatMap(([key, value]) => [h("div", { class: "kpi" }, h("dt", {}, t(key)), h("dd", {}, value))]));
    health.replaceChildren(healthBadge(k.health), " ", k.health_reasons.map((r) => t(`reports.reason.${r}` as MessageKey)).join(" · "));
    const cats = ["todo", "active", "blocked", "done"];
    categories.update(cats.map((c) => t(`reports.category.${c}` as MessageKey)), [{ label: t("reports.tasks"), values: cats.map((c) => k.by_category[c] ?? 0) }]);
    burnup.update(k.burnup.map((p) => p.week), [
      { label: t("reports.scope"), values: k.burnup.map((p) => p.scope) },
      { label: t("reports.done"), values: k.burnup.map((p) => p.done) },
    ]);
    milestones.update(k.by_milestone.map((m) => m.name || t("reports.noMilestone")), [
      { label: t("reports.done"), values: k.by_milestone.map((m) => m.done) },
      { label: t("reports.open"), values: k.by_milestone.map((m) => m.total - m.done) },
    ]);
    csv.setAttribute("href", `/api/projects/${projectId}/reports/kpis?audience=${audience}&format=csv`);
  };

  let unsubscribe = () => {};
  const load = async () => {
    unsubscribe();
    show(await api<Kpis>("GET", `/api/projects/${projectId}/reports/kpis?audience=${audience}`));
    // Snapshots are computed once per audience on the server and replace what we hold.
    unsubscribe = live.subscribe(`report:project:${projectId}:${audience}`, (message) => {
      if (message.kind !== "event") return;
      const data = message.event.data as { type?: string; kpis?: Kpis };
      if (data.type === "kpi.changed" && data.kpis) show(data.kpis);
    });
    await drawPivot();
  };

  const preview = h("input", { type: "checkbox", id: "preview-customer" });
  preview.addEventListener("change", () => {
    audience = preview.checked ? "shared" : "staff";
    void load();
  });

  const pivotTable = h("div", { class: "pivot-table" });
  const dimension = h("select", { id: "pivot-dimension", "aria-label": t("reports.groupBy") });
  for (const d of TASK_DIMENSIONS) dimension.append(h("option", { value: d }, t(`reports.dim.${d}` as MessageKey)));
  const pivotCsv = h("a", { class: "button", download: "" }, t("reports.csv"));
  const drawPivot = async () => {
    const dims = [dimension.value];
    const result = await api<PivotOut>("GET", pivotPath(projectId, dims, audience));
    pivotTable.replaceChildren(pivotTableOf(result));
    pivotCsv.setAttribute("href", pivotPath(projectId, dims, audience, true));
  };
  dimension.addEventListener("change", () => void drawPivot());

  mount(
    root,
    h(
      "main",
      { class: "page reports" },
      projectNav(projectId, "reports", user.role !== "customer"),
      h("h1", {}, t("reports.title", { project: project.name })),
      staff
        ? h("p", { class: "report-tools", "data-staff-only": true }, h("label", { for: "preview-customer" }, preview, " ", t("reports.preview")), " ",
            h("a", { href: "/reports", "data-link": "true" }, t("reports.portfolio")))
        : null,
      health,
      tiles,
      h("p", {}, csv),
      h("div", { class: "charts" }, categories.element, burnup.element, milestones.element),
      h("section", { class: "pivot" }, h("h2", {}, t("reports.pivot")), h("p", {}, h("label", { for: "pivot-dimension" }, t("reports.groupBy")), " ", dimension, " ", pivotCsv), pivotTable),
      await feedbackSection(projectId, staff),
    ),
  );
  await load();
  return () => {
    unsubscribe();
    for (const c of [categories, burnup, milestones]) c.chart.destroy();
  };
}

function pivotTableOf(result: PivotOut): HTMLElement {
  const head = [...result.group_by.map((d) => t(`reports.dim.${d}` as MessageKey)), t("reports.count"), t("reports.avgCycle")];
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, ...head.map((c) => h("th", { scope: "col" }, c)))),
    h(
      "tbody",
      {},
      ...result.rows.map((r) =>
        h(
          "tr",
          {},
          ...result.group_by.map((d) => h("td", {}, r.key[d])),
          h("td", {}, String(r.count)),
          h("td", {}, r.averages.cycle_days === null || r.averages.cycle_days === undefined ? "–" : `${r.averages.cycle_days.toFixed(1)} d`),
        ),
      ),
    ),
  );
}

async function feedbackSection(projectId: number, staff: boolean): Promise<HTMLElement> {
  const section = h("section", { class: "feedback" }, h("h2", {}, t("feedback.title")));
  const message = h("p", { class: "error", role: "alert" });
  if (!staff) {
    const requests = (await api<{ items: FeedbackRequest[] }>("GET", `/api/projects/${projectId}/feedback/requests`)).items;
    const open = requests.filter((r) => !r.answered_by_me && !r.closed_at);
    if (!open.length) section.append(h("p", {}, t("feedback.nothingToAnswer")));
    for (const request of open) section.append(answerForm(request, message));
    section.append(message);
    return section;
  }
  const view = await api<FeedbackView>("GET", `/api/projects/${projectId}/feedback`);
  const ask = h("button", { type: "button" }, t("feedback.ask"));
  ask.addEventListener("click", async () => {
    try {
      await api("POST", `/api/projects/${projectId}/feedback/requests`, {});
      ask.textContent = t("feedback.asked");
      ask.setAttribute("disabled", "");
    } catch (error) {
      message.textContent = error instanceof ApiError ? reasonFor(error) : t("feedback.failed");
    }
  });
  section.append(
    h("p", {}, tn("feedback.summary", view.responses, { score: view.score === null ? "–" : view.score.toFixed(1), metric: view.metric === null ? "–" : view.metric.toFixed(1) }), " ", ask),
    message,
  );
  for (const theme of view.themes) {
    const act = h("button", { type: "button" }, t("feedback.makeAction"));
    act.addEventListener("click", async () => {
      try {
        await api("POST", `/api/projects/${projectId}/feedback/actions`, { theme: theme.theme });
        act.textContent = t("feedback.actionMade");
        act.setAttribute("disabled", "");
      } catch (error) {
        message.textContent = error instanceof ApiError ? reasonFor(error) : t("feedback.failed");
      }
    });
    section.append(
      h(
        "article",
        { class: "theme" },
        h("h3", {}, t(`feedback.theme.${theme.theme}` as MessageKey), " ", h("span", { class: "theme-counts" }, t("feedback.counts", { helped: String(theme.helped), hindered: String(theme.hindered) }))),
        h("ul", {}, ...theme.quotes.slice(0, 5).map((q) => h("li", { class: `quote-${q.kind}` }, `${t(`feedback.${q.kind}` as MessageKey)}: “${q.text}”${q.score === null ? "" : ` (${q.score}/5)`}`))),
        h("ul", { class: "actions" }, ...theme.actions.map((a) => h("li", {}, h("a", { href: `/projects/${projectId}/tasks/${a.task_id}`, "data-link": "true" }, a.title), a.done ? ` ✔ ${t("feedback.done")}` : ""))),
        act,
      ),
    );
  }
  return section;
}

function answerForm(request: FeedbackRequest, message: HTMLElement): HTMLElement {
  const form = h("form", { class: "feedback-form" });
  const scores = h("fieldset", {}, h("legend", {}, t("feedback.question")));
  for (let score = 1; score <= 5; score++) {
    const id = `score-${request.id}-${score}`;
    scores.append(h("label", { for: id }, h("input", { type: "radio", name: "score", value: String(score), id, required: true }), ` ${score}`));
  }
  const helped = h("textarea", { name: "helped", id: `helped-${request.id}`, maxlength: "2000" });
  const hindered = h("textarea", { name: "hindered", id: `hindered-${request.id}`, maxlength: "2000" });
  form.append(
    h("p", {}, request.milestone_name ? t("feedback.aboutMilestone", { milestone: request.milestone_name }) : t("feedback.aboutProject")),
    scores,
    h("label", { for: helped.id }, t("feedback.helpedQuestion")),
    helped,
    h("label", { for: hindered.id }, t("feedback.hinderedQuestion")),
    hindered,
    h("button", { type: "submit" }, t("feedback.send")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = form.querySelector<HTMLInputElement>("input[name=score]:checked");
    if (!chosen) return;
    try {
      await api("POST", `/api/feedback/requests/${request.id}/answers`, { score: Number(chosen.value), helped: helped.value, hindered: hindered.value });
      form.replaceChildren(h("p", { role: "status" }, t("feedback.thanks")));
    } catch (error) {
      message.textContent = error instanceof ApiError ? reasonFor(error) : t("feedback.failed");
    }
  });
  return form;
}

export async function renderPortfolio(root: HTMLElement): Promise<() => void> {
  const data = await api<{ items: PortfolioItem[]; by_client: { client_name: string; on_track: number; at_risk: number; late: number }[] }>("GET", "/api/reports/portfolio");
  const chart = chartBox(t("reports.healthByClient"), "bar", [], [], { stacked: true });
  chart.update(data.by_client.map((c) => c.client_name), [
    { label: t("reports.health.on_track"), values: data.by_client.map((c) => c.on_track), colour: "--on-track" },
    { label: t("reports.health.at_risk"), values: data.by_client.map((c) => c.at_risk), colour: "--at-risk" },
    { label: t("reports.health.late"), values: data.by_client.map((c) => c.late), colour: "--late" },
  ]);
  const rows = data.items.map((p) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, h("a", { href: `/projects/${p.project_id}/reports`, "data-link": "true" }, p.name)),
      h("td", {}, p.client_name),
      h("td", {}, healthBadge(p.health)),
      h("td", {}, `${Math.round(p.progress * 100)} %`),
      h("td", {}, String(p.overdue)),
      h("td", {}, String(p.waiting_on_customer)),
      h("td", {}, p.feedback_score === null ? "–" : p.feedback_score.toFixed(1)),
    ),
  );
  const columns: MessageKey[] = ["reports.project", "reports.client", "reports.healthLabel", "reports.progress", "reports.overdue", "reports.waiting", "reports.feedbackScore"];
  mount(
    root,
    h(
      "main",
      { class: "page reports portfolio" },
      h("h1", {}, t("reports.portfolio")),
      h("p", {}, h("a", { class: "button", href: "/api/reports/portfolio?format=csv", download: "" }, t("reports.csv"))),
      h("div", { class: "charts" }, chart.element),
      h("div", { class: "pivot-table" }, h("table", {}, h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { scope: "col" }, t(c))))), h("tbody", {}, ...rows))),
    ),
  );
  return () => chart.chart.destroy();
}
