// Who is signed in, and the one live connection the signed-in pages share.
import { signal } from "@preact/signals";
import { api, type User } from "../api";
import { pickLocale, setLocale } from "../i18n";
import { LiveClient, type ConnectionState } from "../live";

/** undefined while the session is being asked for, null when nobody is signed in. */
export const user = signal<User | null | undefined>(undefined);
export const connection = signal<ConnectionState>("connecting");

let live: LiveClient | null = null;

export function liveClient(): LiveClient {
  if (!live) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const client = new LiveClient({ url: `${scheme}://${location.host}/ws` });
    live = client;
    client.onState((state) => {
      connection.value = state;
      if (state === "signed-out") user.value = null;
    });
    client.start();
  }
  return live;
}

addEventListener("online", () => live?.retryNow());
addEventListener("offline", () => live?.pause());

export function signedIn(who: User): void {
  setLocale(pickLocale([who.locale, ...navigator.languages]));
  user.value = who;
}

export async function loadSession(): Promise<void> {
  const who = (await api<{ user: User | null }>("GET", "/api/auth/session")).user;
  if (who) signedIn(who);
  else user.value = null;
}

export async function signOut(): Promise<void> {
  await api("POST", "/api/auth/logout").catch(() => undefined);
  navigator.serviceWorker?.controller?.postMessage("clear"); // nothing of this account stays on the device
  for (const db of (await indexedDB.databases?.()) ?? []) {
    if (db.name?.startsWith("tandem-note-")) indexedDB.deleteDatabase(db.name);
  }
  live?.stop();
  live = null;
  connection.value = "connecting";
  user.value = null;
}
