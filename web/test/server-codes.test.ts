// Every error code and reason the server raises has words in both catalogs. The server's source is read here (not a
// list kept by hand), so a new `ApiError(409, "new_code", …)`, `code="…"` or `reason="…"` fails this test until the
// client can say it in English and Swedish.
import { describe, expect, it } from "vitest";
import { HANDLED_APART, REASONS } from "../src/app/errors";
import en from "../src/locales/en.json";
import sv from "../src/locales/sv.json";

// The server's Python source as written (`?raw`), keyed by path.
const sources = import.meta.glob(["../../server/**/*.py", "../../channels/**/*.py", "../../crdt/**/*.py"], {
  query: "?raw",
  import: "default",
  eager: true,
}) as Record<string, string>;
const files = Object.entries(sources).map(([path, text]) => ({ path: path.replace("../../", ""), text }));

function found(pattern: RegExp): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const { path, text } of files) {
    for (const match of text.matchAll(pattern)) out.set(match[1], [...(out.get(match[1]) ?? []), path]);
  }
  return out;
}

// The ways a code is given (docs/API.md, errors): an HTTP error with a literal status and code, a domain error's
// `code=` or its class's `default_code`, and a JSON answer written by hand.
const codes = new Map<string, string[]>();
for (const pattern of [
  /ApiError\(\s*\d{3},\s*"([a-z_]+)"/g,
  /\bcode="([a-z_]+)"/g,
  /default_code = "([a-z_]+)"/g,
  /"error":\s*"([a-z_]+)"/g,
]) {
  for (const [code, paths] of found(pattern)) codes.set(code, [...(codes.get(code) ?? []), ...paths]);
}
const reasons = found(/\breason="([a-z_]+)"/g);
const catalogs = { en: en as Record<string, string>, sv: sv as Record<string, string> };

describe("the server's error codes", () => {
  it("are all found by this test's patterns (a code given any other way would slip past it)", () => {
    expect(files.length).toBeGreaterThan(100);
    expect(codes.size).toBeGreaterThan(40);
    for (const known of ["wip_limit", "malformed_json", "invalid_mention", "no_workflow", "not_found", "conflict"]) {
      expect(codes.has(known), known).toBe(true);
    }
    // The one ApiError whose code is not a literal passes a domain error's code through (found by `code=` and
    // `default_code` above); any other would hide its codes from this test.
    const dynamic = files.flatMap(({ path, text }) =>
      [...text.matchAll(/(?<!class )ApiError\(\s*(?!\d{3},)([^)\s][^,)]*)/g)].map((m) => `${path}: ${m[1]}`),
    );
    expect(dynamic).toEqual(["server/api/routing.py: status"]);
  });

  it("each have words of their own in English and Swedish", () => {
    const missing = [...codes.keys()]
      .filter((code) => !(code in HANDLED_APART))
      .filter((code) => !REASONS[code] || !catalogs.en[REASONS[code]] || !catalogs.sv[REASONS[code]])
      .map((code) => `${code} (${codes.get(code)?.join(", ")})`);
    expect(missing).toEqual([]);
  });

  it("each reason has its sentence (error.reason.*) in both catalogs", () => {
    // `fields` says only that the fields' own errors (details) tell what is wrong.
    const missing = [...reasons.keys()]
      .filter((reason) => reason !== "fields")
      .filter((reason) => !catalogs.en[`error.reason.${reason}`] || !catalogs.sv[`error.reason.${reason}`])
      .map((reason) => `${reason} (${reasons.get(reason)?.join(", ")})`);
    expect(missing).toEqual([]);
  });

  it("name no code the server no longer raises (a stale entry hides a renamed code)", () => {
    const stale = Object.keys(REASONS).filter((code) => !codes.has(code) && !["insufficient_scope"].includes(code));
    expect(stale).toEqual([]);
  });
});
