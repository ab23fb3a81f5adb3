// `/invite#<token>`: joining a project by invitation. The person names themselves and chooses a password (or, where
// the organization allows it, joins without one and signs in by link later); the API's reasons show beside the field.
// Only the API's answer that the link opens no invitation says "invalid"; a preview that fails otherwise says why,
// with Try again.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError } from "../../api";
import { reasonFor } from "../../app/errors";
import type { SignInResult } from "../../app/session";
import { locale, t } from "../../i18n";
import { LoadFailed } from "../common/LoadFailed";
import { explain, Field, type FieldErrors } from "../people/ui";
import { NewPasswordField } from "./NewPassword";

interface Preview {
  email: string;
  project_name: string;
  organization_name: string;
  name: string;
  passwordless: boolean;
}

type Joined = (result: SignInResult, projectId: number) => void;

/** The server's answer that this link opens no invitation (unknown, used or expired, or no token at all); any
 * other failure (a 500, no connection) is not the link's fault and is said as it is, with Try again. */
function linkInvalid(err: unknown): boolean {
  return err instanceof ApiError && (err.code === "invite_invalid" || (err.status === 422 && err.code === "invalid"));
}

type Shown = Preview | { failed: string } | "invalid" | null;

export function Invite({ token, onJoined }: { token: string; onJoined: Joined }) {
  const [shown, setShown] = useState<Shown>(null);
  const asked = useRef(token);
  const load = async () => {
    const forToken = token;
    try {
      const found = await api<Preview>("POST", "/api/invites/preview", { token });
      if (asked.current === forToken) setShown(found);
    } catch (err) {
      if (asked.current === forToken) setShown(linkInvalid(err) ? "invalid" : { failed: reasonFor(err) });
    }
  };
  useEffect(() => {
    asked.current = token;
    setShown(null);
    void load();
  }, [token]);
  if (shown === null) return <main class="centered" aria-busy="true" />;
  if (shown === "invalid") {
    return (
      <main class="centered">
        <p class="panel error" role="alert">
          {t("invite.invalid")}
        </p>
      </main>
    );
  }
  if ("failed" in shown) {
    return (
      <main class="centered">
        <LoadFailed id="invite-load-failed" class="panel" text={t("invite.loadFailed", { reason: shown.failed })} retry={load} />
      </main>
    );
  }
  return <JoinForm token={token} preview={shown} onJoined={onJoined} />;
}

function JoinForm({ token, preview, onJoined }: { token: string; preview: Preview; onJoined: Joined }) {
  const [name, setName] = useState(preview.name);
  const [password, setPassword] = useState("");
  const [fields, setFields] = useState<FieldErrors>({});
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  const join = async (withPassword: boolean) => {
    setFields({});
    setError("");
    setBusy(true);
    try {
      const result = await api<SignInResult & { project_id: number }>("POST", "/api/invites/accept", {
        token,
        name,
        ...(withPassword ? { password } : {}),
        locale: locale(),
      });
      onJoined(result, result.project_id);
    } catch (err) {
      const said = explain(err);
      setFields(said.fields);
      setError(said.message);
      setBusy(false);
    }
  };
  const submit = (event: Event) => {
    event.preventDefault();
    void join(true);
  };
  const passwordless = () => {
    if (!name.trim()) {
      setFields({ name: t("invite.needName") });
      setError("");
      document.getElementById("name")?.focus();
      return;
    }
    void join(false);
  };
  return (
    <main class="centered">
      <form class="panel" onSubmit={submit} aria-busy={busy}>
        <h1>{t("invite.title", { project: preview.project_name })}</h1>
        <p>{t("invite.intro", { organization: preview.organization_name, email: preview.email })}</p>
        <Field id="name" label={t("invite.name")} error={fields.name}>
          {(a) => (
            <input {...a} name="name" autocomplete="name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
          )}
        </Field>
        <NewPasswordField value={password} onInput={setPassword} error={fields.password} />
        <p class="error" role="alert">
          {error}
        </p>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? t("common.working") : t("invite.submit")}
        </button>
        {preview.passwordless && (
          <>
            <p class="hint">{t("invite.passwordlessHint")}</p>
            <button type="button" id="join-passwordless" class="secondary" disabled={busy} onClick={passwordless}>
              {t("invite.passwordless")}
            </button>
          </>
        )}
      </form>
    </main>
  );
}
