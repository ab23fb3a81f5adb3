import { useLocation } from "preact-iso";
import { api, type User } from "../api";
import { locale, setLocale, t, type Locale, type MessageKey } from "../i18n";
import { Bell } from "../screens/inbox/Bell";
import { Search } from "../screens/search/Search";
import { connection, liveClient, signOut, user } from "./session";

const LANGUAGES = [
  ["en", "English"],
  ["sv", "Svenska"],
] as const;

export function Header({ who }: { who: User }) {
  const { route } = useLocation();
  const changeLanguage = async (value: string) => {
    user.value = await api<User>("PATCH", "/api/me", { locale: value });
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
      {who.role !== "customer" && <a href="/organization">{t("nav.organization")}</a>}
      {staffAdmin && <a href="/audit">{t("nav.audit")}</a>}
      <select
        id="language"
        aria-label={t("nav.language")}
        value={locale()}
        onChange={(e) => void changeLanguage(e.currentTarget.value)}
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
