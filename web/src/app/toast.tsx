// Toasts: a short visible message (and a live region for screen readers) when something failed or changed.
import { signal } from "@preact/signals";
import { t } from "../i18n";

interface Toast {
  id: number;
  text: string;
  kind: "error" | "info";
}

export const toasts = signal<Toast[]>([]);
let nextId = 1;
const SHOW_MS = 8000;

export function toast(text: string, kind: Toast["kind"] = "error"): void {
  const id = nextId++;
  toasts.value = [...toasts.value, { id, text, kind }];
  setTimeout(() => dismiss(id), SHOW_MS);
}

function dismiss(id: number): void {
  toasts.value = toasts.value.filter((x) => x.id !== id);
}

export function Toasts() {
  const errors = toasts.value.filter((x) => x.kind === "error");
  const infos = toasts.value.filter((x) => x.kind === "info");
  const list = (items: Toast[]) =>
    items.map((x) => (
      <div key={x.id} class={`toast toast-${x.kind}`}>
        <span>{x.text}</span>
        <button type="button" class="link" aria-label={t("toast.dismiss")} onClick={() => dismiss(x.id)}>
          ×
        </button>
      </div>
    ));
  // Two regions that stay in the page: assertive for failures, polite for the rest.
  return (
    <div class="toasts">
      <div role="alert" aria-live="assertive">
        {list(errors)}
      </div>
      <div role="status" aria-live="polite">
        {list(infos)}
      </div>
    </div>
  );
}
