import { describe, expect, it } from "vitest";
import { ApiError } from "../src/api";
import { fieldError, reasonFor } from "../src/app/errors";
import { setLocale } from "../src/i18n";
import { validTitle } from "../src/screens/board/QuickAdd";

describe("reasonFor", () => {
  it("names a refused move's reason in the reader's language, from the API's code", () => {
    const refused = new ApiError(409, "wip_limit", "In progress holds at most 1 tasks: finish or move one first.");
    setLocale("sv");
    expect(reasonFor(refused, { status: "Pågår" })).toContain("Pågår är full");
    setLocale("en");
    expect(reasonFor(refused, { status: "In progress" })).toContain("In progress is full");
    expect(reasonFor(new TypeError("Failed to fetch"))).toContain("No connection");
    expect(reasonFor(new ApiError(500, "internal", "boom"))).toBe("Something went wrong. Try again.");
  });

  it("finds the API's message for one field of a 422", () => {
    const invalid = new ApiError(422, "invalid", "Some fields are invalid.", [
      { field: "title", message: "String should have at least 1 character", type: "string_too_short" },
    ]);
    expect(fieldError(invalid, "title")).toContain("at least 1 character");
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
