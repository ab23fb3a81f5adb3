import { t, type MessageKey } from "../../i18n";

export type ProjectSection = "board" | "notes" | "requests" | "files" | "reports" | "milestones" | "people" | "settings";

const SECTIONS: [ProjectSection, MessageKey, string][] = [
  ["board", "nav.board", ""],
  ["requests", "requests.title", "/requests"],
  ["files", "files.title", "/files"],
  ["notes", "nav.notes", "/notes"],
  ["reports", "nav.reports", "/reports"],
  ["milestones", "nav.milestones", "/milestones"],
  ["people", "nav.people", "/people"],
];

/**
 * The project's sections, the current one marked for assistive technology. Settings is offered only to those who
 * may change them (`manages`: admins and the project's staff managers), as the API decides.
 */
export function ProjectNav(props: { projectId: number; current: ProjectSection; manages?: boolean }) {
  const { projectId, current } = props;
  const sections: [ProjectSection, MessageKey, string][] = props.manages
    ? [...SECTIONS, ["settings", "nav.settings", "/settings"]]
    : SECTIONS;
  return (
    <nav class="project-nav" aria-label={t("nav.project")}>
      <a href="/">← {t("board.back")}</a>
      {sections.map(([section, key, suffix]) => (
        <a key={section} href={`/projects/${projectId}${suffix}`} aria-current={section === current ? "page" : "false"}>
          {t(key)}
        </a>
      ))}
    </nav>
  );
}
