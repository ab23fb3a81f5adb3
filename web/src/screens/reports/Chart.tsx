// A chart of the report dashboards, on Chart.js (loaded with the reports screens only). Chart.js draws on a canvas
// and sizes it with inline style attributes, which the page's CSP allows; it inserts no <style> element. A series
// that stands for a colour class names its design token (style.css), so the chart and the badges beside it agree;
// the colours drawn are written to `data-colours` (one per series) so tests and tools can compare them.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart as ChartJs,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "chart.js";
import { useEffect, useRef } from "preact/hooks";

ChartJs.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Legend, Tooltip);

export const PALETTE = ["#1f6feb", "#2da44e", "#d29922", "#cf222e", "#8250df", "#8b949e"];

export interface Series {
  label: string;
  values: number[];
  /** A design token (CSS custom property) for a series that stands for a colour class; others take the palette. */
  colour?: string;
}

export function token(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

export function seriesColour(series: Series, index: number): string {
  return (series.colour && token(series.colour)) || PALETTE[index % PALETTE.length];
}

function datasets(series: Series[], kind: "bar" | "line") {
  return series.map((s, i) => ({
    label: s.label,
    data: s.values,
    backgroundColor: seriesColour(s, i),
    borderColor: seriesColour(s, i),
    fill: false,
    tension: kind === "line" ? 0.2 : 0,
  }));
}

/** A chart in a fixed-height box that follows its container's width (readable at 390 px). */
export function Chart(props: {
  title: string;
  kind: "bar" | "line";
  labels: string[];
  series: Series[];
  horizontal?: boolean;
  stacked?: boolean;
  id?: string;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<ChartJs | null>(null);
  useEffect(() => {
    chart.current = new ChartJs(canvas.current!, {
      type: props.kind,
      data: { labels: [], datasets: [] },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        indexAxis: props.horizontal ? "y" : "x",
        scales: {
          x: { stacked: props.stacked ?? false, ticks: { autoSkip: true, maxRotation: 0 } },
          y: { stacked: props.stacked ?? false, beginAtZero: true, ticks: { precision: 0 } },
        },
        plugins: { legend: { display: false, position: "bottom" } },
      },
    });
    return () => chart.current?.destroy();
  }, []);
  useEffect(() => {
    const c = chart.current;
    if (!c) return;
    c.data.labels = props.labels;
    c.data.datasets = datasets(props.series, props.kind);
    const legend = c.options.plugins?.legend;
    if (legend) legend.display = props.series.length > 1;
    c.update();
  }, [props.labels, props.series]);
  return (
    <figure class="chart" id={props.id} data-colours={props.series.map(seriesColour).join(" ")}>
      <figcaption>{props.title}</figcaption>
      <div class="chart-canvas">
        <canvas ref={canvas} role="img" aria-label={props.title} />
      </div>
    </figure>
  );
}
