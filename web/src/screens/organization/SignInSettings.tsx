// The organization's sign-in setting: whether staff may sign in by a link by email, as customers always may. Staff
// read it; the owner turns it on or off (a checkbox that saves on change, with "Saved" or why it failed).
import { useEffect, useState } from "preact/hooks";
import { api, type User } from "../../api";
import { t } from "../../i18n";
import { explain, failed, NoticeLine, type Notice } from "../people/ui";

interface OrganizationSettings {
  allow_staff_link_sign_in: boolean;
}

export function SignInSettings({ user }: { user: User }) {
  const [settings, setSettings] = useState<OrganizationSettings | null>(null);
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<Notice | null>(null);
  const [loadError, setLoadError] = useState("");
  const owner = user.role === "owner";

  useEffect(() => {
    api<OrganizationSettings>("GET", "/api/organization/settings")
      .then(setSettings)
      .catch((err: unknown) => setLoadError(explain(err).message));
  }, []);

  const toggle = async (on: boolean) => {
    setBusy(true);
    setNotice(null);
    setSettings({ allow_staff_link_sign_in: on });
    try {
      setSettings(await api<OrganizationSettings>("PATCH", "/api/organization/settings", { allow_staff_link_sign_in: on }));
      setNotice({ kind: "ok", text: t("orgsettings.saved") });
    } catch (err) {
      setSettings({ allow_staff_link_sign_in: !on });
      setNotice(failed(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="panel-section" aria-labelledby="org-sign-in-title" id="org-sign-in">
      <h2 id="org-sign-in-title">{t("orgsettings.title")}</h2>
      {loadError && (
        <p class="notice notice-error" role="alert">
          {loadError}
        </p>
      )}
      {settings && (
        <>
          <label class="choice">
            <input
              type="checkbox"
              id="allow-staff-link"
              checked={settings.allow_staff_link_sign_in}
              disabled={!owner || busy}
              aria-describedby="allow-staff-link-hint"
              onChange={(e) => void toggle(e.currentTarget.checked)}
            />
            <span>{t("orgsettings.staffLink")}</span>
          </label>
          <p class="hint" id="allow-staff-link-hint">
            {owner ? t("orgsettings.staffLinkHint") : t("orgsettings.ownerOnly")}
          </p>
          {/* Its own live regions, apart from the Organization page's line. */}
          <NoticeLine notice={notice} id="org-sign-in" />
        </>
      )}
    </section>
  );
}
