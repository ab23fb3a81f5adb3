import { allPages, type Project, type ProjectSummary } from "../api";
import { h, mount } from "../dom";
import { t, tn } from "../i18n";

function health(summary: ProjectSummary): HTMLElement {
  const parts: HTMLElement[] = [h("span", { class: "muted" }, t("home.progress", { done: String(summary.done), total: String(summary.total) }))];
  if (summary.overdue) parts.push(h("span", { class: "badge badge-overdue" }, `! ${tn("home.overdueCount", summary.overdue)}`));
  if (summary.waiting_on_customer)
    parts.push(h("span", { class: "badge badge-due_soon" }, `◷ ${tn("home.waitingCount", summary.waiting_on_customer)}`));
  return h("span", { class: "health" }, ...parts);
}

/** The projects list of the home page ("Waiting on you" above it is a component: screens/home/WaitingOnYou.tsx). */
export async function renderProjects(root: HTMLElement, mayCreate: boolean): Promise<void> {
  const projects = await allPages<Project>("/api/projects");
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
              p.archived ? h("span", { class: "tag-archived" }, t("home.archived")) : null,
              p.summary ? health(p.summary) : null,
            ),
          ),
        )
      : h("p", { class: "muted" }, t(mayCreate ? "home.noProjectsAdmin" : "home.noProjects")),
  );
  mount(root, list);
}
