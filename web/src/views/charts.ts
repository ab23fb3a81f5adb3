// Charts of the report dashboards, on Chart.js (loaded with the reports view only). Chart.js draws on a canvas and
// sizes it with inline style attributes, which the page's CSP allows; it inserts no <style> element.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
  type ChartConfiguration,
} from "chart.js";
import { h } from "../dom";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Legend, Tooltip);

export const PALETTE = ["#1f6feb", "#2da44e", "#d29922", "#cf222e", "#8250df", "#8b949e"];

export interface Series {
  label: string;
  values: number[];
  /** A design token (CSS custom property, style.css) for a series that stands for a colour class, so the chart
   * and the badges beside it agree; other series take the palette in order. */
  colour?: string;
}

function token(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** A chart in a fixed-height box that follows its container's width (readable at 390 px). */
export function chartBox(
  title: string,
  kind: "bar" | "line",
  labels: string[],
  series: Series[],
  options: { horizontal?: boolean; stacked?: boolean } = {},
): { element: HTMLElement; chart: Chart; update: (labels: string[], series: Series[]) => void } {
  const canvas = h("canvas", { role: "img", "aria-label": title });
  const element = h("figure", { class: "chart" }, h("figcaption", {}, title), h("div", { class: "chart-canvas" }, canvas));
  const config: ChartConfiguration = {
    type: kind,
    data: { labels, datasets: datasets(series, kind) },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      indexAxis: options.horizontal ? "y" : "x",
      scales: {
        x: { stacked: options.stacked ?? false, ticks: { autoSkip: true, maxRotation: 0 } },
        y: { stacked: options.stacked ?? false, beginAtZero: true, ticks: { precision: 0 } },
      },
      plugins: { legend: { display: series.length > 1, position: "bottom" } },
    },
  };
  const chart = new Chart(canvas, config);
  const update = (nextLabels: string[], nextSeries: Series[]) => {
    chart.data.labels = nextLabels;
    chart.data.datasets = datasets(nextSeries, kind);
    const legend = chart.options.plugins?.legend;
    if (legend) legend.display = nextSeries.length > 1;
    chart.update();
  };
  return { element, chart, update };
}

function datasets(series: Series[], kind: "bar" | "line") {
  return series.map((s, i) => ({
    label: s.label,
    data: s.values,
    backgroundColor: (s.colour && token(s.colour)) || PALETTE[i % PALETTE.length],
    borderColor: (s.colour && token(s.colour)) || PALETTE[i % PALETTE.length],
    fill: false,
    tension: kind === "line" ? 0.2 : 0,
  }));
}
