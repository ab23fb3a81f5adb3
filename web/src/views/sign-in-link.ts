import { api, ApiError } from "../api";
import type { SignInResult } from "../app/session";
import { h, mount } from "../dom";
import { t } from "../i18n";

function page(root: HTMLElement, ...children: (HTMLElement | string)[]): void {
  mount(root, h("main", { class: "centered" }, h("div", { class: "panel" }, ...children)));
}

/**
 * `/sign-in-link#<token>`: the landing page of a mailed sign-in link. It signs in only in the browser that asked
 * for the link (the server checks that browser's cookie); anywhere else it says where to open it instead.
 */
export async function renderSignInLink(
  root: HTMLElement,
  token: string,
  onSignedIn: (result: SignInResult) => void,
): Promise<void> {
  page(root, h("p", { role: "status" }, t("link.signingIn")));
  try {
    onSignedIn(await api<SignInResult>("POST", "/api/auth/link/redeem", { token }));
    return;
  } catch (err) {
    const code = err instanceof ApiError ? err.code : "";
    const again = h("a", { href: "/", "data-link": "true" }, t("link.again"));
    const reason =
      code === "link_other_browser"
        ? "link.otherBrowser"
        : code === "rate_limited"
          ? "login.rateLimited"
          : code === "link_invalid"
            ? "link.invalid"
            : "error.generic";
    page(root, h("h1", {}, t("link.refusedTitle")), h("p", { class: "error", role: "alert" }, t(reason)), again);
  }
}
