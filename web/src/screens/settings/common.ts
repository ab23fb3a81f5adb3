// Words for the checks of workflow-api.ts, shared by the settings and milestones screens.
import { t } from "../../i18n";
import type { Problem } from "../../workflow-api";

export function problemText(problem: Problem): string {
  switch (problem) {
    case "":
      return "";
    case "required":
      return t("common.required");
    case "tooLong":
      return t("wf.problem.tooLong");
    case "colour":
      return t("wf.problem.colour");
    case "wip":
      return t("wf.problem.wip");
    case "key":
      return t("wf.problem.key");
    case "options":
      return t("wf.problem.options");
    case "duplicate":
      return t("wf.problem.duplicate");
  }
}
