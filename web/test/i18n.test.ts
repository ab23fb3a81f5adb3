import { describe, expect, it } from "vitest";
import en from "../src/locales/en.json";
import sv from "../src/locales/sv.json";
import api from "../../docs/API.md?raw";
import { pickLocale, setLocale, tn } from "../src/i18n";

describe("message catalogs", () => {
  it("translate every key into Swedish", () => {
    expect(Object.keys(sv).sort()).toEqual(Object.keys(en).sort());
    for (const [key, value] of Object.entries(sv)) {
      expect(value, key).not.toBe("");
    }
  });

  it("say every count with plural forms (no \"1 answers\"): a {count} message is a .one/.other pair", () => {
    for (const [key, value] of Object.entries(en)) {
      if (!value.includes("{count}")) continue;
      expect(key, key).toMatch(/\.(one|other)$/);
      const base = key.replace(/\.(one|other)$/, "");
      expect(Object.keys(en), key).toContain(`${base}.other`);
    }
  });

  it("never hedge a plural with \"(s)\" or \"(er)\": a count is a {count} pair", () => {
    for (const catalog of [en, sv]) {
      for (const [key, value] of Object.entries(catalog)) {
        expect(value, key).not.toMatch(/\w\((s|es|er|ar|or|n)\)/);
      }
    }
  });

  it("keep the same placeholders in every language", () => {
    const placeholders = (text: string) => (text.match(/\{\w+\}/g) ?? []).sort();
    for (const key of Object.keys(en) as (keyof typeof en)[]) {
      expect(placeholders(sv[key]), key).toEqual(placeholders(en[key]));
    }
  });
});

describe("pickLocale", () => {
  it("prefers the first supported language", () => {
    expect(pickLocale(["sv-SE", "en-US"])).toBe("sv");
    expect(pickLocale(["de-DE", "en-GB"])).toBe("en");
    expect(pickLocale(["fi"])).toBe("en");
  });

  it("say counts with the language's plural rules", () => {
    const words = { score: "4.0", metric: "3.5" };
    setLocale("en");
    expect(tn("feedback.summary", 1, words)).toBe("1 answer, score 4.0 / 5, metric 3.5");
    expect(tn("feedback.summary", 3, words)).toBe("3 answers, score 4.0 / 5, metric 3.5");
    setLocale("sv");
    expect(tn("feedback.summary", 1, words)).toBe("1 svar, betyg 4.0 / 5, mått 3.5");
    setLocale("en");
  });

  it("hold a sentence for every reason the API names (docs/API.md)", () => {
    const row = (code: string) => api.split("\n").find((line: string) => line.startsWith(`| \`${code}\` |`)) ?? "";
    const reasons = (code: string) =>
      [...row(code).split("|")[2].replace(/\([^)]*\)/g, "").matchAll(/`([a-z_]+)`/g)].map((m) => m[1]).filter((r) => r !== "fields");
    expect(reasons("invalid").length).toBeGreaterThan(10);
    for (const reason of reasons("invalid")) expect(Object.keys(en), reason).toContain(`error.reason.${reason}`);
    for (const reason of reasons("weak_password")) expect(Object.keys(en), reason).toContain(`error.password.${reason}`);
  });
});
