import { t } from "../../i18n";
import { Field } from "../people/ui";

/**
 * The field where a person chooses their password (joining by invitation, or after a reset): `id="password"`, for
 * password managers a new password, and at least 12 characters as the API asks (server/accounts/passwords.py).
 */
export function NewPasswordField(props: { value: string; onInput: (value: string) => void; error?: string }) {
  return (
    <Field id="password" label={t("invite.password")} error={props.error}>
      {(a) => (
        <input
          {...a}
          name="password"
          type="password"
          autocomplete="new-password"
          minLength={12}
          required
          value={props.value}
          onInput={(e) => props.onInput(e.currentTarget.value)}
        />
      )}
    </Field>
  );
}
