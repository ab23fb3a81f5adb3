// Passkeys through @simplewebauthn/browser: the server's options in, the browser's answer out (server/api/passkeys.py).
import { startAuthentication, startRegistration } from "@simplewebauthn/browser";
import { api } from "../../api";
import type { SignInResult } from "../../app/session";

interface Ceremony {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  options: any;
  state: string;
}

/** Sign in with a passkey: as the second step when `ticket` is given, otherwise without typing an address. */
export async function signInWithPasskey(ticket?: string): Promise<SignInResult> {
  const ceremony = await api<Ceremony>("POST", "/api/auth/passkey/options", { ticket: ticket ?? "" });
  const credential = await startAuthentication({ optionsJSON: ceremony.options });
  return api<SignInResult>("POST", "/api/auth/passkey", { state: ceremony.state, credential });
}

/** Add a passkey named `name` to the signed-in person's account. */
export async function addPasskey(name: string): Promise<void> {
  const ceremony = await api<Ceremony>("POST", "/api/me/passkeys/options");
  const credential = await startRegistration({ optionsJSON: ceremony.options });
  await api("POST", "/api/me/passkeys", { state: ceremony.state, credential, name });
}

/** The browser refused or the person cancelled (not a server error): DOMException NotAllowedError and kin. */
export function cancelled(err: unknown): boolean {
  const name = (err as { name?: string } | null)?.name ?? "";
  return name === "NotAllowedError" || name === "AbortError" || name === "InvalidStateError";
}
