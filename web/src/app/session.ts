// Who is signed in, and the one live connection the signed-in pages share.
import { signal } from "@preact/signals";
import { api, type User } from "../api";
import { pickLocale, setLocale } from "../i18n";
import { LiveClient, type ConnectionState } from "../live";

/** undefined while the session is being asked for, null when nobody is signed in. */
export const user = signal<User | null | undefined>(undefined);
export const connection = signal<ConnectionState>("connecting");
/** The session may only set up a second factor (the organization requires one): the enrolment screen shows. */
export const mustEnrol = signal(false);

/** A password (or link, or invitation) was right, and a second factor is due: the ticket for that step. */
export interface SignInStep {
  ticket: string;
  methods: string[];
}
export const pendingStep = signal<SignInStep | null>(null);

/** What every way of signing in answers (POST /api/auth/login, /second-factor, /passkey, /link/redeem...). */
export interface SignInResult {
  user: User | null;
  second_factor: SignInStep | null;
  enrolment_required?: boolean;
}

/** Take a sign-in answer: signed in (true), or the second step is due (false, the sign-in screen asks for it). */
export function finishSignIn(result: SignInResult): boolean {
  if (result.second_factor || !result.user) {
    pendingStep.value = result.second_factor;
    user.value = null;
    return false;
  }
  pendingStep.value = null;
  mustEnrol.value = Boolean(result.enrolment_required);
  signedIn(result.user);
  return true;
}

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
  const session = await api<{ user: User | null; enrolment_required?: boolean }>("GET", "/api/auth/session");
  const who = session.user;
  mustEnrol.value = Boolean(session.enrolment_required);
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
  mustEnrol.value = false;
  pendingStep.value = null;
  user.value = null;
}
