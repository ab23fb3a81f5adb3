import { allPages, api, type Project, type Status, type Task } from "../api";
import { h, mount } from "../dom";
import { t } from "../i18n";
import { legend, taskCard } from "./common";

export async function renderBoard(root: HTMLElement, header: HTMLElement, projectId: number): Promise<void> {
  const [project, statuses, tasks] = await Promise.all([
    api<Project>("GET", `/api/projects/${projectId}`),
    api<{ items: Status[] }>("GET", `/api/projects/${projectId}/statuses`),
    allPages<Task>(`/api/projects/${projectId}/tasks`),
  ]);
  const columns = statuses.items.map((status) => {
    const cards = tasks
      .filter((task) => task.status_id === status.id)
      .sort((a, b) => a.position - b.position)
      .map((task) => taskCard(task));
    // Set through the CSSOM: the Content-Security-Policy forbids inline style attributes.
    const dot = h("span", { class: "dot", "aria-hidden": "true" });
    dot.style.setProperty("--dot", status.colour);
    return h(
      "section",
      { class: "column", "aria-label": status.name, "data-status-id": String(status.id) },
      h("h3", { class: "column-title" }, dot, status.name),
      cards.length ? h("div", { class: "cards" }, ...cards) : h("p", { class: "muted" }, t("board.empty")),
    );
  });
  mount(
    root,
    header,
    h(
      "main",
      { class: "page" },
      h("a", { href: "/", "data-link": "true" }, `← ${t("board.back")}`),
      h("h1", {}, project.name),
      legend(),
      h("div", { class: "board" }, ...columns),
    ),
  );
}
