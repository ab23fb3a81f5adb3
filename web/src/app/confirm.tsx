// A confirm dialog for acts that are hard to undo (delete, changing who can see something). A modal <dialog>:
// focus moves into it, Escape cancels, and on a phone it is a full-width sheet.
import { signal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import { t } from "../i18n";

interface Ask {
  title: string;
  body: string;
  confirm: string;
  danger: boolean;
  answer: (yes: boolean) => void;
}

const asking = signal<Ask | null>(null);

export function confirmDialog(opts: { title: string; body: string; confirm: string; danger?: boolean }): Promise<boolean> {
  asking.value?.answer(false);
  return new Promise((resolve) => {
    asking.value = { danger: false, ...opts, answer: resolve };
  });
}

export function ConfirmDialog() {
  const ref = useRef<HTMLDialogElement>(null);
  const ask = asking.value;
  useEffect(() => {
    if (ask && ref.current && !ref.current.open) ref.current.showModal();
  }, [ask]);
  if (!ask) return null;
  const close = (yes: boolean) => {
    asking.value = null;
    ref.current?.close();
    ask.answer(yes);
  };
  return (
    <dialog ref={ref} class="confirm" aria-labelledby="confirm-title" onCancel={() => close(false)}>
      <h2 id="confirm-title">{ask.title}</h2>
      <p>{ask.body}</p>
      <div class="dialog-actions">
        <button type="button" onClick={() => close(false)}>
          {t("dialog.cancel")}
        </button>
        <button type="button" class={ask.danger ? "danger" : "primary"} onClick={() => close(true)}>
          {ask.confirm}
        </button>
      </div>
    </dialog>
  );
}
