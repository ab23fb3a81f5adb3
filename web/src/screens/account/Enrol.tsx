// Enrolment at sign-in: the organization requires a second factor and this person has none yet. Until they set
// one up, the server lets this session do nothing else (403 enrolment_required), so this screen is all there is.
import { useEffect, useRef, useState } from "preact/hooks";
import { mustEnrol, signOut } from "../../app/session";
import { t } from "../../i18n";
import { SecondFactor, type Factors } from "./SecondFactor";

export function Enrol() {
  const [done, setDone] = useState(false);
  const title = useRef<HTMLHeadingElement>(null);
  useEffect(() => title.current?.focus(), []);
  const changed = (factors: Factors) => setDone(factors.totp || factors.passkeys.length > 0);
  return (
    <main class="page enrol">
      <h1 tabIndex={-1} ref={title}>
        {t("enrol.title")}
      </h1>
      <p>{t("enrol.intro")}</p>
      <SecondFactor onChange={changed} />
      <p class="enrol-actions">
        {done && (
          <button type="button" id="enrol-continue" class="primary" onClick={() => (mustEnrol.value = false)}>
            {t("enrol.continue")}
          </button>
        )}{" "}
        <button type="button" class="link" onClick={() => void signOut()}>
          {t("nav.signOut")}
        </button>
      </p>
    </main>
  );
}
