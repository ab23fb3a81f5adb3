// Report dashboards: the types the API answers and the pure pieces (tested in web/test/reports.test.ts).
import type { MessageKey } from "../../i18n";

export interface Durations {
  count: number;
  pending: number;
  median_hours: number | null;
  p90_hours: number | null;
}

export type Health = "on_track" | "at_risk" | "late";

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
  health: Health;
  health_reasons: string[];
}

export interface PivotOut {
  group_by: string[];
  measures: string[];
  rows: { key: Record<string, string>; count: number; sums: Record<string, number>; averages: Record<string, number | null> }[];
  total: { count: number };
}

export interface PortfolioItem {
  project_id: number;
  name: string;
  client_name: string;
  total: number;
  done: number;
  progress: number;
  overdue: number;
  waiting_on_customer: number;
  feedback_score: number | null;
  health: Health;
  health_reasons: string[];
}

export const TASK_DIMENSIONS = ["status", "category", "assignee", "milestone", "priority", "visibility", "week"];

/** The design token (style.css) of each health, shared by the badges and the charts. */
export const HEALTH_TOKENS: Record<Health, string> = { on_track: "--on-track", at_risk: "--at-risk", late: "--late" };
export const HEALTH_ICONS: Record<Health, string> = { on_track: "✓", at_risk: "!", late: "✖" };

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
