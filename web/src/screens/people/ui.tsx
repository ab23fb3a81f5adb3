// Pieces the people-and-projects screens share: a dialog that is a sheet on a phone, a labelled field that shows
// the API's error beside it, a form's submit, a copy-link box, and turning a refused request into words.
import type { ComponentChildren, JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "../../api";
import { detailText, reasonFor } from "../../app/errors";
import { t, type MessageKey } from "../../i18n";
import "./people.css";

/** A modal dialog (the platform's: focus stays inside, Escape closes); full-screen on a phone (CSS). */
export function Dialog(props: { title: string; onClose: () => void; children: ComponentChildren; id?: string }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current!;
    if (!dialog.open) dialog.showModal();
    return () => dialog.close();
  }, []);
  const titleId = `${props.id ?? "dialog"}-title`;
  return (
    <dialog
      ref={ref}
      id={props.id}
      class="sheet"
      aria-labelledby={titleId}
      onCancel={(event) => {
        event.preventDefault();
        props.onClose();
      }}
    >
      <div class="sheet-head">
        <h2 id={titleId}>{props.title}</h2>
        <button type="button" class="icon" aria-label={t("common.close")} onClick={props.onClose}>
          ×
        </button>
      </div>
      {props.children}
    </dialog>
  );
}

/** Asks before something that cannot be undone; `busy` while the change is under way. */
export function Confirm(props: {
  title: string;
  body: string;
  action: string;
  busy: boolean;
  error: string;
  onConfirm: () => void;
  onClose: () => void;
  /** A choice the action needs (where a removed status's tasks go). */
  children?: ComponentChildren;
}) {
  return (
    <Dialog id="confirm" title={props.title} onClose={props.onClose}>
      <p>{props.body}</p>
      {props.children}
      <p class="error" role="alert">
        {props.error}
      </p>
      <div class="actions">
        <button type="button" class="danger" aria-busy={props.busy} disabled={props.busy} onClick={props.onConfirm}>
          {props.busy ? t("common.working") : props.action}
        </button>
        <button type="button" class="secondary" onClick={props.onClose}>
          {t("common.cancel")}
        </button>
      </div>
    </Dialog>
  );
}

export interface ControlAttributes {
  id: string;
  "aria-invalid"?: "true";
  "aria-describedby"?: string;
}

/** A labelled control with its error beside it (announced, and tied to the control for screen readers). */
export function Field(props: {
  id: string;
  label: string;
  error?: string;
  hint?: string;
  children: (attributes: ControlAttributes) => JSX.Element;
}) {
  const described = [props.hint ? `${props.id}-hint` : "", props.error ? `${props.id}-error` : ""].join(" ").trim();
  const attributes: ControlAttributes = { id: props.id };
  if (props.error) attributes["aria-invalid"] = "true";
  if (described) attributes["aria-describedby"] = described;
  return (
    <div class={`field${props.error ? " field-invalid" : ""}`}>
      <label for={props.id}>{props.label}</label>
      {props.children(attributes)}
      {props.hint && (
        <p id={`${props.id}-hint`} class="hint">
          {props.hint}
        </p>
      )}
      {props.error && (
        <p id={`${props.id}-error`} class="field-error">
          {props.error}
        </p>
      )}
    </div>
  );
}

export type FieldErrors = Record<string, string>;

// The refusals particular to these screens; the rest are worded by the shell (`reasonFor`).
const REASONS: Record<string, MessageKey> = {
  already_member: "people.error.alreadyMember",
  email_unavailable: "people.error.emailUnavailable",
  invite_accepted: "people.error.inviteAccepted",
  owner_locked: "people.error.ownerLocked",
};

/** A refused request in the reader's language: per-field messages (by API field name) and one summary. */
export function explain(err: unknown): { fields: FieldErrors; message: string } {
  const fields: FieldErrors = {};
  if (err instanceof ApiError) {
    for (const detail of err.details) {
      fields[detail.field.split(".").pop() ?? detail.field] = detailText(detail);
    }
    if (Object.keys(fields).length) return { fields, message: t("common.fixFields") };
    if (REASONS[err.code]) return { fields, message: t(REASONS[err.code]) };
  }
  return { fields, message: reasonFor(err) };
}

/**
 * A form's submit: clears the last errors, marks the form busy while `work` runs, and shows what the API refused
 * (beside each field, and `reason(err)` or the API's message in the form's alert).
 */
export function useSubmit(work: () => Promise<void>, reason: (err: unknown) => string | null = () => null) {
  const [fields, setFields] = useState<FieldErrors>({});
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setFields({});
    setError("");
    setBusy(true);
    try {
      await work();
    } catch (err) {
      const said = explain(err);
      setFields(said.fields);
      setError(reason(err) ?? said.message);
    } finally {
      setBusy(false);
    }
  };
  return { fields, error, busy, submit };
}

/** The form checks the API makes, made before sending (the API's answer still wins). */
export function checkName(value: string, max = 200): string {
  const trimmed = value.trim();
  if (!trimmed) return t("common.required");
  return trimmed.length > max ? `≤ ${max}` : "";
}

export function checkEmail(value: string): string {
  if (!value.trim()) return t("common.required");
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value.trim()) ? "" : t("people.badEmail");
}

/** A link to pass on by hand, with a copy button that says whether it worked. */
export function CopyLink(props: { id: string; link: string; label: string }) {
  const [state, setState] = useState<"" | "copied" | "failed">("");
  const input = useRef<HTMLInputElement>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.link);
      setState("copied");
    } catch {
      input.current?.select(); // the person copies it with the keyboard instead
      setState("failed");
    }
  };
  return (
    <div class="copy-link">
      <input ref={input} id={props.id} readOnly value={props.link} aria-label={props.label} onFocus={(e) => e.currentTarget.select()} />
      <button type="button" id={`${props.id}-copy`} class="secondary" data-copied={state === "copied" ? "true" : "false"} onClick={copy}>
        {state === "copied" ? `✓ ${t("common.copied")}` : t("common.copy")}
      </button>
      {state === "failed" && (
        <p class="error" role="alert">
          {t("common.copyFailed")}
        </p>
      )}
    </div>
  );
}

export function roleName(role: string): string {
  return t(`role.${role}` as MessageKey);
}

export function formatDateTime(iso: string): string {
  return new Date(iso).toLocaleDateString(document.documentElement.lang === "sv" ? "sv-SE" : "en-GB", {
    dateStyle: "medium",
  });
}

export interface Notice {
  kind: "ok" | "error";
  text: string;
}

/**
 * The notice after a write: what happened, or why it failed (the page then shows the state as it now is). Its two
 * live regions are `{id}-status` and `{id}-error`: a page's own line keeps the default (`people-status`), and a
 * second line on the same page passes an `id` of its own, so no two elements share one.
 */
export function NoticeLine({ notice, id = "people" }: { notice: Notice | null; id?: string }) {
  return (
    <>
      <p class="notice" role="status" id={`${id}-status`}>
        {notice?.kind === "ok" ? notice.text : ""}
      </p>
      <p class="notice notice-error" role="alert" id={`${id}-error`}>
        {notice?.kind === "error" ? notice.text : ""}
      </p>
    </>
  );
}

export function failed(err: unknown): Notice {
  return { kind: "error", text: t("common.failedNowShowing", { reason: explain(err).message }) };
}

