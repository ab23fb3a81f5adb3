// How my notifications are mailed (GET/PATCH /api/me/notification-preferences): mentions immediately, hourly,
// daily or never; everything else hourly, daily or never (the API refuses "immediately" there, so it is not offered).
import { useEffect, useState } from "preact/hooks";
import { api } from "../../api";
import { t, type MessageKey } from "../../i18n";
import { explain, failed, NoticeLine, type Notice } from "../people/ui";
import "../notes/notes.css";

type Cadence = "immediately" | "hourly" | "daily" | "off";
interface Preferences {
  mentions: Cadence;
  others: Exclude<Cadence, "immediately">;
}

const CHOICES: Record<keyof Preferences, readonly Cadence[]> = {
  mentions: ["immediately", "hourly", "daily", "off"],
  others: ["hourly", "daily", "off"],
};

export function NotificationPreferences() {
  const [prefs, setPrefs] = useState<Preferences | null>(null);
  const [saving, setSaving] = useState<keyof Preferences | null>(null);
  const [notice, setNotice] = useState<Notice | null>(null);
  const [loadError, setLoadError] = useState("");

  const load = async () => {
    try {
      setPrefs(await api<Preferences>("GET", "/api/me/notification-preferences"));
      setLoadError("");
    } catch (err) {
      setLoadError(explain(err).message);
    }
  };
  useEffect(() => void load(), []);

  // Each choice saves on its own; a refusal shows why and the choice as the server has it.
  const choose = async (field: keyof Preferences, value: Cadence) => {
    if (!prefs) return;
    setPrefs({ ...prefs, [field]: value } as Preferences);
    setSaving(field);
    setNotice(null);
    try {
      setPrefs(await api<Preferences>("PATCH", "/api/me/notification-preferences", { [field]: value }));
      setNotice({ kind: "ok", text: t("prefs.saved") });
    } catch (err) {
      setNotice(failed(err));
      await load();
    } finally {
      setSaving(null);
    }
  };

  return (
    <section class="page panel-section prefs" aria-labelledby="prefs-title" id="notification-preferences">
      <h2 id="prefs-title">{t("prefs.title")}</h2>
      <p class="hint">{t("prefs.intro")}</p>
      {loadError && (
        <p class="error" role="alert">
          {loadError}
        </p>
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
                  onChange={() => void choose(field, value)}
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
