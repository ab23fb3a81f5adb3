import { api, ApiError } from "../api";
import { h, mount } from "../dom";
import { t } from "../i18n";
import { reasonFor } from "../app/errors";

function page(root: HTMLElement, ...children: (HTMLElement | string)[]): void {
  mount(root, h("main", { class: "centered" }, h("div", { class: "panel" }, ...children)));
}

function backToSignIn(): HTMLElement {
  return h("a", { href: "/", "data-link": "true" }, t("reset.backToSignIn"));
}

/** `/reset-password`: ask for a link by email. The answer is the same whether or not the address has an account. */
function renderRequest(root: HTMLElement): void {
  const error = h("p", { class: "error", role: "alert" });
  const email = h("input", { id: "email", name: "email", type: "email", autocomplete: "username", required: true });
  const form = h(
    "form",
    { class: "panel" },
    h("h1", {}, t("reset.title")),
    h("p", {}, t("reset.intro")),
    h("label", { for: "email" }, t("login.email")),
    email,
    error,
    h("button", { type: "submit", class: "primary" }, t("reset.send")),
    backToSignIn(),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      await api("POST", "/api/auth/password-reset", { email: email.value });
      page(root, h("h1", {}, t("reset.title")), h("p", { role: "status" }, t("reset.sent")), backToSignIn());
    } catch (err) {
      const code = err instanceof ApiError ? err.code : "";
      error.textContent = t(code === "rate_limited" ? "reset.rateLimited" : "error.generic");
    }
  });
  mount(root, h("main", { class: "centered" }, form));
}

/** `/reset-password#<token>`: choose the new password. It does not sign in: the person signs in with it next. */
function renderChoose(root: HTMLElement, token: string): void {
  const error = h("p", { class: "error", role: "alert" });
  const password = h("input", {
    id: "password",
    name: "password",
    type: "password",
    autocomplete: "new-password",
    minlength: "12",
    required: true,
  });
  const form = h(
    "form",
    { class: "panel" },
    h("h1", {}, t("reset.chooseTitle")),
    h("label", { for: "password" }, t("invite.password")),
    password,
    error,
    h("button", { type: "submit", class: "primary" }, t("reset.save")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      await api("POST", "/api/auth/password-reset/confirm", { token, password: password.value });
      history.replaceState(null, "", "/reset-password");
      page(root, h("h1", {}, t("reset.chooseTitle")), h("p", { role: "status" }, t("reset.done")), backToSignIn());
    } catch (err) {
      if (err instanceof ApiError && err.code === "reset_invalid") {
        page(root, h("p", { class: "error" }, t("reset.invalid")), h("a", { href: "/reset-password" }, t("reset.again")));
      } else {
        error.textContent = reasonFor(err);
      }
    }
  });
  mount(root, h("main", { class: "centered" }, form));
}

export function renderReset(root: HTMLElement, token: string): void {
  if (token) renderChoose(root, token);
  else renderRequest(root);
}
