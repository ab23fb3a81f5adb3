// What a project lets its customers do (GET /api/projects/{id}/settings), and who that reaches: the API allows a
// capability to the project's `customer` members only while its managers leave it on (server/policy.py); viewers
// only read. Screens offer a control exactly when this says yes, and follow `settings.changed` live.
export interface CustomerSettings {
  customer_comment: boolean;
  customer_requests: boolean;
  customer_upload: boolean;
  customer_edit_notes: boolean;
  customer_move_own: boolean;
}

export type Capability = keyof CustomerSettings;

/** Whether someone with this project role may use `capability` (staff always may). */
export function mayUse(
  staff: boolean,
  projectRole: string | null | undefined,
  settings: Partial<CustomerSettings> | null,
  capability: Capability,
): boolean {
  if (staff) return true;
  return projectRole === "customer" && settings !== null && settings[capability] !== false;
}

/** Whether a customer-side person takes part (answers questions and feedback): `customer` members, not viewers. */
export const takesPart = (staff: boolean, projectRole: string | null | undefined) => staff || projectRole === "customer";

/** The new settings of a live `settings.changed` event, or null for any other event. */
export function changedSettings(data: Record<string, unknown>): CustomerSettings | null {
  return data.type === "settings.changed" ? (data.settings as CustomerSettings) : null;
}
