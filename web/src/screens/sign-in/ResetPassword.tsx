// `/reset-password`: ask for a link by email (the answer is the same whether or not the address has an account);
// `/reset-password#<token>`: choose the new password. That does not sign in: the person signs in with it next.
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError } from "../../api";
import { t } from "../../i18n";
import { Field, useSubmit } from "../people/ui";
import { NewPasswordField } from "./NewPassword";

export function ResetPassword({ token }: { token: string }) {
  // "Ask for a new link" after a spent one shows the request form here (the address then has no token).
  const [current, setCurrent] = useState(token);
  return current ? <Choose token={current} onAgain={() => setCurrent("")} /> : <Ask />;
}

/** The page after the form: what happened, focused so a screen reader and the keyboard start there. */
function Outcome(props: { title: string; children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => ref.current?.focus(), []);
  return (
    <main class="centered">
      <div class="panel">
        <h1 ref={ref} tabIndex={-1}>
          {props.title}
        </h1>
        {props.children}
      </div>
    </main>
  );
}

function Ask() {
  const [email, setEmail] = useState("");
  const [sent, setSent] = useState(false);
  const form = useSubmit(
    async () => {
      await api("POST", "/api/auth/password-reset", { email });
      setSent(true);
    },
    (err) => (err instanceof ApiError && err.code === "rate_limited" ? t("reset.rateLimited") : null),
  );
  if (sent) {
    return (
      <Outcome title={t("reset.title")}>
        <p role="status">{t("reset.sent")}</p>
        <a href="/">{t("reset.backToSignIn")}</a>
      </Outcome>
    );
  }
  return (
    <main class="centered">
      <form class="panel" onSubmit={form.submit} aria-busy={form.busy}>
        <h1>{t("reset.title")}</h1>
        <p>{t("reset.intro")}</p>
        <Field id="email" label={t("login.email")} error={form.fields.email}>
          {(a) => (
            <input
              {...a}
              name="email"
              type="email"
              autocomplete="username"
              required
              value={email}
              onInput={(e) => setEmail(e.currentTarget.value)}
            />
          )}
        </Field>
        <p class="error" role="alert">
          {form.error}
        </p>
        <button type="submit" class="primary" disabled={form.busy}>
          {form.busy ? t("common.working") : t("reset.send")}
        </button>
        <a href="/">{t("reset.backToSignIn")}</a>
      </form>
    </main>
  );
}

function Choose({ token, onAgain }: { token: string; onAgain: () => void }) {
  const [password, setPassword] = useState("");
  const [done, setDone] = useState<"" | "saved" | "invalid">("");
  const form = useSubmit(async () => {
    try {
      await api("POST", "/api/auth/password-reset/confirm", { token, password });
    } catch (err) {
      if (!(err instanceof ApiError && err.code === "reset_invalid")) throw err;
      setDone("invalid");
      return;
    }
    history.replaceState(null, "", "/reset-password"); // the spent token leaves the address bar and history
    setDone("saved");
  });
  if (done === "saved") {
    return (
      <Outcome title={t("reset.chooseTitle")}>
        <p role="status">{t("reset.done")}</p>
        <a href="/">{t("reset.backToSignIn")}</a>
      </Outcome>
    );
  }
  if (done === "invalid") {
    return (
      <Outcome title={t("reset.chooseTitle")}>
        <p class="error" role="alert">
          {t("reset.invalid")}
        </p>
        <a href="/reset-password" onClick={onAgain}>
          {t("reset.again")}
        </a>
      </Outcome>
    );
  }
  return (
    <main class="centered">
      <form class="panel" onSubmit={form.submit} aria-busy={form.busy}>
        <h1>{t("reset.chooseTitle")}</h1>
        <NewPasswordField value={password} onInput={setPassword} error={form.fields.password} />
        <p class="error" role="alert">
          {form.error}
        </p>
        <button type="submit" class="primary" disabled={form.busy}>
          {form.busy ? t("common.working") : t("reset.save")}
        </button>
      </form>
    </main>
  );
}
