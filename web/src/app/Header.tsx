import { useLocation } from "preact-iso";
import { api, type User } from "../api";
import { locale, setLocale, t, type Locale, type MessageKey } from "../i18n";
import { Bell } from "../screens/inbox/Bell";
import { Search } from "../screens/search/Search";
import { reasonFor } from "./errors";
import { connection, liveClient, signOut, user } from "./session";
import { toast } from "./toast";

const LANGUAGES = [
  ["en", "English"],
  ["sv", "Svenska"],
] as const;

export function Header({ who }: { who: User }) {
  const { route } = useLocation();
  const changeLanguage = async (select: HTMLSelectElement) => {
    const value = select.value;
    try {
      user.value = await api<User>("PATCH", "/api/me", { locale: value });
    } catch (err) {
      select.value = locale(); // the choice did not take: the list shows the language still in use
      toast(t("nav.languageFailed", { reason: reasonFor(err) }));
      return;
    }
    setLocale(value as Locale);
  };
  const staffAdmin = who.role === "owner" || who.role === "admin";
  return (
    <header class="topbar">
      <a href="/" class="brand">
        {t("app.name")}
      </a>
      <span id="hub-connection" class="connection" role="status" data-connection={connection.value}>
        {t(`connection.${connection.value}` as MessageKey)}
      </span>
      <Search />
      <span class="who">{who.name}</span>
      <Bell userId={who.id} live={liveClient()} />
      <a href="/settings/tokens">{t("nav.tokens")}</a>
      {who.role !== "customer" && <a href="/organization" data-staff-only>{t("nav.organization")}</a>}
      {staffAdmin && <a href="/audit" data-staff-only>{t("nav.audit")}</a>}
      <select
        id="language"
        aria-label={t("nav.language")}
        value={locale()}
        onChange={(e) => void changeLanguage(e.currentTarget)}
      >
        {LANGUAGES.map(([value, name]) => (
          <option key={value} value={value} lang={value}>
            {name}
          </option>
        ))}
      </select>
      <button
        type="button"
        class="link"
        onClick={async () => {
          await signOut();
          route("/");
        }}
      >
        {t("nav.signOut")}
      </button>
    </header>
  );
}
