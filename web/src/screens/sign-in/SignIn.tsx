// Signing in: email and password (or a sign-in link by email, or a passkey without typing anything), then, for a
// person with a second factor, the second step: their passkey, a code from their authenticator app, or a
// recovery code. The password alone never signs in such a person (server/second_factor.py).
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError } from "../../api";
import { reasonFor } from "../../app/errors";
import { finishSignIn, pendingStep, type SignInResult, type SignInStep } from "../../app/session";
import { t } from "../../i18n";
import { cancelled, signInWithPasskey } from "./passkey";

function failure(err: unknown): string {
  if (cancelled(err)) return t("passkey.cancelled");
  const code = err instanceof ApiError ? err.code : "";
  if (code === "invalid_credentials") return t("login.failed");
  if (code === "rate_limited") return t("login.rateLimited");
  return reasonFor(err);
}

export function SignIn() {
  const step = pendingStep.value;
  return step ? <SecondStep step={step} /> : <Credentials />;
}

function Credentials() {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const [linkSent, setLinkSent] = useState(false);
  const emailRef = useRef<HTMLInputElement>(null);
  const backRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (linkSent) backRef.current?.focus();
  }, [linkSent]);

  const run = async (work: () => Promise<void>) => {
    setError("");
    setBusy(true);
    try {
      await work();
    } catch (err) {
      setError(failure(err));
    } finally {
      setBusy(false);
    }
  };
  const submit = (event: Event) => {
    event.preventDefault();
    void run(async () => {
      finishSignIn(await api<SignInResult>("POST", "/api/auth/login", { email, password }));
    });
  };
  // A second way in, without the password: a one-time link by email, to this browser.
  const askLink = () => {
    if (!email.trim() || !emailRef.current?.checkValidity()) {
      setError(t("link.needEmail"));
      emailRef.current?.focus();
      return;
    }
    setError("");
    setBusy(true);
    api("POST", "/api/auth/link", { email })
      .then(() => setLinkSent(true))
      .catch((err) => {
        const code = err instanceof ApiError ? err.code : "";
        setError(t(code === "rate_limited" ? "reset.rateLimited" : "error.generic"));
      })
      .finally(() => setBusy(false));
  };
  const passkey = () => void run(async () => void finishSignIn(await signInWithPasskey()));

  if (linkSent) {
    return (
      <main class="centered">
        <div class="panel">
          <h1>{t("link.sentTitle")}</h1>
          <p role="status">{t("link.sent")}</p>
          <button type="button" class="link" ref={backRef} onClick={() => setLinkSent(false)}>
            {t("reset.backToSignIn")}
          </button>
        </div>
      </main>
    );
  }
  return (
    <main class="centered">
      <form class="panel" noValidate onSubmit={submit}>
        <h1>{t("login.title")}</h1>
        <label for="email">{t("login.email")}</label>
        <input
          id="email"
          name="email"
          type="email"
          autocomplete="username webauthn"
          required
          ref={emailRef}
          value={email}
          onInput={(e) => setEmail(e.currentTarget.value)}
        />
        <label for="password">{t("login.password")}</label>
        <input
          id="password"
          name="password"
          type="password"
          autocomplete="current-password"
          required
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
        <p class="error" role="alert">
          {error}
        </p>
        <button type="submit" class="primary" disabled={busy}>
          {t("login.submit")}
        </button>
        <button type="button" id="email-link" class="secondary" disabled={busy} onClick={askLink}>
          {t("link.ask")}
        </button>
        <button type="button" id="passkey-sign-in" class="secondary" disabled={busy} onClick={passkey}>
          {t("passkey.signIn")}
        </button>
        <a href="/reset-password">{t("login.forgot")}</a>
      </form>
    </main>
  );
}

function SecondStep({ step }: { step: SignInStep }) {
  const hasCode = step.methods.includes("totp");
  const [mode, setMode] = useState<"code" | "recovery">(hasCode ? "code" : "recovery");
  const [value, setValue] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const inputRef = useRef<HTMLInputElement>(null);
  useEffect(() => inputRef.current?.focus(), [mode]);

  const run = async (work: () => Promise<SignInResult>) => {
    setError("");
    setBusy(true);
    try {
      finishSignIn(await work());
    } catch (err) {
      const code = err instanceof ApiError ? err.code : "";
      if (code === "sign_in_expired") pendingStep.value = null; // back to the password, with the reason below
      setError(failure(err));
      setValue("");
    } finally {
      setBusy(false);
    }
  };
  const submit = (event: Event) => {
    event.preventDefault();
    const body = mode === "code" ? { code: value } : { recovery_code: value };
    void run(() => api<SignInResult>("POST", "/api/auth/second-factor", { ticket: step.ticket, ...body }));
  };
  const other = mode === "code" ? "recovery" : "code";
  return (
    <main class="centered">
      <form class="panel second-step" noValidate onSubmit={submit}>
        <h1>{t("second.title")}</h1>
        <p>{t("second.intro")}</p>
        {step.methods.includes("passkey") && (
          <button
            type="button"
            id="use-passkey"
            class="primary"
            disabled={busy}
            onClick={() => void run(() => signInWithPasskey(step.ticket))}
          >
            {t("passkey.use")}
          </button>
        )}
        {(hasCode || step.methods.includes("recovery")) && (
          <>
            <label for="second-code">{mode === "code" ? t("second.code") : t("second.recovery")}</label>
            <input
              id="second-code"
              name="code"
              ref={inputRef}
              inputMode={mode === "code" ? "numeric" : "text"}
              autocomplete="one-time-code"
              required
              value={value}
              onInput={(e) => setValue(e.currentTarget.value)}
            />
          </>
        )}
        <p class="error" role="alert">
          {error}
        </p>
        {(hasCode || step.methods.includes("recovery")) && (
          <button type="submit" class={step.methods.includes("passkey") ? "secondary" : "primary"} disabled={busy}>
            {t("second.submit")}
          </button>
        )}
        {hasCode && step.methods.includes("recovery") && (
          <button type="button" id="second-switch" class="link" onClick={() => (setMode(other), setValue(""))}>
            {other === "recovery" ? t("second.useRecovery") : t("second.useCode")}
          </button>
        )}
        <button type="button" class="link" onClick={() => (pendingStep.value = null)}>
          {t("reset.backToSignIn")}
        </button>
      </form>
    </main>
  );
}
