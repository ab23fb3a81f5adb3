// On the project page: the changes since the person last looked (customers: shared ones only, as the server sends),
// marked "New", with a link to the whole activity feed. Opening the page counts as a visit; what is new stays
// marked while the page is open. `stamp` changes when the board hears of a change, to refetch.
import { useEffect, useState } from "preact/hooks";
import { t, tn } from "../../i18n";
import { explain } from "../people/ui";
import { ActivityList } from "./ActivityList";
import { isNew, loadActivity, markVisited, type ActivityEvent } from "./activity-api";
import "./activity.css";

const SHOWN = 5;

export function SinceLastVisit({ projectId, stamp = 0 }: { projectId: number; stamp?: number }) {
  const [items, setItems] = useState<ActivityEvent[] | null>(null);
  const [since, setSince] = useState<string | null | undefined>(undefined);
  const [error, setError] = useState("");

  useEffect(() => {
    let current = true;
    // A burst of board events refetches once.
    const wait = stamp === 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, 250));
    wait
      .then(() => (current ? loadActivity(projectId, undefined, 20) : null))
      .then(async (page) => {
        if (!page) return;
        if (!current) return;
        setItems(page.items);
        if (since === undefined) {
          setSince(page.last_visit_at);
          await markVisited(projectId);
        }
        setError("");
      })
      .catch((err: unknown) => current && setError(explain(err).message));
    return () => {
      current = false;
    };
  }, [projectId, stamp]);

  if (error)
    return (
      <p class="notice notice-error" role="alert">
        {error}
      </p>
    );
  if (items === null || since === undefined) return null;
  const fresh = since === null ? items.slice(0, SHOWN) : items.filter((e) => isNew(e, since));
  return (
    <section class="since-visit" aria-labelledby="since-visit-title">
      <h2 id="since-visit-title">{since === null ? t("activity.recent") : t("activity.sinceTitle")}</h2>
      {fresh.length === 0 ? (
        <p class="empty">{t("activity.nothingNew")}</p>
      ) : (
        <>
          {since !== null && <p class="activity-count">{tn("activity.newCount", fresh.length)}</p>}
          <ActivityList items={fresh.slice(0, SHOWN)} since={since} />
        </>
      )}
      <a href={`/projects/${projectId}/activity`}>{t("activity.all")} →</a>
    </section>
  );
}
