import "./style.css";
import { api, type User } from "./api";
import { h } from "./dom";
import { locale, pickLocale, setLocale, t, type Locale, type MessageKey } from "./i18n";
import { LiveClient, type ConnectionState } from "./live";
import { renderBoard } from "./views/board";
import { renderFiles } from "./views/files";
import { renderRequest, renderRequests } from "./views/requests";
import { renderHome } from "./views/home";
import { renderInvite } from "./views/invite";
import { renderTask } from "./views/task";
import { renderLogin } from "./views/login";
import { renderReset } from "./views/reset";

const root = document.getElementById("app") as HTMLElement;
let user: User | null = null;
let live: LiveClient | null = null;
let leaveView: (() => void) | null = null;
let stopBadge: (() => void) | null = null;

function liveClient(): LiveClient {
  if (!live) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    live = new LiveClient({ url: `${scheme}://${location.host}/ws` });
    live.onState((state) => {
      if (state === "signed-out") {
        user = null;
        void route();
      }
    });
    window.addEventListener("online", () => live?.retryNow());
    window.addEventListener("offline", () => live?.pause());
    live.start();
  }
  return live;
}

function showState(el: HTMLElement, state: ConnectionState): void {
  el.dataset.connection = state;
  el.textContent = t(`connection.${state}` as MessageKey);
}

function header(): HTMLElement {
  const signOut = h("button", { type: "button", class: "link" }, t("nav.signOut"));
  signOut.addEventListener("click", async () => {
    await api("POST", "/api/auth/logout").catch(() => undefined);
    navigator.serviceWorker?.controller?.postMessage("clear"); // nothing of this account stays on the device
    for (const db of (await indexedDB.databases?.()) ?? []) {
      if (db.name?.startsWith("tandem-note-")) indexedDB.deleteDatabase(db.name);
    }
    live?.stop();
    live = null;
    user = null;
    navigate("/");
  });
  const language = h("select", { id: "language", "aria-label": t("nav.language") });
  for (const [value, name] of [["en", "English"], ["sv", "Svenska"]] as const) {
    const option = h("option", { value, lang: value }, name);
    option.selected = locale() === value;
    language.append(option);
  }
  language.addEventListener("change", async () => {
    user = await api<User>("PATCH", "/api/me", { locale: language.value });
    setLocale(language.value as Locale);
    void route();
  });
  const connection = h("span", { id: "hub-connection", class: "connection", role: "status", "data-connection": "connecting" });
  // Each page's header follows the connection's state from the moment it is built (it may open before mounting).
  stopBadge?.();
  stopBadge = liveClient().onState((state) => showState(connection, state));
  return h(
    "header",
    { class: "topbar" },
    h("a", { href: "/", "data-link": "true", class: "brand" }, t("app.name")),
    connection,
    h("span", { class: "who" }, user ? user.name : ""),
    h("a", { href: "/settings/tokens", "data-link": "true" }, t("nav.tokens")),
    user && (user.role === "owner" || user.role === "admin")
      ? h("a", { href: "/audit", "data-link": "true" }, t("nav.audit"))
      : null,
    language,
    signOut,
  );
}

function signedIn(who: User): void {
  user = who;
  setLocale(pickLocale([who.locale, ...navigator.languages]));
  void route();
}

async function route(): Promise<void> {
  leaveView?.();
  leaveView = null;
  const path = location.pathname;
  if (path === "/invite") {
    await renderInvite(root, location.hash.slice(1), signedIn);
    return;
  }
  if (path === "/reset-password") {
    renderReset(root, location.hash.slice(1));
    return;
  }
  if (!user) {
    user = (await api<{ user: User | null }>("GET", "/api/auth/session")).user;
    if (!user) {
      renderLogin(root, signedIn);
      return;
    }
    setLocale(pickLocale([user.locale, ...navigator.languages]));
  }
  const note = path.match(/^\/projects\/(\d+)\/notes\/(\d+)$/);
  const notes = path.match(/^\/projects\/(\d+)\/notes$/);
  const task = path.match(/^\/projects\/(\d+)\/tasks\/(\d+)$/);
  const board = path.match(/^\/projects\/(\d+)$/);
  const requests = path.match(/^\/projects\/(\d+)\/requests$/);
  const request = path.match(/^\/projects\/(\d+)\/requests\/(\d+)$/);
  const files = path.match(/^\/projects\/(\d+)\/files$/);
  const reports = path.match(/^\/projects\/(\d+)\/reports$/);
  const id = (m: RegExpMatchArray, i: number) => Number(m[i]);
  if (path === "/settings/tokens" || path === "/audit") {
    const views = await import("./views/account");
    if (path === "/audit") await views.renderAudit(root, header());
    else await views.renderTokens(root, header(), user);
  } else if (note || notes) {
    // The editor (CodeMirror, Yjs) loads only when a note is opened.
    const views = await import("./views/notes");
    leaveView = note
      ? await views.renderNote(root, header(), Number(note[1]), Number(note[2]), user)
      : await views.renderNotes(root, header(), Number(notes![1]), user);
  } else if (reports || path === "/reports") {
    // The dashboards (and Chart.js) load only when a report is opened.
    const views = await import("./views/reports");
    leaveView = reports
      ? await views.renderReports(root, header(), id(reports, 1), user, liveClient())
      : await views.renderPortfolio(root, header());
  } else if (requests) leaveView = await renderRequests(root, header(), id(requests, 1), user, liveClient());
  else if (request) leaveView = await renderRequest(root, header(), id(request, 1), id(request, 2), user, liveClient());
  else if (files) leaveView = await renderFiles(root, header(), id(files, 1), user, liveClient());
  else if (task) leaveView = await renderTask(root, header(), Number(task[1]), Number(task[2]), user, liveClient());
  else if (board) leaveView = await renderBoard(root, header(), Number(board[1]), user, liveClient());
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
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch(() => undefined); // offline reading is a bonus, not a need
}
