import { describe, expect, it } from "vitest";
import en from "../src/locales/en.json";
import sv from "../src/locales/sv.json";
import { pickLocale } from "../src/i18n";

describe("message catalogs", () => {
  it("translate every key into Swedish", () => {
    expect(Object.keys(sv).sort()).toEqual(Object.keys(en).sort());
    for (const [key, value] of Object.entries(sv)) {
      expect(value, key).not.toBe("");
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
});
