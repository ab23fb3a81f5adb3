import { describe, expect, it } from "vitest";
import { formatHours, kpiTiles, pivotPath, type Kpis } from "../src/screens/reports/kpis";

const kpis = (extra: Partial<Kpis> = {}): Kpis => ({
  project_id: 7,
  audience: "staff",
  total: 8,
  done: 3,
  progress: 0.375,
  by_category: { todo: 2, active: 2, blocked: 1, done: 3 },
  by_milestone: [],
  overdue: 2,
  waiting_on_customer: 1,
  waiting_oldest_days: 5,
  first_response: { count: 6, pending: 2, median_hours: 3, p90_hours: 5 },
  request_turnaround: { count: 2, pending: 2, median_hours: 20, p90_hours: 30 },
  burnup: [],
  feedback: { responses: 3, score: 3.67, trend: 2, metric: 68.3 },
  health: "late",
  health_reasons: ["many_tasks_overdue"],
  ...extra,
});

describe("report helpers", () => {
  it("formats durations in hours, or days past two days", () => {
    expect(formatHours(null)).toBe("–");
    expect(formatHours(3)).toBe("3.0 h");
    expect(formatHours(72)).toBe("3.0 d");
  });

  it("shows the feedback metric to staff only", () => {
    const staff = kpiTiles(kpis());
    expect(staff[0]).toEqual(["reports.progress", "38 % (3/8)"]);
    expect(staff.map(([key]) => key)).toContain("reports.feedbackMetric");
    expect(staff.find(([key]) => key === "reports.feedbackScore")?.[1]).toBe("3.7 / 5 ↑2.0");
    const customer = kpiTiles(kpis({ audience: "shared", feedback: { responses: 3, score: 3.67, trend: null, metric: null } }));
    expect(customer.map(([key]) => key)).not.toContain("reports.feedbackMetric");
  });

  it("builds pivot and CSV paths", () => {
    expect(pivotPath(7, ["status", "week"], "shared")).toBe(
      "/api/projects/7/reports/pivot?group_by=status%2Cweek&measures=age_days%2Ccycle_days&audience=shared",
    );
    expect(pivotPath(null, ["client"], null, true)).toBe(
      "/api/reports/pivot?group_by=client&measures=age_days%2Ccycle_days&format=csv",
    );
  });
});
