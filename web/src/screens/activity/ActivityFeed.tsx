// A project's activity feed (/projects/:id/activity, where the progress digest links): everything that happened,
// newest first (customers: shared items only, as the server sends), what is new since the last visit marked, older
// pages on demand, and live: any change on the project's stream refetches the newest page.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, type Project, type User } from "../../api";
import { liveClient } from "../../app/session";
import { pageMissing } from "../../app/NotFound";
import { t, tn } from "../../i18n";
import { mayConfigure } from "../../workflow-api";
import { ProjectNav } from "../common/ProjectNav";
import { explain } from "../people/ui";
import { ActivityList } from "./ActivityList";
import { loadActivity, markVisited, type ActivityEvent } from "./activity-api";
import "./activity.css";

export function ActivityFeed({ projectId, who }: { projectId: number; who: User }) {
  const [project, setProject] = useState<Project | null>(null);
  const [items, setItems] = useState<ActivityEvent[]>([]);
  const [since, setSince] = useState<string | null>(null);
  const [next, setNext] = useState<number | null>(null);
  const [error, setError] = useState("");
  const [loadingMore, setLoadingMore] = useState(false);
  const [fresh, setFresh] = useState<Set<number>>(new Set());
  const known = useRef<Set<number>>(new Set());

  const refresh = async (first: boolean) => {
    try {
      const page = await loadActivity(projectId);
      if (first) {
        setSince(page.last_visit_at);
        setNext(page.next_before);
        await markVisited(projectId);
      } else {
        // What arrived while the page was open flashes once.
        setFresh(new Set(page.items.filter((e) => !known.current.has(e.id)).map((e) => e.id)));
      }
      page.items.forEach((e) => known.current.add(e.id));
      setItems((old) => (first ? page.items : [...page.items, ...old.filter((e) => e.id < (page.items.at(-1)?.id ?? 0))]));
      setError("");
    } catch (err) {
      setError(explain(err).message);
    }
  };

  useEffect(() => {
    known.current = new Set();
    api<Project>("GET", `/api/projects/${projectId}`)
      .then(setProject)
      .catch((err: unknown) => {
        if (!pageMissing(err)) setError(explain(err).message);
      });
    void refresh(true);
    const staff = who.role !== "customer";
    return liveClient().subscribe(`project:${projectId}:${staff ? "staff" : "shared"}`, (message) => {
      if (message.kind === "event" || message.kind === "reload") void refresh(false);
    });
  }, [projectId]);

  const more = async () => {
    if (next === null) return;
    setLoadingMore(true);
    try {
      const page = await loadActivity(projectId, next);
      page.items.forEach((e) => known.current.add(e.id));
      setItems((old) => [...old, ...page.items]);
      setNext(page.next_before);
    } catch (err) {
      setError(explain(err).message);
    } finally {
      setLoadingMore(false);
    }
  };

  return (
    <main class="page activity-page">
      {project && <ProjectNav projectId={projectId} current="activity" manages={mayConfigure.project(who, project)} />}
      <h1>
        {t("activity.title")}
        {project ? `: ${project.name}` : ""}
      </h1>
      <p class="notice notice-error" role="alert">
        {error}
      </p>
      <p class="activity-since" aria-live="polite">
        {since ? tn("activity.sinceVisit", items.filter((e) => Date.parse(e.created_at) > Date.parse(since)).length) : t("activity.firstVisit")}
      </p>
      {items.length === 0 && !error ? <p class="empty">{t("activity.empty")}</p> : <ActivityList items={items} since={since} fresh={fresh} />}
      {next !== null && (
        <button type="button" onClick={more} disabled={loadingMore}>
          {loadingMore ? t("common.working") : t("activity.older")}
        </button>
      )}
    </main>
  );
}
