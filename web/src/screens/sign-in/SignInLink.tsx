// `/sign-in-link#<token>`: the landing page of a mailed sign-in link. It signs in only in the browser that asked
// for the link (the server checks that browser's cookie); anywhere else it says where to open it instead.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError } from "../../api";
import type { SignInResult } from "../../app/session";
import { t, type MessageKey } from "../../i18n";

function refusal(err: unknown): MessageKey {
  const code = err instanceof ApiError ? err.code : "";
  if (code === "link_other_browser") return "link.otherBrowser";
  if (code === "rate_limited") return "login.rateLimited";
  if (code === "link_invalid") return "link.invalid";
  return "error.generic";
}

export function SignInLink({ token, onSignedIn }: { token: string; onSignedIn: (result: SignInResult) => void }) {
  // The reason as a catalog key, so a change of language rewords it.
  const [refused, setRefused] = useState<MessageKey | null>(null);
  useEffect(() => {
    let gone = false;
    setRefused(null);
    api<SignInResult>("POST", "/api/auth/link/redeem", { token }).then(
      (result) => gone || onSignedIn(result),
      (err: unknown) => gone || setRefused(refusal(err)),
    );
    return () => {
      gone = true;
    };
  }, [token]);
  return (
    <main class="centered">
      <div class="panel" aria-busy={refused === null}>
        {refused === null ? (
          <p role="status">{t("link.signingIn")}</p>
        ) : (
          <>
            <h1>{t("link.refusedTitle")}</h1>
            <p class="error" role="alert">
              {t(refused)}
            </p>
            <a href="/">{t("link.again")}</a>
          </>
        )}
      </div>
    </main>
  );
}
