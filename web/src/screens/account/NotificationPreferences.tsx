// How my notifications are mailed (GET/PATCH /api/me/notification-preferences): mentions immediately, hourly,
// daily or never; everything else hourly, daily or never (the API refuses "immediately" there, so it is not offered);
// the progress digest (server/inbox/progress_digest.py) daily, weekly or never.
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../../api";
import { t, type MessageKey } from "../../i18n";
import { reasonFor } from "../../app/errors";
import { LoadFailed } from "../common/LoadFailed";
import { failed, NoticeLine, type Notice } from "../people/ui";
import "../notes/notes.css";

type Cadence = "immediately" | "hourly" | "daily" | "weekly" | "off";
interface Preferences {
  mentions: Cadence;
  others: Exclude<Cadence, "immediately" | "weekly">;
  progress: "daily" | "weekly" | "off";
}

const CHOICES: Record<keyof Preferences, readonly Cadence[]> = {
  mentions: ["immediately", "hourly", "daily", "off"],
  others: ["hourly", "daily", "off"],
  progress: ["daily", "weekly", "off"],
};

export function NotificationPreferences() {
  const [prefs, setPrefs] = useState<Preferences | null>(null);
  const [saving, setSaving] = useState<keyof Preferences | null>(null);
  const [notice, setNotice] = useState<Notice | null>(null);
  const [loadError, setLoadError] = useState("");

  // Never throws (Try again runs it).
  const load = async () => {
    try {
      setPrefs(await api<Preferences>("GET", "/api/me/notification-preferences"));
      setLoadError("");
    } catch (err) {
      setLoadError(reasonFor(err));
    }
  };
  useEffect(() => void load(), []);

  // Each choice saves on its own; a refusal shows why and the choice as the server has it. Choices made quickly
  // one after another (arrow keys in a group) are sent in order, and only the answer to the last one is shown, so
  // what the page shows is what the server ends up with.
  const chain = useRef<Promise<void>>(Promise.resolve());
  const latest = useRef(0);
  const choose = (field: keyof Preferences, value: Cadence) => {
    if (!prefs) return;
    const mine = ++latest.current;
    setPrefs((current) => (current ? ({ ...current, [field]: value } as Preferences) : current));
    setSaving(field);
    setNotice(null);
    chain.current = chain.current.then(async () => {
      try {
        const saved = await api<Preferences>("PATCH", "/api/me/notification-preferences", { [field]: value });
        if (mine !== latest.current) return;
        setPrefs(saved);
        setNotice({ kind: "ok", text: t("prefs.saved") });
      } catch (err) {
        if (mine !== latest.current) return;
        setNotice(failed(err));
        await load();
      } finally {
        if (mine === latest.current) setSaving(null);
      }
    });
  };

  return (
    <section class="page panel-section prefs" aria-labelledby="prefs-title" id="notification-preferences">
      <h2 id="prefs-title">{t("prefs.title")}</h2>
      <p class="hint">{t("prefs.intro")}</p>
      {loadError && (
        <LoadFailed
          id="prefs-load-failed"
          text={t(prefs === null ? "common.loadFailed" : "common.refreshFailed", { reason: loadError })}
          retry={load}
        />
      )}
      {prefs &&
        (Object.keys(CHOICES) as (keyof Preferences)[]).map((field) => (
          <fieldset class="choices" key={field} id={`prefs-${field}`} aria-busy={saving === field}>
            <legend>
              {t(`prefs.${field}` as MessageKey)}
              {saving === field && <span class="hint"> {t("common.saving")}</span>}
            </legend>
            {CHOICES[field].map((value) => (
              <label class="choice" key={value}>
                <input
                  type="radio"
                  name={`prefs-${field}`}
                  value={value}
                  checked={prefs[field] === value}
                  onChange={() => choose(field, value)}
                />
                <span>{t(`prefs.${value}` as MessageKey)}</span>
              </label>
            ))}
          </fieldset>
        ))}
      <NoticeLine notice={notice} />
    </section>
  );
}
