// A project's activity feed (/projects/:id/activity, where the progress digest links): everything that happened,
// newest first (customers: shared items only, as the server sends), what is new since the last visit marked, older
// pages on demand, and live: any change on the project's stream refetches the newest page.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, type Project, type User } from "../../api";
import { liveClient } from "../../app/session";
import { reasonFor } from "../../app/errors";
import { t, tn } from "../../i18n";
import { mayConfigure } from "../../workflow-api";
import { LoadFailed } from "../common/LoadFailed";
import { PageNotReady, PageOutOfDate } from "../common/PageNotReady";
import { usePageLoad } from "../common/page-load";
import { ProjectNav } from "../common/ProjectNav";
import { ActivityList } from "./ActivityList";
import { loadActivity, markVisited, type ActivityEvent } from "./activity-api";
import "./activity.css";

export function ActivityFeed({ projectId, who }: { projectId: number; who: User }) {
  const [project, setProject] = useState<Project | null>(null);
  const [items, setItems] = useState<ActivityEvent[]>([]);
  const [since, setSince] = useState<string | null>(null);
  const [next, setNext] = useState<number | null>(null);
  const page = usePageLoad(projectId);
  const [moreFailed, setMoreFailed] = useState("");
  const [loadingMore, setLoadingMore] = useState(false);
  const [fresh, setFresh] = useState<Set<number>>(new Set());
  const known = useRef<Set<number>>(new Set());

  // The project and the newest page; marks the visit once they are shown.
  const open = async () => {
    const [p, newest] = await Promise.all([api<Project>("GET", `/api/projects/${projectId}`), loadActivity(projectId)]);
    newest.items.forEach((e) => known.current.add(e.id));
    setSince(newest.last_visit_at);
    setNext(newest.next_before);
    setItems(newest.items);
    setProject(p);
    await markVisited(projectId);
  };
  // The newest page again, after a change on the project's stream: what arrived while the page was open flashes once.
  const refresh = async () => {
    const newest = await loadActivity(projectId);
    setFresh(new Set(newest.items.filter((e) => !known.current.has(e.id)).map((e) => e.id)));
    newest.items.forEach((e) => known.current.add(e.id));
    setItems((old) => [...newest.items, ...old.filter((e) => e.id < (newest.items.at(-1)?.id ?? 0))]);
  };
  // Never throws: a failure before the page is shown says so with Try again; after, the page stays as it was, said
  // to be possibly out of date (PageOutOfDate), and Try again opens it afresh.
  const reopen = () => page.run(open);

  useEffect(() => {
    known.current = new Set();
    setProject(null);
    void reopen();
    const staff = who.role !== "customer";
    return liveClient().subscribe(`project:${projectId}:${staff ? "staff" : "shared"}`, (message) => {
      if (message.kind === "event" || message.kind === "reload") void page.run(refresh);
    });
  }, [projectId]);

  const more = async () => {
    if (next === null) return;
    setLoadingMore(true);
    try {
      const older = await loadActivity(projectId, next);
      older.items.forEach((e) => known.current.add(e.id));
      setItems((old) => [...old, ...older.items]);
      setNext(older.next_before);
      setMoreFailed("");
    } catch (err) {
      setMoreFailed(reasonFor(err));
    } finally {
      setLoadingMore(false);
    }
  };

  if (!project) return <PageNotReady class="activity-page" error={page.failed} retry={reopen} />;
  return (
    <main class="page activity-page">
      <ProjectNav projectId={projectId} current="activity" manages={mayConfigure.project(who, project)} />
      <h1>{`${t("activity.title")}: ${project.name}`}</h1>
      <PageOutOfDate error={page.failed} retry={reopen} />
      <p class="activity-since" aria-live="polite">
        {since ? tn("activity.sinceVisit", items.filter((e) => Date.parse(e.created_at) > Date.parse(since)).length) : t("activity.firstVisit")}
      </p>
      {items.length === 0 ? <p class="empty">{t("activity.empty")}</p> : <ActivityList items={items} since={since} fresh={fresh} />}
      {moreFailed && <LoadFailed id="activity-more-failed" text={t("common.loadFailed", { reason: moreFailed })} retry={more} />}
      {next !== null && (
        <button type="button" onClick={more} disabled={loadingMore}>
          {loadingMore ? t("common.working") : t("activity.older")}
        </button>
      )}
    </main>
  );
}
