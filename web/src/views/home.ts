import { allPages, api, type Me, type Project, type ProjectSummary } from "../api";
import { h, mount } from "../dom";
import { t } from "../i18n";
import { legend, taskCard } from "./common";

function health(summary: ProjectSummary): HTMLElement {
  const parts: HTMLElement[] = [h("span", { class: "muted" }, t("home.progress", { done: String(summary.done), total: String(summary.total) }))];
  if (summary.overdue) parts.push(h("span", { class: "badge badge-overdue" }, `! ${t("home.overdueCount", { count: String(summary.overdue) })}`));
  if (summary.waiting_on_customer)
    parts.push(h("span", { class: "badge badge-due_soon" }, `◷ ${t("home.waitingCount", { count: String(summary.waiting_on_customer) })}`));
  return h("span", { class: "health" }, ...parts);
}

export async function renderHome(root: HTMLElement): Promise<void> {
  const [me, projects] = await Promise.all([api<Me>("GET", "/api/me"), allPages<Project>("/api/projects")]);
  const isCustomer = me.user.role === "customer";
  const waiting = h(
    "section",
    { class: "waiting", "aria-labelledby": "waiting-title" },
    h("h2", { id: "waiting-title" }, t(isCustomer ? "home.waitingOnYou" : "home.myTasks")),
    legend(),
    me.action_items.length
      ? h("div", { class: "cards" }, ...me.action_items.map((task) => taskCard(task, task.project_name)))
      : h("p", { class: "muted" }, t("home.nothingWaiting")),
  );
  const list = h(
    "section",
    { "aria-labelledby": "projects-title" },
    h("h2", { id: "projects-title" }, t("home.projects")),
    projects.length
      ? h(
          "ul",
          { class: "projects" },
          ...projects.map((p) =>
            h(
              "li",
              { class: "project-row" },
              h("a", { href: `/projects/${p.id}`, "data-link": "true" }, h("strong", {}, p.name)),
              h("span", { class: "muted" }, ` · ${p.client_name}`),
              p.summary ? health(p.summary) : null,
            ),
          ),
        )
      : h("p", { class: "muted" }, t("home.noProjects")),
  );
  mount(root, h("main", { class: "page" }, waiting, list));
}
