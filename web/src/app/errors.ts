// Why a write failed, in the reader's language: the API's stable code picks the sentence, never its English message.
import { ApiError } from "../api";
import { t, type MessageKey } from "../i18n";

const REASONS: Record<string, MessageKey> = {
  wip_limit: "error.wipLimit",
  version_conflict: "error.versionConflict",
  rate_limited: "error.rateLimited",
  forbidden: "error.forbidden",
  not_found: "error.notFound",
  deleted: "error.deleted",
  unauthorized: "error.signedOut",
  invalid: "error.invalid",
};

/** A sentence for a failed request; `context` fills placeholders such as the status of a WIP limit. */
export function reasonFor(err: unknown, context: Record<string, string> = {}): string {
  if (err instanceof ApiError) {
    const key = REASONS[err.code] ?? (err.status === 401 ? "error.signedOut" : err.status === 403 ? "error.forbidden" : null);
    if (key) return t(key, context);
    return t("error.generic");
  }
  if (err instanceof TypeError) return t("error.network"); // fetch failed: offline or the server is unreachable
  return t("error.generic");
}

/** The API's message for one field of a 422 answer (the text beside the field), if it names that field. */
export function fieldError(err: unknown, field: string): string | null {
  if (!(err instanceof ApiError) || err.code !== "invalid") return null;
  const found = err.details.find((d) => d.field === field || d.field.endsWith(`.${field}`));
  return found ? t("error.fieldInvalid", { reason: found.message }) : null;
}
