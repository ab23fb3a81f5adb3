// A task: its fields (edited in place by staff, live for everyone looking), its files and its discussion.
import { useEffect, useState } from "preact/hooks";
import { useLocation } from "preact-iso";
import { api, ApiError, type Milestone, type Person, type Project, type Status, type Task, type User } from "../../api";
import { confirmDialog } from "../../app/confirm";
import { reasonFor } from "../../app/errors";
import { liveClient } from "../../app/session";
import { toast } from "../../app/toast";
import { t } from "../../i18n";
import { usePageLoad } from "../common/page-load";
import { PageNotReady, PageOutOfDate } from "../common/PageNotReady";
import { InternalTag } from "../common/TaskCard";
import { Attachments } from "./Attachments";
import { Details } from "./Details";
import { Thread } from "./Thread";

interface Loaded {
  project: Project;
  statuses: Status[];
  milestones: Milestone[];
  people: Person[];
  /** What the project lets its customer members do (ProjectSettings); staff may do all of it. */
  allows: Record<string, boolean>;
}

export function TaskPage({ projectId, taskId, who }: { projectId: number; taskId: number; who: User }) {
  const staff = who.role !== "customer";
  const { route } = useLocation();
  const [task, setTask] = useState<Task | null>(null);
  const [gone, setGone] = useState(false);
  const [ctx, setCtx] = useState<Loaded | null>(null);
  // Newer versions win, whichever arrives first: our own answer or the live event.
  const accept = (next: Task) => setTask((held) => (held && held.version > next.version ? held : next));
  const page = usePageLoad(`${projectId}/${taskId}`);

  const load = async () => {
    const [first, project, statuses, milestones, people, settings] = await Promise.all([
      api<Task>("GET", `/api/tasks/${taskId}`),
      api<Project>("GET", `/api/projects/${projectId}`),
      api<{ items: Status[] }>("GET", `/api/projects/${projectId}/statuses`),
      api<{ items: Milestone[] }>("GET", `/api/projects/${projectId}/milestones`),
      api<{ items: Person[] }>("GET", `/api/projects/${projectId}/mentionable`),
      api<Record<string, boolean>>("GET", `/api/projects/${projectId}/settings`),
    ]);
    accept(first);
    setCtx({ project, statuses: statuses.items, milestones: milestones.items, people: people.items, allows: settings });
  };
  // After a reconnect: the task as it now is. Deleted or no longer visible says so on the page; any other failure
  // leaves the task shown, said to be possibly out of date.
  const refetch = async () => {
    try {
      accept(await api<Task>("GET", `/api/tasks/${taskId}`));
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 403)) setGone(true);
      else throw err;
    }
  };
  const retry = () => page.run(task && ctx ? refetch : load);

  useEffect(() => {
    setTask(null);
    setGone(false);
    void page.run(load);
    return liveClient().subscribe(`project:${projectId}:${staff ? "staff" : "shared"}`, (message) => {
      if (message.kind === "event") {
        const data = message.event.data;
        if ((data.type === "task.updated" || data.type === "task.created") && (data.task as Task).id === taskId) {
          accept(data.task as Task);
        } else if (data.type === "task.removed" && data.task_id === taskId) {
          setGone(true);
        } else if (data.type === "settings.changed") {
          // What customers may do changed: the upload, comment and move controls follow at once.
          const allows = data.settings as Record<string, boolean>;
          setCtx((held) => (held ? { ...held, allows } : held));
        }
      } else if (message.kind === "reload") {
        void page.run(refetch);
      }
    });
  }, [projectId, taskId]);

  const back = `/projects/${projectId}`;
  if (gone) {
    return (
      <main class="page task-page">
        <p role="alert">{t("task.gone")}</p>
        <a href={back}>← {t("task.back")}</a>
      </main>
    );
  }
  if (!task || !ctx) return <PageNotReady class="task-page" error={page.failed} retry={retry} />;

  const customerMay = (capability: string) => ctx.project.my_role === "customer" && ctx.allows[capability] !== false;
  const movable = staff || (task.assignee?.id === who.id && customerMay("customer_move_own"));
  const remove = async () => {
    const yes = await confirmDialog({
      title: t("task.deleteTitle"),
      body: t("task.deleteBody", { title: task.title }),
      confirm: t("task.delete"),
      danger: true,
    });
    if (!yes) return;
    try {
      await api("DELETE", `/api/tasks/${task.id}`);
      toast(t("task.deleted", { title: task.title }), "info");
      route(back);
    } catch (err) {
      toast(reasonFor(err));
    }
  };

  return (
    <main class={`page task-page${task.visibility === "internal" ? " task-internal" : ""}`}>
      <a href={back}>← {t("task.back")}</a>
      <PageOutOfDate error={page.failed} retry={retry} />
      {staff && task.visibility === "internal" && <InternalTag />}
      <Details
        task={task}
        accept={accept}
        statuses={ctx.statuses}
        milestones={ctx.milestones}
        people={ctx.people}
        editable={staff}
        movable={movable}
      />
      {staff && (
        <p>
          <button type="button" class="danger" id="task-delete" data-staff-only onClick={() => void remove()}>
            {t("task.delete")}
          </button>
        </p>
      )}
      <Attachments projectId={projectId} taskId={taskId} canUpload={staff || customerMay("customer_upload")} />
      <Thread taskId={taskId} who={who} people={ctx.people} canComment={staff || customerMay("customer_comment")} />
    </main>
  );
}
