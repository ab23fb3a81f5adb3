// Sign-in security (owners): require a second factor of staff, and separately of customers. Each box saves on its
// own; a person without a factor is walked through setting one up at their next sign-in.
import { useEffect, useState } from "preact/hooks";
import { api } from "../../api";
import { reasonFor } from "../../app/errors";
import { t } from "../../i18n";

interface Policy {
  require_second_factor_staff: boolean;
  require_second_factor_customers: boolean;
}

export function SecondFactorPolicy() {
  const [policy, setPolicy] = useState<Policy | null>(null);
  const [error, setError] = useState("");
  const [status, setStatus] = useState("");
  useEffect(() => {
    api<Policy>("GET", "/api/organization/security")
      .then(setPolicy)
      .catch((err) => setError(reasonFor(err)));
  }, []);

  const change = async (field: keyof Policy, value: boolean) => {
    setError("");
    setStatus("");
    try {
      setPolicy(await api<Policy>("PATCH", "/api/organization/security", { [field]: value }));
      setStatus(t("common.saved"));
    } catch (err) {
      setError(reasonFor(err));
    }
  };
  const box = (field: keyof Policy, id: string, label: string) => (
    <label for={id} class="check">
      <input
        id={id}
        type="checkbox"
        checked={policy?.[field] ?? false}
        disabled={!policy}
        onChange={(e) => void change(field, e.currentTarget.checked)}
      />{" "}
      {label}
    </label>
  );
  return (
    <section class="panel-section second-factor-policy" aria-labelledby="policy-title">
      <h2 id="policy-title">{t("policy.title")}</h2>
      <p class="hint">{t("policy.intro")}</p>
      {box("require_second_factor_staff", "require-staff", t("policy.staff"))}
      {box("require_second_factor_customers", "require-customers", t("policy.customers"))}
      {error && (
        <p class="notice notice-error" role="alert">
          {error}
        </p>
      )}
      <p role="status">{status}</p>
    </section>
  );
}
