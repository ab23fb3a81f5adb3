// Mounts a screen still written as a view function (it builds its DOM into a root element and returns a
// clean-up). Screens move to components one at a time; until then this is how the router shows them.
import { useEffect, useRef } from "preact/hooks";
import { locale } from "../i18n";
import { pageMissing } from "./NotFound";

export type Cleanup = (() => void) | void;
export type Runner = (root: HTMLElement) => Promise<Cleanup> | Cleanup;

/** `id` names what is shown: a new id (or a new language) builds the view again. */
export function View({ id, run }: { id: string; run: Runner }) {
  const ref = useRef<HTMLDivElement>(null);
  const lang = locale();
  useEffect(() => {
    let leave: Cleanup;
    let gone = false;
    // Each run builds into its own element: a run still loading when the id or the language changed (its answer
    // came late) writes into a detached element, never over the newer run's page.
    const root = document.createElement("div");
    ref.current!.replaceChildren(root);
    // A view whose own data the API answers 404 or 403 for shows the in-app not-found page.
    void Promise.resolve()
      .then(() => run(root))
      .then(
        (cleanup) => {
          if (gone) cleanup?.();
          else leave = cleanup;
        },
        (err: unknown) => {
          if (!gone && !pageMissing(err)) throw err;
        },
      );
    return () => {
      gone = true;
      leave?.();
      root.remove();
    };
  }, [id, lang]);
  return <div ref={ref} class="view" />;
}
