import "./style.css";
import { api, type User } from "./api";
import { h } from "./dom";
import { pickLocale, setLocale, t } from "./i18n";
import { renderBoard } from "./views/board";
import { renderHome } from "./views/home";
import { renderInvite } from "./views/invite";
import { renderLogin } from "./views/login";

const root = document.getElementById("app") as HTMLElement;
let user: User | null = null;

function header(): HTMLElement {
  const signOut = h("button", { type: "button", class: "link" }, t("nav.signOut"));
  signOut.addEventListener("click", async () => {
    await api("POST", "/api/auth/logout").catch(() => undefined);
    user = null;
    navigate("/");
  });
  return h(
    "header",
    { class: "topbar" },
    h("a", { href: "/", "data-link": "true", class: "brand" }, t("app.name")),
    h("span", { class: "who" }, user ? user.name : ""),
    signOut,
  );
}

function signedIn(who: User): void {
  user = who;
  setLocale(pickLocale([who.locale, ...navigator.languages]));
  void route();
}

async function route(): Promise<void> {
  const path = location.pathname;
  if (path === "/invite") {
    await renderInvite(root, location.hash.slice(1), signedIn);
    return;
  }
  if (!user) {
    try {
      user = (await api<{ user: User }>("GET", "/api/me")).user;
      setLocale(pickLocale([user.locale, ...navigator.languages]));
    } catch {
      renderLogin(root, signedIn);
      return;
    }
  }
  const board = path.match(/^\/projects\/(\d+)$/);
  if (board) await renderBoard(root, header(), Number(board[1]));
  else await renderHome(root, header());
}

export function navigate(path: string): void {
  history.pushState(null, "", path);
  void route();
}

document.addEventListener("click", (event) => {
  const link = (event.target as Element).closest("a[data-link]");
  if (link instanceof HTMLAnchorElement && link.origin === location.origin) {
    event.preventDefault();
    navigate(link.pathname);
  }
});
window.addEventListener("popstate", () => void route());

setLocale(pickLocale(navigator.languages));
void route();
