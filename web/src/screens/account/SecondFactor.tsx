// "Ways to sign in": the person's passkeys (add several, rename, remove), authenticator codes (on with a first code
// from the app, or off), and one-time recovery codes (shown once, made anew on request). The same panel walks a
// person whose organization requires a second factor through enrolment (the Enrol screen).
import { useEffect, useState } from "preact/hooks";
import { api } from "../../api";
import { confirmDialog } from "../../app/confirm";
import { reasonFor } from "../../app/errors";
import { formatDateTime, t, tn } from "../../i18n";
import { LoadFailed } from "../common/LoadFailed";
import { addPasskey, cancelled } from "../sign-in/passkey";

interface PasskeyRow {
  id: number;
  name: string;
  created_at: string;
  last_used_at: string | null;
}

export interface Factors {
  totp: boolean;
  passkeys: PasskeyRow[];
  recovery_codes_left: number;
  required: boolean;
  enrolment_required: boolean;
}

const when = (iso: string | null) => (iso ? formatDateTime(iso) : t("tokens.never"));

export function SecondFactor({ onChange }: { onChange?: (factors: Factors) => void }) {
  const [factors, setFactors] = useState<Factors | null>(null);
  const [error, setError] = useState("");
  const [status, setStatus] = useState("");
  const [busy, setBusy] = useState(false);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [setup, setSetup] = useState<{ secret: string; uri: string } | null>(null);
  const [code, setCode] = useState("");
  const [name, setName] = useState("");
  const [renaming, setRenaming] = useState<{ id: number; name: string } | null>(null);

  const load = async () => {
    const loaded = await api<Factors>("GET", "/api/me/second-factor");
    setFactors(loaded);
    onChange?.(loaded);
  };
  // The first load: its failure is said with Try again (an action's failure, reload included, is said as the action's).
  const [openFailed, setOpenFailed] = useState("");
  const open = async () => {
    try {
      await load();
      setOpenFailed("");
    } catch (err) {
      setOpenFailed(reasonFor(err));
    }
  };
  useEffect(() => {
    void open();
  }, []);
  // "Rename" opens the name field in place of the row: the keyboard goes with it.
  useEffect(() => {
    if (renaming) document.getElementById(`passkey-rename-${renaming.id}`)?.focus();
  }, [renaming?.id]);

  const act = async (work: () => Promise<string>) => {
    setBusy(true);
    setError("");
    setStatus("");
    try {
      setStatus(await work());
      await load();
    } catch (err) {
      setError(cancelled(err) ? t("passkey.cancelled") : reasonFor(err));
    } finally {
      setBusy(false);
    }
  };

  const add = (event: Event) => {
    event.preventDefault();
    const label = name.trim() || t("passkey.defaultName");
    void act(async () => {
      await addPasskey(label);
      setName("");
      return t("passkey.added", { name: label });
    });
  };
  const rename = (event: Event) => {
    event.preventDefault();
    if (!renaming) return;
    void act(async () => {
      await api("PATCH", `/api/me/passkeys/${renaming.id}`, { name: renaming.name });
      setRenaming(null);
      return t("passkey.renamed", { name: renaming.name });
    });
  };
  const remove = async (row: PasskeyRow) => {
    const yes = await confirmDialog({
      title: t("passkey.removeTitle", { name: row.name }),
      body: t("passkey.removeBody"),
      confirm: t("passkey.remove"),
      danger: true,
    });
    if (yes) void act(async () => (await api("DELETE", `/api/me/passkeys/${row.id}`), t("passkey.removed", { name: row.name })));
  };
  const startTotp = () =>
    void act(async () => {
      setSetup(await api<{ secret: string; uri: string }>("POST", "/api/me/totp"));
      setCodes(null);
      return "";
    });
  const confirmTotp = (event: Event) => {
    event.preventDefault();
    void act(async () => {
      const made = await api<{ codes: string[] }>("POST", "/api/me/totp/confirm", { code });
      setSetup(null);
      setCode("");
      setCodes(made.codes);
      return t("totp.on");
    });
  };
  const stopTotp = async () => {
    const yes = await confirmDialog({
      title: t("totp.offTitle"),
      body: t("totp.offBody"),
      confirm: t("totp.turnOff"),
      danger: true,
    });
    if (yes) void act(async () => (await api("DELETE", "/api/me/totp"), t("totp.off")));
  };
  const newCodes = () =>
    void act(async () => {
      setCodes((await api<{ codes: string[] }>("POST", "/api/me/recovery-codes")).codes);
      return t("recovery.made");
    });

  return (
    <section class="panel second-factor" id="second-factor" aria-labelledby="second-factor-title" aria-busy={!factors}>
      <h2 id="second-factor-title">{t("second.settingsTitle")}</h2>
      <p class="muted">{factors?.required ? t("second.required") : t("second.settingsIntro")}</p>
      {error && (
        <p class="notice notice-error" role="alert">
          {error}
        </p>
      )}
      {!factors && openFailed && (
        <LoadFailed id="second-factor-load-failed" text={t("common.loadFailed", { reason: openFailed })} retry={open} />
      )}
      <p role="status" class="second-factor-status">
        {status}
      </p>
      {factors && (
        <>
          <h3>{t("passkey.title")}</h3>
          {factors.passkeys.length === 0 ? (
            <p class="muted">{t("passkey.none")}</p>
          ) : (
            <ul class="rows passkeys">
              {factors.passkeys.map((row) => (
                <li key={row.id} data-passkey-id={String(row.id)}>
                  {renaming?.id === row.id ? (
                    <form class="inline-form" onSubmit={rename}>
                      <label for={`passkey-rename-${row.id}`}>{t("passkey.name")}</label>
                      <input
                        id={`passkey-rename-${row.id}`}
                        value={renaming.name}
                        maxLength={100}
                        required
                        onInput={(e) => setRenaming({ id: row.id, name: e.currentTarget.value })}
                        onKeyDown={(e) => e.key === "Escape" && setRenaming(null)}
                      />
                      <button type="submit" class="primary" disabled={busy}>
                        {t("passkey.save")}
                      </button>
                      <button type="button" class="link" onClick={() => setRenaming(null)}>
                        {t("common.cancel")}
                      </button>
                    </form>
                  ) : (
                    <>
                      <span class="row-who">
                        <strong class="passkey-name">{row.name}</strong>
                        <small>
                          {t("passkey.addedOn", { when: when(row.created_at) })} ·{" "}
                          {t("passkey.lastUsed", { when: when(row.last_used_at) })}
                        </small>
                      </span>
                      <span class="row-controls">
                        <button
                          type="button"
                          class="link"
                          aria-label={t("passkey.renameOf", { name: row.name })}
                          onClick={() => setRenaming({ id: row.id, name: row.name })}
                        >
                          {t("passkey.rename")}
                        </button>
                        <button
                          type="button"
                          class="link"
                          disabled={busy}
                          aria-label={t("passkey.removeOf", { name: row.name })}
                          onClick={() => void remove(row)}
                        >
                          {t("passkey.remove")}
                        </button>
                      </span>
                    </>
                  )}
                </li>
              ))}
            </ul>
          )}
          <form class="inline-form add-passkey" onSubmit={add}>
            <label for="passkey-name">{t("passkey.name")}</label>
            <input
              id="passkey-name"
              maxLength={100}
              placeholder={t("passkey.defaultName")}
              value={name}
              onInput={(e) => setName(e.currentTarget.value)}
            />
            <button type="submit" id="add-passkey" class="primary" disabled={busy}>
              {t("passkey.add")}
            </button>
          </form>

          <h3>{t("totp.title")}</h3>
          {factors.totp ? (
            <p>
              <span class="tag">{t("totp.isOn")}</span>{" "}
              <button type="button" id="totp-off" class="secondary" disabled={busy} onClick={() => void stopTotp()}>
                {t("totp.turnOff")}
              </button>
            </p>
          ) : setup ? (
            <form class="totp-setup" onSubmit={confirmTotp}>
              <p>{t("totp.scan")}</p>
              <p>
                <code id="totp-secret" class="secret">
                  {setup.secret}
                </code>
              </p>
              <p>
                <a href={setup.uri}>{t("totp.openApp")}</a>
              </p>
              <label for="totp-code">{t("totp.firstCode")}</label>
              <input
                id="totp-code"
                inputMode="numeric"
                autocomplete="one-time-code"
                required
                value={code}
                onInput={(e) => setCode(e.currentTarget.value)}
              />
              <button type="submit" id="totp-confirm" class="primary" disabled={busy}>
                {t("totp.confirm")}
              </button>
            </form>
          ) : (
            <p>
              <button type="button" id="totp-start" class="secondary" disabled={busy} onClick={startTotp}>
                {t("totp.turnOn")}
              </button>
            </p>
          )}

          <h3>{t("recovery.title")}</h3>
          {codes ? (
            <div class="recovery-codes" role="region" aria-label={t("recovery.title")}>
              <p>{t("recovery.saveNow")}</p>
              <ul id="recovery-codes">
                {codes.map((c) => (
                  <li key={c}>
                    <code>{c}</code>
                  </li>
                ))}
              </ul>
            </div>
          ) : (
            <p class="muted">{tn("recovery.left", factors.recovery_codes_left)}</p>
          )}
          {(factors.totp || factors.passkeys.length > 0) && (
            <button type="button" id="recovery-new" class="secondary" disabled={busy} onClick={newCodes}>
              {t("recovery.new")}
            </button>
          )}
        </>
      )}
    </section>
  );
}
