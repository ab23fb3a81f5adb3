// The rows of a project's activity: what happened, what changed (old → new), who and when, with a link. Rows newer
// than the person's last visit are marked "New" (a word and a tint, never the tint alone); internal rows (staff
// only ever get them) carry the lock and the word "Internal".
import { locale, t } from "../../i18n";
import { InternalTag } from "../common/TaskCard";
import { changeLines, describe, formatWhen, isNew, type ActivityEvent } from "./activity-api";

export function ActivityList(props: { items: ActivityEvent[]; since: string | null; fresh?: Set<number> }) {
  const { items, since, fresh } = props;
  return (
    <ol class="activity-list">
      {items.map((event) => {
        const recent = isNew(event, since);
        const classes = ["activity-item", recent ? "is-new" : "", event.internal ? "card-internal" : "", fresh?.has(event.id) ? "flash" : ""];
        return (
          <li key={event.id} class={classes.join(" ")} data-activity-id={event.id} data-kind={event.kind}>
            <p class="activity-what">
              {recent && <span class="tag-new">{t("activity.new")}</span>}
              {event.internal && <InternalTag />} <a href={event.link}>{describe(event)}</a>
            </p>
            {changeLines(event).length > 0 && (
              <ul class="activity-changes">
                {changeLines(event).map((line) => (
                  <li key={line}>{line}</li>
                ))}
              </ul>
            )}
            <p class="activity-when">
              <time dateTime={event.created_at}>{formatWhen(event.created_at, locale())}</time>
            </p>
          </li>
        );
      })}
    </ol>
  );
}
