import { user } from "../../app/session";
import { t, type MessageKey } from "../../i18n";

export type ProjectSection =
  | "board"
  | "activity"
  | "notes"
  | "requests"
  | "files"
  | "reports"
  | "milestones"
  | "people"
  | "integrations"
  | "settings";

const SECTIONS: [ProjectSection, MessageKey, string][] = [
  ["board", "nav.board", ""],
  ["activity", "nav.activity", "/activity"],
  ["requests", "requests.title", "/requests"],
  ["files", "files.title", "/files"],
  ["notes", "nav.notes", "/notes"],
  ["reports", "nav.reports", "/reports"],
  ["milestones", "nav.milestones", "/milestones"],
  ["people", "nav.people", "/people"],
  ["integrations", "nav.integrations", "/integrations"],
];

/**
 * The project's sections, the current one marked for assistive technology. Settings is offered only to those who
 * may change them (`manages`: admins and the project's staff managers), as the API decides; webhooks and imports
 * are staff tools (a customer's own shared webhooks are kept through the API).
 */
export function ProjectNav(props: { projectId: number; current: ProjectSection; manages?: boolean }) {
  const { projectId, current } = props;
  const staff = user.value?.role !== "customer";
  const offered = SECTIONS.filter(([section]) => section !== "integrations" || staff);
  const sections: [ProjectSection, MessageKey, string][] = props.manages
    ? [...offered, ["settings", "nav.settings", "/settings"]]
    : offered;
  return (
    <nav class="project-nav" aria-label={t("nav.project")}>
      <a href="/">← {t("board.back")}</a>
      {sections.map(([section, key, suffix]) => (
        <a key={section} href={`/projects/${projectId}${suffix}`} data-staff-only={section === "settings" || undefined} aria-current={section === current ? "page" : "false"}>
          {t(key)}
        </a>
      ))}
    </nav>
  );
}
