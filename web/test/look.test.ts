// One set of colours: every stylesheet takes its colours from the tokens of style.css (:root), so the same colour
// means the same thing on every screen, charts included (charts.ts reads the same tokens).
import { describe, expect, it } from "vitest";

// Raw text of every stylesheet (vite.config.ts lets Vitest process CSS, so `?raw` hands over the file as written).
const sheets = import.meta.glob("../src/**/*.css", { query: "?raw", import: "default", eager: true }) as Record<string, string>;

describe("the look", () => {
  it("names every colour once, as a token of style.css", () => {
    expect(Object.keys(sheets).length).toBeGreaterThan(5);
    expect(sheets["../src/style.css"]).toContain("--on-track:");
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
