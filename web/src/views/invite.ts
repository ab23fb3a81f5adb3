import { api } from "../api";
import type { SignInResult } from "../app/session";
import { h, mount } from "../dom";
import { t } from "../i18n";
import { reasonFor } from "../app/errors";

interface Preview {
  email: string;
  project_name: string;
  organization_name: string;
  name: string;
  passwordless: boolean;
}

export async function renderInvite(
  root: HTMLElement,
  token: string,
  onJoined: (result: SignInResult, projectId: number) => void,
): Promise<void> {
  let preview: Preview;
  try {
    preview = await api<Preview>("POST", "/api/invites/preview", { token });
  } catch {
    mount(root, h("main", { class: "centered" }, h("p", { class: "panel error" }, t("invite.invalid"))));
    return;
  }
  const error = h("p", { class: "error", role: "alert" });
  const name = h("input", { id: "name", name: "name", autocomplete: "name", required: true, value: preview.name });
  const password = h("input", {
    id: "password",
    name: "password",
    type: "password",
    autocomplete: "new-password",
    minlength: "12",
    required: true,
  });
  // Customers (and staff where the organization allows it) may join without a password and sign in by link later.
  const passwordless = preview.passwordless
    ? h("button", { type: "button", id: "join-passwordless", class: "secondary" }, t("invite.passwordless"))
    : null;
  const form = h(
    "form",
    { class: "panel" },
    h("h1", {}, t("invite.title", { project: preview.project_name })),
    h("p", {}, t("invite.intro", { organization: preview.organization_name, email: preview.email })),
    h("label", { for: "name" }, t("invite.name")),
    name,
    h("label", { for: "password" }, t("invite.password")),
    password,
    error,
    h("button", { type: "submit", class: "primary" }, t("invite.submit")),
    ...(passwordless ? [h("p", { class: "hint" }, t("invite.passwordlessHint")), passwordless] : []),
  );
  const join = async (withPassword: boolean) => {
    error.textContent = "";
    try {
      const result = await api<SignInResult & { project_id: number }>("POST", "/api/invites/accept", {
        token,
        name: name.value,
        ...(withPassword ? { password: password.value } : {}),
        locale: document.documentElement.lang === "sv" ? "sv" : "en",
      });
      onJoined(result, result.project_id);
    } catch (err) {
      error.textContent = reasonFor(err);
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void join(true);
  });
  passwordless?.addEventListener("click", () => {
    if (!name.value.trim()) {
      error.textContent = t("invite.needName");
      name.focus();
      return;
    }
    void join(false);
  });
  mount(root, h("main", { class: "centered" }, form));
}
