import { useState } from "preact/hooks";
import { reasonFor } from "../../app/errors";
import { pageMissing } from "../../app/NotFound";

/**
 * A page's own loads and why the last one failed. `run(load)` awaits `load`: a 404 or 403 shows the in-app
 * not-found page (pageMissing), any other failure is kept in `failed` as its reason in the reader's language, and a
 * load that succeeds clears it. `run` never throws, so a page can start it with `void`, hand it to the live client's
 * reload, and make it LoadFailed's retry; the page says `failed` with PageNotReady (nothing shown yet) or
 * PageOutOfDate (what is shown is older than the server's).
 *
 * `of` names what the page shows (its ids): a failure belongs to the `of` it was run for, so a page reused for
 * another task or project never shows the last one's failure, even one that arrives late.
 */
export function usePageLoad(of: string | number = ""): { failed: string; run: (load: () => Promise<unknown>) => Promise<void> } {
  const [held, setHeld] = useState({ of, reason: "" });
  const run = async (load: () => Promise<unknown>) => {
    try {
      await load();
      setHeld({ of, reason: "" });
    } catch (err) {
      if (!pageMissing(err)) setHeld({ of, reason: reasonFor(err) });
    }
  };
  return { failed: held.of === of ? held.reason : "", run };
}
