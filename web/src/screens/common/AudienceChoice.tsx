import { t, type MessageKey } from "../../i18n";

export type Audience = "internal" | "shared";

/**
 * The two radio choices "internal" and "shared" under a legend, each with its hint. The words come from the catalog
 * section `words` (`notes`, `hooks`): `<words>.audience`, `.audienceInternal`, `.audienceInternalHint`,
 * `.audienceShared` and `.audienceSharedHint`, so each form says what the choice means for its own kind of item.
 */
export function AudienceChoice(props: {
  name: string;
  words: "notes" | "hooks";
  value: Audience;
  onChange: (audience: Audience) => void;
}) {
  const { name, words, value, onChange } = props;
  const word = (suffix: string) => t(`${words}.audience${suffix}` as MessageKey);
  return (
    <fieldset class="choices">
      <legend>{word("")}</legend>
      <label class="choice audience-internal">
        <input type="radio" name={name} value="internal" checked={value === "internal"} onChange={() => onChange("internal")} />
        <span>
          🔒 {word("Internal")}
          <small>{word("InternalHint")}</small>
        </span>
      </label>
      <label class="choice audience-shared">
        <input type="radio" name={name} value="shared" checked={value === "shared"} onChange={() => onChange("shared")} />
        <span>
          👥 {word("Shared")}
          <small>{word("SharedHint")}</small>
        </span>
      </label>
    </fieldset>
  );
}
