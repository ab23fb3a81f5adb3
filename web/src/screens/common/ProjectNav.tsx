import { user } from "../../app/session";
import { t, type MessageKey } from "../../i18n";

export type ProjectSection = "board" | "notes" | "requests" | "files" | "reports" | "people" | "integrations";

const SECTIONS: [ProjectSection, MessageKey, string][] = [
  ["board", "nav.board", ""],
  ["requests", "requests.title", "/requests"],
  ["files", "files.title", "/files"],
  ["notes", "nav.notes", "/notes"],
  ["reports", "nav.reports", "/reports"],
  ["people", "nav.people", "/people"],
  ["integrations", "nav.integrations", "/integrations"],
];

/** The project's sections, the current one marked for assistive technology. */
export function ProjectNav({ projectId, current }: { projectId: number; current: ProjectSection }) {
  // Webhooks and imports are staff tools (a customer's own shared webhooks are kept through the API).
  const staff = user.value?.role !== "customer";
  return (
    <nav class="project-nav" aria-label={t("nav.project")}>
      <a href="/">← {t("board.back")}</a>
      {SECTIONS.filter(([section]) => section !== "integrations" || staff).map(([section, key, suffix]) => (
        <a key={section} href={`/projects/${projectId}${suffix}`} aria-current={section === current ? "page" : "false"}>
          {t(key)}
        </a>
      ))}
    </nav>
  );
}
