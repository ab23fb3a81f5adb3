// The in-app "not found or no access" page: an unknown address, or an id the API answers 404 or 403 for. Both say
// the same thing, so the page never reveals whether something exists that the reader may not see.
import { signal } from "@preact/signals";
import { ApiError } from "../api";
import { t } from "../i18n";

/** The address whose page turned out to be missing; the shell shows NotFound while it is the current one. */
export const missingAt = signal<string | null>(null);

/** Call with why a page's own data failed to load: a 404 or 403 shows the not-found page (true), anything else
 * is left to the caller (false). */
export function pageMissing(err: unknown): boolean {
  if (err instanceof ApiError && (err.status === 404 || err.status === 403 || (err.status === 422 && err.code === "invalid"))) {
    missingAt.value = location.pathname;
    return true;
  }
  return false;
}

export function NotFound() {
  return (
    <main class="page not-found" id="not-found">
      <h1>{t("error.notFoundTitle")}</h1>
      <p>{t("error.notFoundText")}</p>
      <p>
        <a href="/">{t("error.notFoundHome")}</a>
      </p>
    </main>
  );
}
