import { describe, expect, it } from "vitest";
import { ApiError } from "../src/api";
import { fieldError, reasonFor } from "../src/app/errors";
import { setLocale, t } from "../src/i18n";
import { validTitle } from "../src/screens/board/QuickAdd";

describe("reasonFor", () => {
  it("names a refused move's reason in the reader's language, from the API's code", () => {
    const refused = new ApiError(409, "wip_limit", "In progress holds at most 1 tasks: finish or move one first.");
    setLocale("sv");
    expect(reasonFor(refused, { status: "Pågår" })).toContain("Pågår är full");
    setLocale("en");
    expect(reasonFor(refused, { status: "In progress" })).toContain("In progress is full");
    expect(reasonFor(new TypeError("Failed to fetch"))).toContain("No connection");
    expect(reasonFor(new ApiError(500, "internal", "boom"))).toBe("Something went wrong on our side. Try again later.");
    expect(reasonFor(new ApiError(418, "teapot", "I am a teapot"))).toBe("Something went wrong. Try again.");
  });

  it("says a refusal from its code, reason and params, never the API's English message", () => {
    setLocale("sv");
    const weak = new ApiError(422, "weak_password", "Use at least 12 characters.", [], "too_short", { min: 12, max: 128 });
    expect(reasonFor(weak)).toBe("Använd minst 12 tecken.");
    const named = new ApiError(422, "weak_password", "The password must not contain the name Tandem.", [], "contains_product_name");
    expect(reasonFor(named)).toBe("Lösenordet får inte innehålla namnet Tandem.");
    const wrong = new ApiError(422, "invalid", "The current password is wrong.", [], "wrong_current_password");
    expect(reasonFor(wrong)).toBe("Det nuvarande lösenordet är fel.");
    // A reason this client does not know yet: the code's sentence, in Swedish.
    expect(reasonFor(new ApiError(422, "invalid", "Something new.", [], "brand_new"))).toBe(t("error.invalid"));
    expect(reasonFor(new ApiError(422, "invalid", "Something new.", [], "brand_new"))).not.toContain("Something new");
    setLocale("en");
  });

  it("says for how long sign-in is locked after failures, from the error's params", () => {
    const locked = new ApiError(429, "sign_in_locked", "Too many failed sign-ins.", [], null, { seconds: 16 });
    expect(reasonFor(locked)).toBe("Too many failed sign-ins. Try again in 16 seconds.");
    setLocale("sv");
    expect(reasonFor(locked)).toBe("För många misslyckade inloggningar. Försök igen om 16 sekunder.");
    setLocale("en");
  });

  it("says a limit reached with the limit the server sends, and a malformed body in words of its own", () => {
    const full = new ApiError(409, "too_many_webhooks", "A project has at most 20 webhooks.", [], null, { limit: 20 });
    setLocale("sv");
    expect(reasonFor(full)).toBe("Projektet har redan så många webhooks som tillåts (20). Ta bort en först.");
    expect(reasonFor(new ApiError(400, "malformed_json", "The request body is not valid JSON."))).toBe(
      "Begäran kunde inte förstås. Ladda om sidan och försök igen.",
    );
    setLocale("en");
    expect(reasonFor(new ApiError(422, "invalid_mention", "Some mentioned people cannot see this comment."))).toContain(
      "cannot see this comment. Remove them",
    );
  });

  it("finds the API's message for one field of a 422", () => {
    const invalid = new ApiError(422, "invalid", "Some fields are invalid.", [
      { field: "title", message: "String should have at least 1 character", type: "string_too_short" },
    ]);
    expect(fieldError(invalid, "title")).toBe("Too short.");
    setLocale("sv");
    expect(fieldError(invalid, "title")).toBe("För kort.");
    setLocale("en");
    expect(fieldError(invalid, "due_date")).toBeNull();
  });
});

describe("validTitle", () => {
  it("takes what the API takes (1 to 300 characters), and no blank title", () => {
    expect(validTitle("   ")).toBe("task.titleRequired");
    expect(validTitle("x".repeat(301))).toBe("task.titleTooLong");
    expect(validTitle(" Logo ")).toBeNull();
  });
});
