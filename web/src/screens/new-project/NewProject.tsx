// "New project" on the home page (owners and admins): pick a client or add one, name the project, start blank or
// from one of the organization's workflow templates; then on to its People page to invite the client.
import { useEffect, useState } from "preact/hooks";
import { useLocation } from "preact-iso";
import { t } from "../../i18n";
import { createClient, createProject, listClients, listTemplates, type Client, type Template } from "../../people-api";
import { checkName, Dialog, explain, Field, type FieldErrors } from "../people/ui";

const NEW_CLIENT = "new";

export function NewProjectButton() {
  const [open, setOpen] = useState(false);
  return (
    <div class="page-actions">
      <button type="button" id="new-project" class="primary" onClick={() => setOpen(true)}>
        + {t("newProject.open")}
      </button>
      {open && <NewProjectDialog onClose={() => setOpen(false)} />}
    </div>
  );
}

function NewProjectDialog({ onClose }: { onClose: () => void }) {
  const { route } = useLocation();
  const [clients, setClients] = useState<Client[] | null>(null);
  const [templates, setTemplates] = useState<Template[]>([]);
  const [clientId, setClientId] = useState("");
  const [clientName, setClientName] = useState("");
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [templateId, setTemplateId] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState("");
  const [busy, setBusy] = useState<"" | "client" | "project">("");

  useEffect(() => {
    Promise.all([listClients(), listTemplates()])
      .then(([loadedClients, loadedTemplates]) => {
        setClients(loadedClients);
        setTemplates(loadedTemplates);
        setClientId(loadedClients.length ? "" : NEW_CLIENT); // no clients yet: the first one is made here
      })
      .catch((err) => setMessage(explain(err).message));
  }, []);

  const submit = async (event: Event) => {
    event.preventDefault();
    const found: FieldErrors = {};
    if (!clientId) found.client_id = t("newProject.chooseClient");
    if (clientId === NEW_CLIENT && checkName(clientName)) found.client_name = checkName(clientName);
    if (checkName(name)) found.name = checkName(name);
    setErrors(found);
    setMessage(found.client_id || found.client_name || found.name ? t("common.fixFields") : "");
    if (Object.keys(found).length) return;
    let client = clientId;
    let step: "client" | "project" = "project";
    try {
      if (clientId === NEW_CLIENT) {
        step = "client";
        setBusy("client");
        const made = await createClient(clientName.trim());
        // From here the client exists whatever happens to the project: the form says so.
        setClients((list) => [...(list ?? []), made]);
        setClientId(String(made.id));
        client = String(made.id);
      }
      step = "project";
      setBusy("project");
      const project = await createProject({
        name: name.trim(),
        client_id: Number(client),
        description: description.trim(),
        ...(templateId ? { template_id: Number(templateId) } : {}),
      });
      route(`/projects/${project.id}/people`);
    } catch (err) {
      const { fields, message: why } = explain(err);
      if (step === "client") {
        setErrors({ client_name: fields.name ?? why });
        setMessage(t("common.fixFields"));
      } else {
        setErrors(fields);
        setMessage(clientId === NEW_CLIENT ? `${t("newProject.clientMade", { name: clientName })} ${why}` : why);
      }
    } finally {
      setBusy("");
    }
  };

  return (
    <Dialog id="new-project-dialog" title={t("newProject.title")} onClose={onClose}>
      <form class="stack" onSubmit={submit} noValidate>
        <Field id="project-client" label={t("newProject.client")} error={errors.client_id}>
          {(a) => (
            <select {...a} value={clientId} onChange={(e) => setClientId(e.currentTarget.value)} disabled={!clients}>
              <option value="">{t("newProject.chooseClient")}</option>
              {(clients ?? []).map((c) => (
                <option key={c.id} value={String(c.id)}>
                  {c.name}
                </option>
              ))}
              <option value={NEW_CLIENT}>{t("newProject.newClient")}</option>
            </select>
          )}
        </Field>
        {clientId === NEW_CLIENT && (
          <Field id="client-name" label={t("newProject.clientName")} error={errors.client_name}>
            {(a) => (
              <input {...a} maxLength={200} autoComplete="organization" value={clientName} onInput={(e) => setClientName(e.currentTarget.value)} />
            )}
          </Field>
        )}
        <Field id="project-name" label={t("newProject.name")} error={errors.name}>
          {(a) => <input {...a} maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
        </Field>
        <Field id="project-description" label={t("newProject.description")} error={errors.description}>
          {(a) => (
            <textarea {...a} maxLength={20000} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
          )}
        </Field>
        <fieldset class="choices" aria-describedby={errors.template_id ? "workflow-error" : undefined}>
          <legend>{t("newProject.workflow")}</legend>
          <label class="choice">
            <input type="radio" name="workflow" value="" checked={templateId === ""} onChange={() => setTemplateId("")} />
            <span>{t("newProject.blank")}</span>
          </label>
          {templates.map((template) => (
            <label class="choice" key={template.id}>
              <input
                type="radio"
                name="workflow"
                value={String(template.id)}
                data-template-name={template.name}
                checked={templateId === String(template.id)}
                onChange={() => setTemplateId(String(template.id))}
              />
              <span>
                {t("newProject.template", { name: template.name })}
                <small>{template.statuses.map((s) => s.name).join(" → ")}</small>
              </span>
            </label>
          ))}
          {errors.template_id && (
            <p id="workflow-error" class="field-error">
              {errors.template_id}
            </p>
          )}
        </fieldset>
        <p class="error" role="alert">
          {message}
        </p>
        <div class="actions">
          <button type="submit" class="primary" disabled={busy !== ""} aria-busy={busy !== ""}>
            {busy === "client" ? t("newProject.creatingClient") : busy ? t("newProject.creating") : t("newProject.create")}
          </button>
          <button type="button" class="secondary" onClick={onClose}>
            {t("common.cancel")}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
