// My personal API tokens: the list (revoke, behind the app's confirm) and the form for a new one. A new token is
// shown once, to copy; the API's reasons show beside the field they concern.
import { useEffect, useState } from "preact/hooks";
import { api, type User } from "../../api";
import { confirmDialog } from "../../app/confirm";
import { formatDateTime, t, type MessageKey } from "../../i18n";
import { LoadFailed } from "../common/LoadFailed";
import { PageOutOfDate } from "../common/PageNotReady";
import { usePageLoad } from "../common/page-load";
import { failed, Field, useSubmit, type Notice } from "../people/ui";

interface ApiToken {
  id: number;
  name: string;
  scopes: string[];
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  token?: string;
}

const SCOPES = ["read", "write", "admin"] as const;

const when = (iso: string | null) => (iso ? formatDateTime(iso) : t("tokens.never"));

export function Tokens({ user }: { user: User }) {
  const [tokens, setTokens] = useState<ApiToken[] | null>(null);
  const page = usePageLoad();
  const [notice, setNotice] = useState<Notice | null>(null);
  const [revoking, setRevoking] = useState<number | null>(null);
  const [made, setMade] = useState<string | null>(null);

  // Never throws: a failure before the list is shown says so with Try again; after, the list stays as it was, said
  // to be possibly out of date.
  const load = () => page.run(async () => setTokens((await api<{ items: ApiToken[] }>("GET", "/api/me/tokens")).items));
  useEffect(() => {
    void load();
  }, []);

  const revoke = async (token: ApiToken) => {
    const yes = await confirmDialog({
      title: t("tokens.revokeTitle"),
      body: t("tokens.confirmRevoke", { name: token.name }),
      confirm: t("tokens.revoke"),
      danger: true,
    });
    if (!yes) return;
    setRevoking(token.id);
    setNotice(null);
    try {
      await api("DELETE", `/api/me/tokens/${token.id}`);
      setNotice({ kind: "ok", text: t("tokens.revoked", { name: token.name }) });
    } catch (err) {
      setNotice(failed(err));
    } finally {
      setRevoking(null);
      await load(); // the list as it now is, whichever way it went
    }
  };

  return (
    <main class="page">
      <h1>{t("tokens.title")}</h1>
      <p class="muted">{t("tokens.intro")}</p>
      {made && (
        <div class="token-shown" role="status">
          <p>{t("tokens.copyNow")}</p>
          <code id="new-token">{made}</code>
        </div>
      )}
      <p class="notice" role="status" id="tokens-status">
        {notice?.kind === "ok" ? notice.text : ""}
      </p>
      <p class="notice notice-error" role="alert" id="tokens-error">
        {notice?.kind === "error" ? notice.text : ""}
      </p>
      {tokens === null ? (
        page.failed && <LoadFailed id="page-load-failed" text={t("common.loadFailed", { reason: page.failed })} retry={load} />
      ) : (
        <PageOutOfDate error={page.failed} retry={load} />
      )}
      <table class="tokens" aria-busy={tokens === null && !page.failed}>
        <thead>
          <tr>
            {(["tokens.name", "tokens.scopes", "tokens.lastUsed", "tokens.expires", "tokens.actions"] as const).map((key) => (
              <th scope="col" key={key}>
                {t(key)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {(tokens ?? []).map((token) => (
            <tr key={token.id} data-token-id={String(token.id)}>
              <td>{token.name}</td>
              <td>{token.scopes.join(", ")}</td>
              <td>{when(token.last_used_at)}</td>
              <td>{token.expires_at ? when(token.expires_at) : t("tokens.noExpiry")}</td>
              <td>
                <button
                  type="button"
                  class="link"
                  disabled={revoking !== null}
                  aria-busy={revoking === token.id}
                  aria-label={t("tokens.revokeOf", { name: token.name })}
                  onClick={() => void revoke(token)}
                >
                  {revoking === token.id ? t("common.working") : t("tokens.revoke")}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {tokens?.length === 0 && <p class="muted">{t("tokens.none")}</p>}
      <NewToken
        user={user}
        onMade={(token) => {
          setMade(token.token ?? "");
          setNotice({ kind: "ok", text: t("tokens.created", { name: token.name }) });
          void load();
        }}
      />
    </main>
  );
}

function NewToken({ user, onMade }: { user: User; onMade: (token: ApiToken) => void }) {
  const [name, setName] = useState("");
  const [days, setDays] = useState("");
  const offered = SCOPES.filter((s) => s !== "admin" || user.role === "owner" || user.role === "admin");
  const [scopes, setScopes] = useState<string[]>(["read"]);
  const { fields, error, busy, submit } = useSubmit(async () => {
    const made = await api<ApiToken>("POST", "/api/me/tokens", {
      name,
      scopes,
      expires_in_days: days ? Number(days) : null,
    });
    setName("");
    setDays("");
    setScopes(["read"]);
    onMade(made);
  });
  const toggle = (scope: string, on: boolean) =>
    setScopes((old) => SCOPES.filter((s) => (s === scope ? on : old.includes(s))));

  return (
    <form class="panel token-form" onSubmit={submit} aria-busy={busy} aria-labelledby="token-form-title">
      <h2 id="token-form-title">{t("tokens.new")}</h2>
      <Field id="token-name" label={t("tokens.name")} error={fields.name}>
        {(a) => <input {...a} name="name" required maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
      </Field>
      <fieldset aria-describedby={fields.scopes ? "token-scopes-error" : undefined}>
        <legend>{t("tokens.scopes")}</legend>
        {offered.map((scope) => (
          <label for={`scope-${scope}`} key={scope}>
            <input
              type="checkbox"
              name="scope"
              value={scope}
              id={`scope-${scope}`}
              checked={scopes.includes(scope)}
              onChange={(e) => toggle(scope, e.currentTarget.checked)}
            />{" "}
            {t(`tokens.scope.${scope}` as MessageKey)}
          </label>
        ))}
        {fields.scopes && (
          <p id="token-scopes-error" class="field-error">
            {fields.scopes}
          </p>
        )}
      </fieldset>
      <Field id="token-days" label={t("tokens.expiresInDays")} error={fields.expires_in_days}>
        {(a) => (
          <input {...a} name="days" type="number" min={1} max={3650} value={days} onInput={(e) => setDays(e.currentTarget.value)} />
        )}
      </Field>
      <p class="error" role="alert">
        {error}
      </p>
      <button type="submit" class="primary" disabled={busy}>
        {busy ? t("common.working") : t("tokens.create")}
      </button>
    </form>
  );
}
