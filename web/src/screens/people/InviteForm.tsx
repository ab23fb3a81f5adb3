// Inviting someone to a project by email, with a role the inviter may give. Without mail on the server the link
// is shown here to copy and pass on; it is shown this once (only its hash is stored).
import { useState } from "preact/hooks";
import type { User } from "../../api";
import { t, type MessageKey } from "../../i18n";
import { invite, may, type InviteResult, type ProjectDetails, type ProjectRole } from "../../people-api";
import { checkEmail, CopyLink, explain, Field, roleName, type FieldErrors } from "./ui";

export function InviteForm(props: { project: ProjectDetails; user: User; onInvited: () => Promise<void> }) {
  const { project, user, onInvited } = props;
  const roles = may.inviteRoles(user);
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [role, setRole] = useState<ProjectRole>("customer");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState("");
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<(InviteResult & { email: string }) | null>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    const problem = checkEmail(email);
    setErrors(problem ? { email: problem } : {});
    setMessage(problem ? t("common.fixFields") : "");
    if (problem) return;
    setBusy(true);
    setResult(null);
    try {
      const sent = email.trim();
      const answer = await invite({ project_id: project.id, email: sent, role, name: name.trim() });
      setResult({ ...answer, email: sent });
      setEmail("");
      setName("");
      await onInvited();
    } catch (err) {
      // What was typed stays in the form; the API's reasons go beside their fields.
      const { fields, message: why } = explain(err);
      setErrors(fields);
      setMessage(why);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="panel-section" aria-labelledby="invite-title">
      <h2 id="invite-title">{t("people.invite")}</h2>
      <form class="stack" onSubmit={submit} noValidate>
        <Field id="invite-email" label={t("people.inviteEmail")} error={errors.email}>
          {(a) => (
            <input
              {...a}
              type="email"
              autoComplete="off"
              inputMode="email"
              maxLength={254}
              value={email}
              onInput={(e) => setEmail(e.currentTarget.value)}
            />
          )}
        </Field>
        <Field id="invite-name" label={t("people.inviteName")} error={errors.name}>
          {(a) => <input {...a} maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
        </Field>
        <Field
          id="invite-role"
          label={t("people.inviteRole")}
          error={errors.role}
          hint={`${t(`role.hint.${role}` as MessageKey)}.${roles.length < 4 ? ` ${t("people.staffRolesAdmins")}` : ""}`}
        >
          {(a) => (
            <select {...a} value={role} onChange={(e) => setRole(e.currentTarget.value as ProjectRole)}>
              {roles.map((r) => (
                <option key={r} value={r}>
                  {roleName(r)}
                </option>
              ))}
            </select>
          )}
        </Field>
        <p class="error" role="alert">
          {message}
        </p>
        <div class="actions">
          <button type="submit" id="invite-submit" class="primary" disabled={busy} aria-busy={busy}>
            {busy ? t("people.inviting") : t("people.inviteSubmit")}
          </button>
        </div>
      </form>
      <div id="invite-result" role="status">
        {result?.status === "added" && <p class="notice">{t("people.added", { name: result.member?.name ?? result.email })}</p>}
        {result?.status === "invited" && !result.link && (
          <p class="notice">{t("people.invitedMailed", { email: result.email })}</p>
        )}
        {result?.status === "invited" && result.link && (
          <div class="notice">
            <p>{t("people.invitedLink", { email: result.email })}</p>
            <CopyLink id="invite-link" link={result.link} label={t("people.inviteLinkFor", { email: result.email })} />
          </div>
        )}
      </div>
    </section>
  );
}
