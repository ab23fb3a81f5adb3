// The workflow editor: each status's name, colour, category and WIP limit save on their own; up/down buttons
// reorder (keyboard and touch alike); removing asks where its tasks go; a new status is added at the end.
import { useState } from "preact/hooks";
import type { Status } from "../../api";
import { t, type MessageKey } from "../../i18n";
import {
  CATEGORIES,
  checkColour,
  checkStatusName,
  createStatus,
  deleteStatus,
  parseWip,
  reorder,
  updateStatus,
  type Category,
  type StatusChange,
} from "../../workflow-api";
import { Confirm, explain, failed, Field, type ControlAttributes, type FieldErrors, type Notice } from "../people/ui";
import { problemText } from "./common";

const categoryName = (c: string) => t(`wf.category.${c}` as MessageKey);

/** A status's category, by its name in the reader's language (inside a `Field`, which gives its id and aria). */
function CategorySelect(props: ControlAttributes & { value: string; onChange: (category: Category) => void }) {
  const { value, onChange, ...attributes } = props;
  return (
    <select {...attributes} value={value} onChange={(e) => onChange(e.currentTarget.value as Category)}>
      {CATEGORIES.map((c) => (
        <option key={c} value={c}>
          {categoryName(c)}
        </option>
      ))}
    </select>
  );
}

export function Statuses(props: {
  projectId: number;
  statuses: Status[];
  onNotice: (notice: Notice | null) => void;
  reload: () => Promise<void>;
}) {
  const { projectId, statuses, onNotice, reload } = props;
  const [busy, setBusy] = useState<number | null>(null);
  const [saved, setSaved] = useState<Record<number, string>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [removing, setRemoving] = useState<Status | null>(null);
  const [moveTo, setMoveTo] = useState("");
  const [removeError, setRemoveError] = useState("");
  // A checkbox shows what was chosen while it saves (the refetch then shows the server's state).
  const [waits, setWaits] = useState<Record<number, boolean>>({});

  const save = async (status: Status, field: keyof StatusChange, change: StatusChange) => {
    const errorKey = `${status.id}.${field}`;
    setErrors(({ [errorKey]: _, ...rest }) => rest);
    setBusy(status.id);
    setSaved((s) => ({ ...s, [status.id]: t("common.saving") }));
    onNotice(null);
    try {
      await updateStatus(projectId, status.id, change);
      setSaved((s) => ({ ...s, [status.id]: t("common.saved") }));
    } catch (err) {
      const { fields, message } = explain(err);
      setErrors((e) => ({ ...e, [errorKey]: fields[field] ?? message }));
      setSaved((s) => ({ ...s, [status.id]: "" }));
      onNotice(failed(err));
    } finally {
      setBusy(null);
      await reload();
    }
  };

  const check = (status: Status, field: keyof StatusChange, problem: string) => {
    setErrors((e) => ({ ...e, [`${status.id}.${field}`]: problem }));
    return !problem;
  };

  const saveName = (status: Status, value: string) => {
    if (value.trim() === status.name) return;
    const others = statuses.filter((s) => s.id !== status.id);
    if (check(status, "name", problemText(checkStatusName(value, others)))) void save(status, "name", { name: value.trim() });
  };
  const saveWip = (status: Status, value: string) => {
    const { value: limit, problem } = parseWip(value);
    if (!check(status, "wip_limit", problemText(problem)) || limit === (status.wip_limit ?? null)) return;
    void save(status, "wip_limit", { wip_limit: limit });
  };

  const move = async (index: number, delta: -1 | 1) => {
    const status = statuses[index];
    setBusy(status.id);
    onNotice(null);
    try {
      for (const change of reorder(statuses, index, delta)) await updateStatus(projectId, change.id, { position: change.position });
      onNotice({ kind: "ok", text: t("wf.moved", { name: status.name }) });
    } catch (err) {
      onNotice(failed(err));
    } finally {
      await reload();
      setBusy(null);
      // Keep the keyboard on the same button of the moved row.
      requestAnimationFrame(() =>
        document.querySelector<HTMLButtonElement>(`[data-status-id='${status.id}'] .${delta < 0 ? "up" : "down"}`)?.focus(),
      );
    }
  };

  const remove = async () => {
    if (!removing) return;
    setBusy(removing.id);
    setRemoveError("");
    try {
      await deleteStatus(projectId, removing.id, moveTo ? Number(moveTo) : null);
      onNotice({ kind: "ok", text: t("wf.removed", { name: removing.name }) });
      setRemoving(null);
    } catch (err) {
      setRemoveError(explain(err).message);
    } finally {
      setBusy(null);
      await reload();
    }
  };

  return (
    <section class="panel-section" aria-labelledby="statuses-title">
      <h2 id="statuses-title">{t("wf.statuses")}</h2>
      <p class="hint">{t("wf.statusesHint")}</p>
      <ol class="rows statuses">
        {statuses.map((status, index) => {
          const id = `status-${status.id}`;
          return (
            <li key={status.id} class="status-row" data-status-id={status.id} aria-busy={busy === status.id}>
              <div class="status-fields">
                <Field id={`${id}-name`} label={t("wf.name")} error={errors[`${status.id}.name`]}>
                  {(a) => (
                    <input
                      {...a}
                      class="status-name"
                      value={status.name}
                      maxLength={80}
                      onBlur={(e) => saveName(status, e.currentTarget.value)}
                      onKeyDown={(e) => e.key === "Enter" && saveName(status, e.currentTarget.value)}
                    />
                  )}
                </Field>
                <Field id={`${id}-colour`} label={t("wf.colour")} error={errors[`${status.id}.colour`]}>
                  {(a) => (
                    <input
                      {...a}
                      type="color"
                      class="status-colour"
                      value={status.colour}
                      onChange={(e) => {
                        const colour = e.currentTarget.value;
                        if (check(status, "colour", problemText(checkColour(colour))) && colour !== status.colour)
                          void save(status, "colour", { colour });
                      }}
                    />
                  )}
                </Field>
                <Field id={`${id}-category`} label={t("wf.category")} error={errors[`${status.id}.category`]}>
                  {(a) => (
                    <CategorySelect {...a} value={status.category} onChange={(category) => void save(status, "category", { category })} />
                  )}
                </Field>
                <Field id={`${id}-wip`} label={t("wf.wip")} error={errors[`${status.id}.wip_limit`]}>
                  {(a) => (
                    <input
                      {...a}
                      class="status-wip"
                      inputMode="numeric"
                      value={status.wip_limit ?? ""}
                      onBlur={(e) => saveWip(status, e.currentTarget.value)}
                      onKeyDown={(e) => e.key === "Enter" && saveWip(status, e.currentTarget.value)}
                    />
                  )}
                </Field>
              </div>
              <label class="choice waits">
                <input
                  type="checkbox"
                  id={`${id}-waits`}
                  checked={waits[status.id] ?? Boolean(status.waits_on_customer)}
                  onChange={(e) => {
                    const on = e.currentTarget.checked;
                    setWaits((w) => ({ ...w, [status.id]: on }));
                    void save(status, "waits_on_customer", { waits_on_customer: on }).finally(() =>
                      setWaits(({ [status.id]: _, ...rest }) => rest),
                    );
                  }}
                />
                <span>{t("wf.waits")}</span>
              </label>
              <span class="row-controls">
                <button
                  type="button"
                  class="secondary up"
                  aria-label={t("wf.up", { name: status.name })}
                  disabled={index === 0 || busy !== null}
                  onClick={() => void move(index, -1)}
                >
                  ↑
                </button>
                <button
                  type="button"
                  class="secondary down"
                  aria-label={t("wf.down", { name: status.name })}
                  disabled={index === statuses.length - 1 || busy !== null}
                  onClick={() => void move(index, 1)}
                >
                  ↓
                </button>
                <button
                  type="button"
                  class="secondary danger-quiet remove"
                  aria-label={t("wf.removeOf", { name: status.name })}
                  disabled={statuses.length <= 1 || busy !== null}
                  onClick={() => {
                    setRemoveError("");
                    setMoveTo(String(statuses.find((s) => s.id !== status.id)?.id ?? ""));
                    setRemoving(status);
                  }}
                >
                  {t("wf.remove")}
                </button>
                <span class="muted" role="status" id={`${id}-status`}>
                  {saved[status.id] ?? ""}
                </span>
              </span>
            </li>
          );
        })}
      </ol>
      <AddStatus projectId={projectId} statuses={statuses} onNotice={onNotice} reload={reload} />
      {removing && (
        <Confirm
          title={t("wf.removeOf", { name: removing.name })}
          body={t("wf.confirmRemove", { name: removing.name })}
          action={t("wf.remove")}
          busy={busy === removing.id}
          error={removeError}
          onConfirm={() => void remove()}
          onClose={() => setRemoving(null)}
        >
          <Field id="remove-move-to" label={t("wf.moveTasksTo")}>
            {(a) => (
              <select {...a} value={moveTo} onChange={(e) => setMoveTo(e.currentTarget.value)}>
                {statuses
                  .filter((s) => s.id !== removing.id)
                  .map((s) => (
                    <option key={s.id} value={String(s.id)}>
                      {s.name}
                    </option>
                  ))}
              </select>
            )}
          </Field>
        </Confirm>
      )}
    </section>
  );
}

function AddStatus(props: {
  projectId: number;
  statuses: Status[];
  onNotice: (notice: Notice | null) => void;
  reload: () => Promise<void>;
}) {
  const [name, setName] = useState("");
  const [colour, setColour] = useState("#1f6feb");
  const [category, setCategory] = useState<Category>("active");
  const [wip, setWip] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    const limit = parseWip(wip);
    const found: FieldErrors = {
      name: problemText(checkStatusName(name, props.statuses)),
      colour: problemText(checkColour(colour)),
      wip_limit: problemText(limit.problem),
    };
    for (const key of Object.keys(found)) if (!found[key]) delete found[key];
    setErrors(found);
    if (Object.keys(found).length) return;
    setBusy(true);
    props.onNotice(null);
    try {
      const created = await createStatus(props.projectId, { name: name.trim(), colour, category, wip_limit: limit.value });
      props.onNotice({ kind: "ok", text: t("wf.added", { name: created.name }) });
      setName("");
      setWip("");
    } catch (err) {
      const { fields } = explain(err);
      setErrors(fields);
      props.onNotice(failed(err));
    } finally {
      setBusy(false);
      await props.reload();
    }
  };

  return (
    <form class="stack add-status" onSubmit={submit} noValidate aria-labelledby="add-status-title">
      <h3 id="add-status-title">{t("wf.addTitle")}</h3>
      <div class="status-fields">
        <Field id="new-status-name" label={t("wf.name")} error={errors.name}>
          {(a) => <input {...a} value={name} maxLength={80} onInput={(e) => setName(e.currentTarget.value)} />}
        </Field>
        <Field id="new-status-colour" label={t("wf.colour")} error={errors.colour}>
          {(a) => <input {...a} type="color" value={colour} onInput={(e) => setColour(e.currentTarget.value)} />}
        </Field>
        <Field id="new-status-category" label={t("wf.category")} error={errors.category}>
          {(a) => <CategorySelect {...a} value={category} onChange={setCategory} />}
        </Field>
        <Field id="new-status-wip" label={t("wf.wip")} hint={t("wf.wipHint")} error={errors.wip_limit}>
          {(a) => <input {...a} inputMode="numeric" value={wip} onInput={(e) => setWip(e.currentTarget.value)} />}
        </Field>
      </div>
      <div class="actions">
        <button type="submit" class="primary" id="add-status" aria-busy={busy} disabled={busy}>
          {busy ? t("common.saving") : t("wf.add")}
        </button>
      </div>
    </form>
  );
}
