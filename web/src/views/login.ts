import { api, ApiError, type User } from "../api";
import { h, mount } from "../dom";
import { t } from "../i18n";
import { reasonFor } from "../app/errors";

/** "Check your mail": the answer is the same whether or not the address may sign in by link. */
function renderLinkSent(root: HTMLElement, onBack: () => void): void {
  const back = h("button", { type: "button", class: "link" }, t("reset.backToSignIn"));
  back.addEventListener("click", onBack);
  mount(
    root,
    h(
      "main",
      { class: "centered" },
      h("div", { class: "panel" }, h("h1", {}, t("link.sentTitle")), h("p", { role: "status" }, t("link.sent")), back),
    ),
  );
  back.focus();
}

export function renderLogin(root: HTMLElement, onSignedIn: (user: User) => void): void {
  const error = h("p", { class: "error", role: "alert" });
  const email = h("input", { id: "email", name: "email", type: "email", autocomplete: "username", required: true });
  const password = h("input", {
    id: "password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  // A second way in, without the password: a one-time link by email, to this browser.
  const byLink = h("button", { type: "button", id: "email-link", class: "secondary" }, t("link.ask"));
  const form = h(
    "form",
    { class: "panel", novalidate: true },
    h("h1", {}, t("login.title")),
    h("label", { for: "email" }, t("login.email")),
    email,
    h("label", { for: "password" }, t("login.password")),
    password,
    error,
    h("button", { type: "submit", class: "primary" }, t("login.submit")),
    byLink,
    h("a", { href: "/reset-password", "data-link": "true" }, t("login.forgot")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      const result = await api<{ user: User }>("POST", "/api/auth/login", {
        email: email.value,
        password: password.value,
      });
      onSignedIn(result.user);
    } catch (err) {
      const code = err instanceof ApiError ? err.code : "";
      // Locked after failed sign-ins: say for how long (Retry-After, in the error's params).
      error.textContent =
        code === "sign_in_locked"
          ? reasonFor(err)
          : t(code === "rate_limited" ? "login.rateLimited" : "login.failed");
    }
  });
  byLink.addEventListener("click", async () => {
    error.textContent = "";
    if (!email.value.trim() || !email.checkValidity()) {
      error.textContent = t("link.needEmail");
      email.focus();
      return;
    }
    byLink.disabled = true;
    try {
      await api("POST", "/api/auth/link", { email: email.value });
      renderLinkSent(root, () => renderLogin(root, onSignedIn));
    } catch (err) {
      const code = err instanceof ApiError ? err.code : "";
      error.textContent = t(code === "rate_limited" ? "reset.rateLimited" : "error.generic");
      byLink.disabled = false;
    }
  });
  mount(root, h("main", { class: "centered" }, form));
}
