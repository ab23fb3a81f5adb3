// The projects list of the home page ("Waiting on you" above it is its own component), each with its health.
import { useEffect, useState } from "preact/hooks";
import { allPages, type Project, type ProjectSummary } from "../../api";
import { reasonFor } from "../../app/errors";
import { t, tn } from "../../i18n";

function Health({ summary }: { summary: ProjectSummary }) {
  return (
    <span class="health">
      <span class="muted">{t("home.progress", { done: String(summary.done), total: String(summary.total) })}</span>
      {summary.overdue > 0 && (
        <span class="badge badge-overdue">
          <span aria-hidden="true">! </span>
          {tn("home.overdueCount", summary.overdue)}
        </span>
      )}
      {summary.waiting_on_customer > 0 && (
        <span class="badge badge-due_soon">
          <span aria-hidden="true">◷ </span>
          {tn("home.waitingCount", summary.waiting_on_customer)}
        </span>
      )}
    </span>
  );
}

export function Projects({ mayCreate }: { mayCreate: boolean }) {
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    allPages<Project>("/api/projects").then(setProjects, (err: unknown) => setError(reasonFor(err)));
  }, []);
  return (
    <section aria-labelledby="projects-title" aria-busy={projects === null && !error}>
      <h2 id="projects-title">{t("home.projects")}</h2>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : projects === null ? null : projects.length ? (
        <ul class="projects">
          {projects.map((p) => (
            <li class="project-row" key={p.id}>
              <a href={`/projects/${p.id}`}>
                <strong>{p.name}</strong>
              </a>
              <span class="muted"> · {p.client_name}</span>
              {p.archived && <span class="tag-archived">{t("home.archived")}</span>}
              {p.summary && <Health summary={p.summary} />}
            </li>
          ))}
        </ul>
      ) : (
        <p class="muted">{t(mayCreate ? "home.noProjectsAdmin" : "home.noProjects")}</p>
      )}
    </section>
  );
}
