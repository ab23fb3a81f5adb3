// Why a request failed, in the reader's language: the API's stable code, reason and params pick the sentence from
// the catalogs; the API's English `message` is never shown (docs/API.md, "Reasons, for translation").
import { ApiError, type FieldError } from "../api";
import { hasKey, t, type MessageKey } from "../i18n";

/** Every error code the server sends, with its words (`test/errors.test.ts` fails on a code the server raises that
 * is missing here and not in HANDLED_APART). */
export const REASONS: Record<string, MessageKey> = {
  wip_limit: "error.wipLimit",
  version_conflict: "error.versionConflict",
  rate_limited: "error.rateLimited",
  sign_in_locked: "error.signInLocked",
  forbidden: "error.forbidden",
  insufficient_scope: "error.forbidden",
  not_found: "error.notFound",
  deleted: "error.deleted",
  unauthorized: "error.signedOut",
  invalid: "error.invalid",
  invalid_credentials: "error.invalidCredentials",
  csrf_failed: "error.csrf",
  too_large: "error.tooLarge",
  invite_invalid: "error.inviteInvalid",
  invite_accepted: "error.inviteInvalid",
  reset_invalid: "error.resetInvalid",
  email_unavailable: "error.emailUnavailable",
  already_member: "error.alreadyMember",
  too_many_tokens: "error.tooManyTokens",
  resolved: "error.resolved",
  already_answered: "error.alreadyAnswered",
  closed: "error.closed",
  status_in_use: "error.statusInUse",
  last_status: "error.lastStatus",
  internal: "error.server",
  second_factor_invalid: "error.secondFactorInvalid",
  sign_in_expired: "error.signInExpired",
  passkey_invalid: "error.passkeyInvalid",
  passkey_exists: "error.passkeyExists",
  too_many_passkeys: "error.tooManyPasskeys",
  enrolment_required: "error.enrolmentRequired",
  totp_exists: "error.totpExists",
  second_factor_required: "error.secondFactorRequired",
  no_second_factor: "error.noSecondFactor",
  conflict: "error.conflict",
  too_many_webhooks: "error.tooManyWebhooks",
  too_many_statuses: "error.tooManyStatuses",
  too_many_fields: "error.tooManyFields",
  field_exists: "error.fieldExists",
  shared_tasks: "error.sharedTasks",
  password_required: "error.passwordRequired",
  not_customer_comment: "error.notCustomerItem",
  not_customer_reply: "error.notCustomerItem",
  invalid_mention: "error.invalidMention",
  no_workflow: "error.noWorkflow",
  unsupported_media_type: "error.unsupportedMediaType",
  malformed_json: "error.malformedJson",
  unavailable: "error.unavailable",
  owner_locked: "people.error.ownerLocked",
  invalid_columns: "import.badColumns",
  malformed_csv: "import.badCsv",
  link_invalid: "link.invalid",
  link_other_browser: "link.otherBrowser",
};

/** Codes worded another way than REASONS, and why. */
export const HANDLED_APART: Record<string, string> = {
  weak_password: "worded from its reason, the password rule broken (passwordText)",
  web_not_built: "answers a page load when the client is not built: no client is there to show it",
};

function params(err: ApiError, context: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(err.params)) out[name] = String(value);
  return { ...out, ...context };
}

/** A sentence for a failed request; `context` fills placeholders such as the status of a WIP limit. */
export function reasonFor(err: unknown, context: Record<string, string> = {}): string {
  if (err instanceof ApiError) {
    if (err.code === "weak_password") return passwordText(err.reason ?? err.details[0]?.type ?? "", err.params);
    if (err.reason && err.reason !== "fields") {
      const key = `error.reason.${err.reason}`;
      if (hasKey(key)) return t(key, params(err, context));
    }
    if (err.details.length && err.code === "invalid") return detailText(err.details[0]);
    const key =
      REASONS[err.code] ??
      (err.status === 401
        ? "error.signedOut"
        : err.status === 403
          ? "error.forbidden"
          : err.status === 404
            ? "error.notFound"
            : err.status === 409
              ? "error.conflict"
              : err.status >= 500
                ? "error.server"
                : null);
    if (key) return t(key, params(err, context));
    return t("error.generic");
  }
  if (err instanceof TypeError) return t("error.network"); // fetch failed: offline or the server is unreachable
  return t("error.generic");
}

function passwordText(reason: string, values: Record<string, string | number>): string {
  const key = `error.password.${reason}`;
  const p = { min: String(values.min ?? 12), max: String(values.max ?? 128) };
  return hasKey(key) ? t(key, p) : t("error.invalid");
}

/** One invalid field, said from its stable `type` (the validator's, or the password rule's). */
export function detailText(detail: FieldError): string {
  const type = detail.type ?? "";
  if (hasKey(`error.password.${type}`)) return passwordText(type, {});
  if (type === "missing") return t("error.field.missing");
  if (type.endsWith("_too_short")) return t("error.field.tooShort");
  if (type.endsWith("_too_long")) return t("error.field.tooLong");
  if (/parsing|_type$|url|pattern|email|enum|literal|value_error/.test(type)) return t("error.field.format");
  return t("error.field.other");
}

/** The reason beside one field of a 422 answer, if the answer names that field. */
export function fieldError(err: unknown, field: string): string | null {
  if (!(err instanceof ApiError) || (err.code !== "invalid" && err.code !== "weak_password")) return null;
  const found = err.details.find((d) => d.field === field || d.field.endsWith(`.${field}`));
  return found ? detailText(found) : null;
}
