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

  it("spaces everything with the tokens of style.css: no literal length in a gap, padding or margin", () => {
    const root = sheets["../src/style.css"];
    for (const token of ["--space-0", "--space-1", "--space-2", "--space-3", "--space-4", "--space-5", "--hairline"]) {
      expect(root, token).toMatch(new RegExp(`${token}:\\s*[\\d.]+(rem|px);`));
    }
    const declaration = /(?<![-\w])(gap|row-gap|column-gap|padding(?:-[a-z-]+)?|margin(?:-[a-z-]+)?)\s*:\s*([^;}]+)/g;
    let seen = 0;
    for (const [path, text] of Object.entries(sheets)) {
      const code = text.replace(/\/\*[\s\S]*?\*\//g, ""); // comments may say "padding: …" in words
      const literal = [...code.matchAll(declaration)]
        .map((m) => {
          seen++;
          return { property: m[1], value: m[2].trim() };
        })
        .filter(({ value }) => {
          const rest = value
            .replace(/calc\(-1 \* var\(--(space-\d|hairline|page-pad)\)\)/g, "")
            .replace(/var\(--(space-\d|hairline|page-pad)\)/g, "")
            .replace(/\b(0|auto|inherit|unset|!important)(?![\w.%])/g, "")
            .trim();
          return rest !== "";
        })
        .map(({ property, value }) => `${property}: ${value}`);
      expect(literal, path).toEqual([]);
    }
    expect(seen).toBeGreaterThan(200);
  });
});
