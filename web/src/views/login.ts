import { api, ApiError, type User } from "../api";
import { h, mount } from "../dom";
import { t } from "../i18n";

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
      error.textContent = t(code === "rate_limited" ? "login.rateLimited" : "login.failed");
    }
  });
  mount(root, h("main", { class: "centered" }, form));
}
