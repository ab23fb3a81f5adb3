import { t, type MessageKey } from "../../i18n";
import { HEALTH_ICONS, type Health } from "./kpis";

/** Health as a badge: the colour (the same token as the charts), an icon and a word, never colour alone. */
export function HealthBadge({ health }: { health: Health }) {
  return (
    <span class={`badge health-${health}`}>
      <span aria-hidden="true">{HEALTH_ICONS[health]}</span> {t(`reports.health.${health}` as MessageKey)}
    </span>
  );
}
