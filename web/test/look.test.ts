// One set of colours: every stylesheet takes its colours from the tokens of style.css (:root), so the same colour
// means the same thing on every screen, charts included (charts.ts reads the same tokens).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

// Read from disk: Vitest hands CSS imports over empty.
const src = join(__dirname, "..", "src");
const sheets = Object.fromEntries(
  (readdirSync(src, { recursive: true }) as string[])
    .filter((name) => name.endsWith(".css"))
    .map((name) => [name, readFileSync(join(src, name), "utf8")]),
);

describe("the look", () => {
  it("names every colour once, as a token of style.css", () => {
    expect(Object.keys(sheets).length).toBeGreaterThan(5);
    for (const [path, text] of Object.entries(sheets)) {
      const outsideTokens = text
        .split("\n")
        .filter((line) => !/^\s*--[\w-]+:\s*#/.test(line))
        .join("\n");
      // White (text on a filled button or badge) is the only literal colour allowed.
      const literals = (outsideTokens.match(/#[0-9a-fA-F]{3,8}\b/g) ?? []).filter((c) => !/^#fff(fff)?$/i.test(c));
      expect(literals, path).toEqual([]);
    }
  });
});
