// The custom fields a request asks for (text, choice, date, number): add one; edit one's label, whether it is
// required and a choice's options; move one up or down; remove one (asked first). A field's key and kind are
// fixed once made, so answers already given keep their meaning (docs/API.md); an option taken away stays on the
// requests that chose it, which the edit form says before saving.
import { useState } from "preact/hooks";
import { t, type MessageKey } from "../../i18n";
import {
  checkFieldKey,
  createRequestField,
  deleteRequestField,
  droppedOptions,
  FIELD_KINDS,
  keyFromLabel,
  parseOptions,
  type FieldKind,
  type RequestField,
  updateRequestField,
} from "../../workflow-api";
import { Confirm, explain, Field, type FieldErrors, type Notice } from "../people/ui";
import { problemText } from "./common";

const kindName = (kind: string) => t(`wf.kind.${kind}` as MessageKey);

export function RequestFields(props: {
  projectId: number;
  fields: RequestField[];
  onNotice: (notice: Notice | null) => void;
  reload: () => Promise<void>;
}) {
  const { projectId, fields, onNotice, reload } = props;
  const [removing, setRemoving] = useState<RequestField | null>(null);
  const [busy, setBusy] = useState(false);
  const [removeError, setRemoveError] = useState("");
  const [editing, setEditing] = useState<number | null>(null);
  const [moving, setMoving] = useState<number | null>(null);

  const move = async (field: RequestField, index: number, delta: -1 | 1) => {
    setMoving(field.id);
    onNotice(null);
    try {
      await updateRequestField(projectId, field.id, { position: index + delta });
      onNotice({ kind: "ok", text: t("wf.moved", { name: field.label }) });
    } catch (err) {
      onNotice({ kind: "error", text: t("common.failedNowShowing", { reason: explain(err).message }) });
    } finally {
      setMoving(null);
      await reload();
    }
  };

  const remove = async () => {
    if (!removing) return;
    setBusy(true);
    setRemoveError("");
    try {
      await deleteRequestField(projectId, removing.id);
      onNotice({ kind: "ok", text: t("wf.fieldRemoved", { name: removing.label }) });
      setRemoving(null);
    } catch (err) {
      setRemoveError(explain(err).message);
    } finally {
      setBusy(false);
      await reload();
    }
  };

  return (
    <section class="panel-section" aria-labelledby="fields-title">
      <h2 id="fields-title">{t("wf.fields")}</h2>
      <p class="hint">{t("wf.fieldsHint")}</p>
      {fields.length === 0 ? (
        <p class="empty">{t("wf.noFields")}</p>
      ) : (
        <ul class="rows request-fields">
          {fields.map((field, index) => (
            <li key={field.id} data-field-key={field.key} class="field-row">
              <span class="row-who">
                <strong>{field.label}</strong>
                <small>
                  {kindName(field.kind)} · <code>{field.key}</code>
                  {field.required ? ` · ${t("wf.required")}` : ""}
                  {field.options.length ? ` · ${field.options.join(", ")}` : ""}
                </small>
              </span>
              <span class="row-actions">
                <button
                  type="button"
                  class="secondary up"
                  disabled={index === 0 || moving !== null}
                  aria-label={t("wf.up", { name: field.label })}
                  onClick={() => void move(field, index, -1)}
                >
                  ↑
                </button>
                <button
                  type="button"
                  class="secondary down"
                  disabled={index === fields.length - 1 || moving !== null}
                  aria-label={t("wf.down", { name: field.label })}
                  onClick={() => void move(field, index, 1)}
                >
                  ↓
                </button>
                <button
                  type="button"
                  class="secondary edit"
                  aria-expanded={editing === field.id}
                  aria-controls={`edit-field-${field.id}`}
                  aria-label={t("wf.editOf", { name: field.label })}
                  onClick={() => setEditing(editing === field.id ? null : field.id)}
                >
                  {t("wf.edit")}
                </button>
                <button
                  type="button"
                  class="secondary danger-quiet"
                  aria-label={t("wf.removeOf", { name: field.label })}
                  onClick={() => {
                    setRemoveError("");
                    setRemoving(field);
                  }}
                >
                  {t("wf.remove")}
                </button>
              </span>
              {editing === field.id && (
                <EditField
                  projectId={projectId}
                  field={field}
                  onNotice={onNotice}
                  reload={reload}
                  close={() => setEditing(null)}
                />
              )}
            </li>
          ))}
        </ul>
      )}
      <AddField projectId={projectId} fields={fields} onNotice={onNotice} reload={reload} />
      {removing && (
        <Confirm
          title={t("wf.removeOf", { name: removing.label })}
          body={t("wf.confirmRemoveField", { name: removing.label })}
          action={t("wf.remove")}
          busy={busy}
          error={removeError}
          onConfirm={() => void remove()}
          onClose={() => setRemoving(null)}
        />
      )}
    </section>
  );
}

function AddField(props: {
  projectId: number;
  fields: RequestField[];
  onNotice: (notice: Notice | null) => void;
  reload: () => Promise<void>;
}) {
  const [label, setLabel] = useState("");
  const [key, setKey] = useState("");
  const [keyTouched, setKeyTouched] = useState(false);
  const [kind, setKind] = useState<FieldKind>("text");
  const [required, setRequired] = useState(false);
  const [options, setOptions] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    const parsed = parseOptions(options);
    const trimmed = label.trim();
    const found: FieldErrors = {
      label: !trimmed ? t("common.required") : trimmed.length > 120 ? problemText("tooLong") : "",
      key: problemText(checkFieldKey(key, props.fields)),
      options: kind === "choice" ? problemText(parsed.problem) : "",
    };
    for (const k of Object.keys(found)) if (!found[k]) delete found[k];
    setErrors(found);
    if (Object.keys(found).length) return;
    setBusy(true);
    props.onNotice(null);
    try {
      const created = await createRequestField(props.projectId, {
        key,
        label: trimmed,
        kind,
        required,
        options: kind === "choice" ? parsed.options : [],
      });
      props.onNotice({ kind: "ok", text: t("wf.fieldAdded", { name: created.label }) });
      setLabel("");
      setKey("");
      setKeyTouched(false);
      setOptions("");
      setRequired(false);
    } catch (err) {
      const { fields, message } = explain(err);
      // A key already used is refused by code, not by field: say it beside the key.
      setErrors(err instanceof Error && "code" in err && err.code === "field_exists" ? { key: problemText("duplicate") } : fields);
      props.onNotice({ kind: "error", text: t("common.failedNowShowing", { reason: message }) });
    } finally {
      setBusy(false);
      await props.reload();
    }
  };

  return (
    <form class="stack" onSubmit={submit} noValidate aria-labelledby="add-field-title">
      <h3 id="add-field-title">{t("wf.addField")}</h3>
      <Field id="new-field-label" label={t("wf.fieldLabel")} error={errors.label}>
        {(a) => (
          <input
            {...a}
            value={label}
            maxLength={120}
            onInput={(e) => {
              setLabel(e.currentTarget.value);
              if (!keyTouched) setKey(keyFromLabel(e.currentTarget.value));
            }}
          />
        )}
      </Field>
      <Field id="new-field-key" label={t("wf.fieldKey")} hint={t("wf.fieldKeyHint")} error={errors.key}>
        {(a) => (
          <input
            {...a}
            value={key}
            maxLength={40}
            onInput={(e) => {
              setKeyTouched(true);
              setKey(e.currentTarget.value);
            }}
          />
        )}
      </Field>
      <Field id="new-field-kind" label={t("wf.fieldKind")} error={errors.kind}>
        {(a) => (
          <select {...a} value={kind} onChange={(e) => setKind(e.currentTarget.value as FieldKind)}>
            {FIELD_KINDS.map((k) => (
              <option key={k} value={k}>
                {kindName(k)}
              </option>
            ))}
          </select>
        )}
      </Field>
      {kind === "choice" && (
        <Field id="new-field-options" label={t("wf.fieldOptions")} hint={t("wf.fieldOptionsHint")} error={errors.options}>
          {(a) => <textarea {...a} value={options} onInput={(e) => setOptions(e.currentTarget.value)} />}
        </Field>
      )}
      <label class="choice">
        <input type="checkbox" id="new-field-required" checked={required} onChange={(e) => setRequired(e.currentTarget.checked)} />
        <span>{t("wf.required")}</span>
      </label>
      <div class="actions">
        <button type="submit" class="primary" id="add-field" aria-busy={busy} disabled={busy}>
          {busy ? t("common.saving") : t("wf.addFieldButton")}
        </button>
      </div>
    </form>
  );
}

/** Edit one field in place: label, required, a choice's options. Saved as one change; refused, the form keeps what
 * was typed, says why, and the list shows the field as the server has it. */
function EditField(props: {
  projectId: number;
  field: RequestField;
  onNotice: (notice: Notice | null) => void;
  reload: () => Promise<void>;
  close: () => void;
}) {
  const { field } = props;
  const id = `edit-field-${field.id}`;
  const [label, setLabel] = useState(field.label);
  const [required, setRequired] = useState(field.required);
  const [options, setOptions] = useState(field.options.join("\n"));
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const choice = field.kind === "choice";
  const parsed = parseOptions(options);
  const dropped = choice ? droppedOptions(field.options, parsed.options) : [];

  const submit = async (event: Event) => {
    event.preventDefault();
    const trimmed = label.trim();
    const found: FieldErrors = {
      label: !trimmed ? t("common.required") : trimmed.length > 120 ? problemText("tooLong") : "",
      options: choice ? problemText(parsed.problem) : "",
    };
    for (const k of Object.keys(found)) if (!found[k]) delete found[k];
    setErrors(found);
    if (Object.keys(found).length) return;
    const change: { label?: string; required?: boolean; options?: string[] } = {};
    if (trimmed !== field.label) change.label = trimmed;
    if (required !== field.required) change.required = required;
    if (choice && parsed.options.join("\n") !== field.options.join("\n")) change.options = parsed.options;
    if (!Object.keys(change).length) return props.close();
    setBusy(true);
    props.onNotice(null);
    try {
      const saved = await updateRequestField(props.projectId, field.id, change);
      props.onNotice({ kind: "ok", text: t("wf.fieldSaved", { name: saved.label }) });
      props.close();
    } catch (err) {
      const { fields, message } = explain(err);
      setErrors(fields);
      props.onNotice({ kind: "error", text: t("common.failedNowShowing", { reason: message }) });
    } finally {
      setBusy(false);
      await props.reload();
    }
  };

  return (
    <form class="stack field-edit" id={id} onSubmit={submit} noValidate aria-label={t("wf.editOf", { name: field.label })}>
      <p class="hint">{t("wf.fieldFixed", { key: field.key, kind: kindName(field.kind) })}</p>
      <Field id={`${id}-label`} label={t("wf.fieldLabel")} error={errors.label}>
        {(a) => <input {...a} value={label} maxLength={120} onInput={(e) => setLabel(e.currentTarget.value)} />}
      </Field>
      {choice && (
        <Field id={`${id}-options`} label={t("wf.fieldOptions")} hint={t("wf.fieldOptionsHint")} error={errors.options}>
          {(a) => <textarea {...a} value={options} onInput={(e) => setOptions(e.currentTarget.value)} />}
        </Field>
      )}
      {dropped.length > 0 && (
        <p class="hint warn" id={`${id}-dropped`}>
          {t("wf.optionsDropped", { options: dropped.join(", ") })}
        </p>
      )}
      <label class="choice">
        <input type="checkbox" id={`${id}-required`} checked={required} onChange={(e) => setRequired(e.currentTarget.checked)} />
        <span>{t("wf.required")}</span>
      </label>
      {required && !field.required && <p class="hint">{t("wf.requiredFromNow")}</p>}
      <div class="actions">
        <button type="submit" class="primary" aria-busy={busy} disabled={busy}>
          {busy ? t("common.saving") : t("common.save")}
        </button>
        <button type="button" class="secondary" onClick={props.close}>
          {t("common.cancel")}
        </button>
      </div>
    </form>
  );
}
