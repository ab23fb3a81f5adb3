// One custom field of a request as a labelled control: a select for a choice, a date, a number or a text input.
import { t } from "../../i18n";
import type { RequestField } from "./state";

export function FieldInput(props: { field: RequestField; value: string; onInput: (value: string) => void; prefix?: string; error?: string }) {
  const { field } = props;
  const id = `${props.prefix ?? "field"}-${field.key}`;
  const errorId = `${id}-error`;
  const common = {
    id,
    name: field.key,
    required: field.required,
    "data-kind": field.kind,
    "aria-invalid": props.error ? true : undefined,
    "aria-describedby": props.error ? errorId : undefined,
  };
  return (
    <p class="field">
      <label for={id}>
        {field.label}
        {field.required && <span class="muted"> ({t("wf.required")})</span>}
      </label>
      {field.kind === "choice" ? (
        <select {...common} value={props.value} onChange={(e) => props.onInput(e.currentTarget.value)}>
          <option value="">—</option>
          {field.options.map((option) => (
            <option key={option} value={option}>
              {option}
            </option>
          ))}
          {/* A value chosen before the option was taken away stays choosable as it is. */}
          {props.value && !field.options.includes(props.value) && <option value={props.value}>{props.value}</option>}
        </select>
      ) : (
        <input
          {...common}
          type={(field.kind === "date" ? "date" : field.kind === "number" ? "number" : "text") as string as "text"}
          step={field.kind === "number" ? "any" : undefined}
          value={props.value}
          onInput={(e) => props.onInput(e.currentTarget.value)}
        />
      )}
      {props.error && (
        <span class="error" id={errorId}>
          {props.error}
        </span>
      )}
    </p>
  );
}
