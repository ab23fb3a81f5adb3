// "Where you're signed in": the person's sessions (device, address, last use), each with "Sign out", and "Sign
// out everywhere else" behind a confirm. Ending a session closes its live connections on every server at once.
import { useEffect, useState } from "preact/hooks";
import { api } from "../../api";
import { confirmDialog } from "../../app/confirm";
import { reasonFor } from "../../app/errors";
import { LoadFailed } from "../common/LoadFailed";
import { formatDateTime, t, tn } from "../../i18n";

export interface SignedInSession {
  id: number;
  device: string;
  browser: string | null;
  system: string | null;
  ip: string;
  created_at: string;
  last_seen_at: string;
  current: boolean;
}

const when = (iso: string) => formatDateTime(iso);

/** "Firefox on Linux" in the reader's language (the API's `device` is English). */
export function deviceName(session: Pick<SignedInSession, "browser" | "system">): string {
  const { browser, system } = session;
  if (browser && system) return t("sessions.deviceOn", { browser, system });
  return browser ?? system ?? t("sessions.unknownDevice");
}

export function Sessions() {
  const [sessions, setSessions] = useState<SignedInSession[] | null>(null);
  const [error, setError] = useState("");
  const [loadFailed, setLoadFailed] = useState("");
  const [status, setStatus] = useState("");
  const [busy, setBusy] = useState(false);

  // Never throws (Try again runs it): why the list could not be (re)loaded is said apart from an action's failure.
  const load = async () => {
    try {
      setSessions((await api<{ items: SignedInSession[] }>("GET", "/api/me/sessions")).items);
      setLoadFailed("");
    } catch (err) {
      setLoadFailed(reasonFor(err));
    }
  };
  useEffect(() => {
    void load();
  }, []);

  const act = async (work: () => Promise<string>) => {
    setBusy(true);
    setError("");
    try {
      setStatus(await work());
      await load();
    } catch (err) {
      setError(reasonFor(err));
    } finally {
      setBusy(false);
    }
  };

  const signOut = (session: SignedInSession) =>
    act(async () => {
      await api("DELETE", `/api/me/sessions/${session.id}`);
      if (session.current) location.assign("/");
      return t("sessions.signedOut", { device: deviceName(session) });
    });

  const signOutOthers = async () => {
    const yes = await confirmDialog({
      title: t("sessions.othersTitle"),
      body: t("sessions.othersBody"),
      confirm: t("sessions.othersConfirm"),
      danger: true,
    });
    if (!yes) return;
    await act(async () => {
      const { ended } = await api<{ ended: number }>("POST", "/api/me/sessions/end-others");
      return tn("sessions.othersDone", ended);
    });
  };

  const others = (sessions ?? []).filter((s) => !s.current).length;
  return (
    <section class="panel sessions" aria-labelledby="sessions-title" aria-busy={sessions === null && !loadFailed}>
      <h2 id="sessions-title">{t("sessions.title")}</h2>
      <p class="muted">{t("sessions.intro")}</p>
      {error && (
        <p class="notice notice-error" role="alert">
          {error}
        </p>
      )}
      {loadFailed && (
        <LoadFailed
          id="sessions-load-failed"
          text={t(sessions === null ? "common.loadFailed" : "common.refreshFailed", { reason: loadFailed })}
          retry={load}
        />
      )}
      <p class="sessions-status" role="status">
        {status}
      </p>
      {sessions && (
        <table class="sessions-list">
          <thead>
            <tr>
              <th scope="col">{t("sessions.device")}</th>
              <th scope="col">{t("sessions.place")}</th>
              <th scope="col">{t("sessions.lastUsed")}</th>
              <th scope="col">{t("sessions.signedIn")}</th>
              <th scope="col">{t("tokens.actions")}</th>
            </tr>
          </thead>
          <tbody>
            {sessions.map((session) => (
              <tr key={session.id} data-session-id={String(session.id)} data-current={String(session.current)}>
                <td>
                  {deviceName(session)}
                  {session.current && <strong class="session-current"> · {t("sessions.thisDevice")}</strong>}
                </td>
                <td>
                  <span class="session-label">{t("sessions.place")}: </span>
                  {session.ip || t("sessions.unknownPlace")}
                </td>
                <td>
                  <span class="session-label">{t("sessions.lastUsed")}: </span>
                  {when(session.last_seen_at)}
                </td>
                <td>{when(session.created_at)}</td>
                <td>
                  <button
                    type="button"
                    class="link"
                    disabled={busy}
                    aria-label={t("sessions.signOutOf", { device: deviceName(session) })}
                    onClick={() => void signOut(session)}
                  >
                    {t("sessions.signOut")}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {others > 0 && (
        <button type="button" class="danger sessions-others" disabled={busy} onClick={() => void signOutOthers()}>
          {t("sessions.others")}
        </button>
      )}
    </section>
  );
}
