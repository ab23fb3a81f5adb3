// The project board: columns (or a list), filters, presence, quick-add, and moves that are optimistic, then honest.
import { useEffect, useRef, useState } from "preact/hooks";
import { allPages, api, ApiError, type Project, type Status, type Task, type User } from "../../api";
import { reasonFor } from "../../app/errors";
import { liveClient } from "../../app/session";
import { toast } from "../../app/toast";
import { formatDate, t } from "../../i18n";
import { ColourBadge, Legend, TaskCard } from "../common/TaskCard";
import { usePageLoad } from "../common/page-load";
import { PageNotReady, PageOutOfDate } from "../common/PageNotReady";
import { ProjectNav } from "../common/ProjectNav";
import { SinceLastVisit } from "../activity/SinceLastVisit";
import { mayConfigure, wipLabel } from "../../workflow-api";
import { Avatars, usePresence } from "./Presence";
import { QuickAdd } from "./QuickAdd";
import { applyBoardEvent, matches, type BoardState, type Filter } from "./state";

type Layout = "columns" | "list";

interface Loaded {
  project: Project;
  /** Whether the project lets its customer members move their own tasks (ProjectSettings). */
  customerMoves: boolean;
}

async function load(projectId: number): Promise<[Loaded, BoardState]> {
  const [project, statuses, tasks, settings] = await Promise.all([
    api<Project>("GET", `/api/projects/${projectId}`),
    api<{ items: Status[] }>("GET", `/api/projects/${projectId}/statuses`),
    allPages<Task>(`/api/projects/${projectId}/tasks`),
    api<{ customer_move_own: boolean }>("GET", `/api/projects/${projectId}/settings`),
  ]);
  const state = { statuses: statuses.items, tasks: new Map(tasks.map((task) => [task.id, task])), flash: new Set<number>() };
  return [{ project, customerMoves: settings.customer_move_own }, state];
}

export function Board({ projectId, who }: { projectId: number; who: User }) {
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const state = useRef<BoardState>({ statuses: [], tasks: new Map(), flash: new Set() });
  const [, tick] = useState(0);
  const redraw = () => tick((n) => n + 1);
  const [filter, setFilter] = useState<Filter>("all");
  const [layout, setLayout] = useState<Layout>("columns");
  const [announcement, announce] = useState("");
  const [activityStamp, setActivityStamp] = useState(0);
  const staff = who.role !== "customer";
  const here = usePresence(`room:project:${projectId}`, "board");
  const page = usePageLoad(projectId);

  const reload = () =>
    page.run(async () => {
      const [l, s] = await load(projectId);
      state.current = s;
      setLoaded(l);
      redraw();
    });

  useEffect(() => {
    void reload();
    const live = liveClient();
    return live.subscribe(`project:${projectId}:${staff ? "staff" : "shared"}`, (message) => {
      if (message.kind === "event") {
        setActivityStamp((n) => n + 1); // "since your last visit" refetches
        const data = message.event.data;
        // What customers may do changed: a customer's move controls follow at once.
        if (data.type === "settings.changed") {
          const settings = data.settings as { customer_move_own: boolean };
          setLoaded((l) => (l ? { ...l, customerMoves: settings.customer_move_own } : l));
        }
        if (applyBoardEvent(state.current, data)) redraw();
        else void reload();
      } else if (message.kind === "reload") {
        void reload();
      } else if (message.kind === "revoked") {
        history.replaceState(null, "", "/");
        dispatchEvent(new PopStateEvent("popstate"));
      }
    });
  }, [projectId]);

  // A card that changed because someone else moved it is highlighted briefly.
  useEffect(() => {
    if (!state.current.flash.size) return;
    const timer = setTimeout(() => {
      state.current.flash.clear();
      redraw();
    }, 1500);
    return () => clearTimeout(timer);
  });

  if (!loaded) return <PageNotReady error={page.failed} retry={reload} />;
  const { project } = loaded;
  const { statuses, tasks, flash } = state.current;
  const statusName = (id: number) => statuses.find((s) => s.id === id)?.name ?? "";
  const canMove = (task: Task) =>
    staff || (task.assignee?.id === who.id && project.my_role === "customer" && loaded.customerMoves);

  const created = (task: Task) => {
    applyBoardEvent(state.current, { type: "task.created", task });
    announce(t("board.added", { title: task.title, status: statusName(task.status_id) }));
    redraw();
  };

  async function move(task: Task, statusId: number): Promise<void> {
    const before = tasks.get(task.id);
    if (!before || statusId === before.status_id) return;
    tasks.set(task.id, { ...before, status_id: statusId }); // at once; the server decides below
    redraw();
    try {
      const updated = await api<Task>("PATCH", `/api/tasks/${task.id}`, { status_id: statusId, version: before.version });
      applyBoardEvent(state.current, { type: "task.updated", task: updated });
      announce(t("board.moved", { title: task.title, status: statusName(statusId) }));
    } catch (err) {
      // Put it back where the server has it: our copy, unless a newer one arrived meanwhile.
      if (tasks.get(task.id)?.version === before.version) tasks.set(task.id, before);
      toast(t("board.moveRefused", { title: task.title, reason: reasonFor(err, { status: statusName(statusId) }) }));
      if (err instanceof ApiError && err.code === "version_conflict") {
        const fresh = await api<Task>("GET", `/api/tasks/${task.id}`).catch(() => null);
        if (fresh) applyBoardEvent(state.current, { type: "task.updated", task: fresh });
      }
    }
    redraw();
  }

  // Choose a column, then confirm: arrow keys on a closed select change its value at once, so a move waits for
  // the "Move" button (Enter or a press); afterwards focus follows the card to its new column.
  const moveControl = (task: Task) =>
    canMove(task) ? (
      <MoveControl
        task={task}
        statuses={statuses}
        onMove={async (statusId) => {
          await move(task, statusId);
          requestAnimationFrame(() =>
            document.querySelector<HTMLElement>(`.board [data-task-id="${task.id}"] select.move`)?.focus(),
          );
        }}
      />
    ) : null;

  const visible = [...tasks.values()].filter((task) => matches(task, filter, who));

  const columns = (
    <div class="board">
      {statuses.map((status) => {
        const cards = visible
          .filter((task) => task.status_id === status.id)
          .sort((a, b) => a.position - b.position || a.id - b.id);
        // The WIP limit counts every task in the status this reader can see, whatever the filter shows.
        let inStatus = 0;
        for (const task of tasks.values()) if (task.status_id === status.id) inStatus++;
        const wip = wipLabel(status.wip_limit ? inStatus : cards.length, status.wip_limit);
        return (
          <section
            key={status.id}
            class="column"
            aria-label={status.name}
            data-status-id={String(status.id)}
            onDragOver={(e) => e.preventDefault()}
            onDrop={(e) => {
              e.preventDefault();
              const task = tasks.get(Number(e.dataTransfer?.getData("text/plain")));
              if (task && canMove(task)) void move(task, status.id);
            }}
          >
            <h3 class="column-title">
              <span class="dot" aria-hidden="true" ref={(el) => el?.style.setProperty("--dot", status.colour)} />
              {status.name}
              <span
                class={wip.full ? "count count-full" : "count"}
                title={status.wip_limit ? t("board.wipTitle", { limit: String(status.wip_limit) }) : undefined}
              >
                {wip.text}
                {status.wip_limit ? <span class="visually-hidden"> {t("board.wipTitle", { limit: String(status.wip_limit) })}</span> : null}
              </span>
            </h3>
            {cards.length ? (
              <div class="cards">
                {cards.map((task) => (
                  <TaskCard key={task.id} task={task} flash={flash.has(task.id)} draggable={canMove(task)}>
                    {moveControl(task)}
                  </TaskCard>
                ))}
              </div>
            ) : (
              <p class="muted">{t(staff ? "board.emptyAdd" : "board.empty")}</p>
            )}
            {staff && <QuickAdd projectId={projectId} statusId={status.id} where={status.name} onCreated={created} />}
          </section>
        );
      })}
    </div>
  );

  const rows = visible.sort((a, b) => (a.due_date ?? "9999").localeCompare(b.due_date ?? "9999"));
  const list = (
    <>
      {staff && statuses[0] && (
        <QuickAdd projectId={projectId} statusId={statuses[0].id} where={statuses[0].name} onCreated={created} />
      )}
      <table class="task-list">
        <thead>
          <tr>
            <th scope="col">{t("board.title")}</th>
            <th scope="col">{t("board.status")}</th>
            <th scope="col">{t("board.due")}</th>
            <th scope="col">{t("board.assignee")}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((task) => (
            <tr key={task.id} data-task-id={String(task.id)} class={flash.has(task.id) ? "flash" : ""}>
              <td>
                <a href={`/projects/${projectId}/tasks/${task.id}`}>{task.title}</a>
              </td>
              <td>{moveControl(task) ?? statusName(task.status_id)}</td>
              <td>
                <ColourBadge colour={task.colour_class} /> {task.due_date ? formatDate(task.due_date) : ""}
              </td>
              <td>{task.assignee?.name ?? t("task.unassigned")}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );

  return (
    <main class="page">
      <ProjectNav projectId={projectId} current="board" manages={mayConfigure.project(who, project)} />
      <div class="board-head">
        <h1>{project.name}</h1>
        <Avatars people={here.people} more={here.more} />
      </div>
      <PageOutOfDate error={page.failed} retry={reload} />
      <SinceLastVisit projectId={projectId} stamp={activityStamp} />
      <div class="toolbar">
        <label for="board-filter">{t("board.filter")}</label>
        <select id="board-filter" value={filter} onChange={(e) => setFilter(e.currentTarget.value as Filter)}>
          <option value="all">{t("board.filterAll")}</option>
          <option value="mine">{t("board.filterMine")}</option>
          <option value="waiting">{t("board.filterWaiting")}</option>
          <option value="overdue">{t("board.filterOverdue")}</option>
        </select>
        <div class="segmented" role="group" aria-label={t("board.view")}>
          {(["columns", "list"] as const).map((value) => (
            <button
              key={value}
              type="button"
              aria-pressed={layout === value}
              data-view={value}
              onClick={() => setLayout(value)}
            >
              {t(value === "columns" ? "board.columns" : "board.list")}
            </button>
          ))}
        </div>
      </div>
      <Legend />
      <p class="visually-hidden" role="status" aria-live="polite">
        {announcement}
      </p>
      {layout === "columns" ? columns : list}
    </main>
  );
}

function MoveControl(props: { task: Task; statuses: Status[]; onMove: (statusId: number) => Promise<void> }) {
  const { task, statuses } = props;
  // null: show where the task is (after a move, refused or not, and when someone else moved it).
  const [choice, choose] = useState<number | null>(null);
  useEffect(() => choose(null), [task.status_id]);
  const chosen = choice ?? task.status_id;
  const pending = chosen !== task.status_id;
  return (
    <span class="move-control">
      <select
        class="move"
        aria-label={`${t("board.moveTo")}: ${task.title}`}
        value={String(chosen)}
        onChange={(e) => choose(Number(e.currentTarget.value))}
        onKeyDown={(e) => {
          if (e.key === "Escape" && pending) choose(null);
        }}
      >
        {statuses.map((s) => (
          <option key={s.id} value={String(s.id)}>
            {s.name}
          </option>
        ))}
      </select>
      {pending && (
        <button type="button" class="move-confirm" onClick={() => void props.onMove(chosen).then(() => choose(null))}>
          {t("board.move")}
        </button>
      )}
    </span>
  );
}
