// The staff portfolio: every project's health and KPIs, and health by client as a chart whose colours are the
// health badges' tokens.
import { useEffect, useState } from "preact/hooks";
import { api } from "../../api";
import { t, type MessageKey } from "../../i18n";
import { usePageLoad } from "../common/page-load";
import { PageNotReady } from "../common/PageNotReady";
import { Chart } from "./Chart";
import { HealthBadge } from "./HealthBadge";
import { HEALTH_TOKENS, type PortfolioItem } from "./kpis";
import "./reports.css";

interface PortfolioData {
  items: PortfolioItem[];
  by_client: { client_name: string; on_track: number; at_risk: number; late: number }[];
}

const COLUMNS: MessageKey[] = [
  "reports.project",
  "reports.client",
  "reports.healthLabel",
  "reports.progress",
  "reports.overdue",
  "reports.waiting",
  "reports.feedbackScore",
];

export function Portfolio() {
  const [data, setData] = useState<PortfolioData | null>(null);
  const page = usePageLoad();
  const load = () => page.run(async () => setData(await api<PortfolioData>("GET", "/api/reports/portfolio")));
  useEffect(() => void load(), []);
  if (!data) return <PageNotReady class="reports portfolio" error={page.failed} retry={load} />;
  const healths = ["on_track", "at_risk", "late"] as const;
  return (
    <main class="page reports portfolio">
      <h1>{t("reports.portfolio")}</h1>
      <p>
        <a class="button" href="/api/reports/portfolio?format=csv" download="">
          {t("reports.csv")}
        </a>
      </p>
      <p class="legend" role="note" aria-label={t("colour.legend")}>
        {healths.map((h) => (
          <HealthBadge key={h} health={h} />
        ))}
      </p>
      <div class="charts">
        <Chart
          id="chart-health"
          title={t("reports.healthByClient")}
          kind="bar"
          stacked
          labels={data.by_client.map((c) => c.client_name)}
          series={healths.map((h) => ({ label: t(`reports.health.${h}` as MessageKey), values: data.by_client.map((c) => c[h]), colour: HEALTH_TOKENS[h] }))}
        />
      </div>
      <div class="pivot-table" tabIndex={0} role="region" aria-label={t("reports.portfolio")}>
        <table>
          <thead>
            <tr>
              {COLUMNS.map((c) => (
                <th scope="col" key={c}>
                  {t(c)}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {data.items.map((p) => (
              <tr key={p.project_id}>
                <th scope="row">
                  <a href={`/projects/${p.project_id}/reports`}>{p.name}</a>
                </th>
                <td>{p.client_name}</td>
                <td>
                  <HealthBadge health={p.health} />
                </td>
                <td>{Math.round(p.progress * 100)} %</td>
                <td>{p.overdue}</td>
                <td>{p.waiting_on_customer}</td>
                <td>{p.feedback_score === null ? "–" : p.feedback_score.toFixed(1)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </main>
  );
}
