import { useState } from "preact/hooks";
import { t } from "../../i18n";

/**
 * A request that failed, said where its result would be shown, with "Try again" (which runs `retry` and is busy
 * until it settles; a second press meanwhile does nothing). An alert by default, so it is announced; `quiet` makes
 * it a status line for what the person did not ask for themselves (a thread marked read in the background).
 * `retry` settles without throwing: the caller catches its failure, takes this away when it succeeds and keeps it,
 * with the new reason, when it fails again.
 */
export function LoadFailed(props: { text: string; retry: () => Promise<unknown>; id?: string; class?: string; quiet?: boolean }) {
  const [busy, setBusy] = useState(false);
  const again = async () => {
    if (busy) return;
    setBusy(true);
    try {
      await props.retry();
    } finally {
      setBusy(false);
    }
  };
  return (
    <p
      id={props.id}
      class={`${props.quiet ? "muted" : "error"} load-failed${props.class ? ` ${props.class}` : ""}`}
      role={props.quiet ? "status" : "alert"}
    >
      {props.text}{" "}
      {/* aria-disabled, not disabled: the button keeps focus while it works. */}
      <button type="button" class="link" aria-busy={busy} aria-disabled={busy} onClick={() => void again()}>
        {t("common.tryAgain")}
      </button>
    </p>
  );
}
