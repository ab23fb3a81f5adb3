// Message catalogs: every UI string comes from here, in the reader's language.
// The current locale is a signal: a component that calls t() while rendering re-renders when it changes.
import { signal } from "@preact/signals";
import en from "./locales/en.json";
import sv from "./locales/sv.json";

export type Locale = "en" | "sv";
export type MessageKey = keyof typeof en;

const catalogs: Record<Locale, Record<MessageKey, string>> = { en, sv };
const current = signal<Locale>("en");

export function pickLocale(preferred: readonly string[]): Locale {
  for (const tag of preferred) {
    const base = tag.toLowerCase().split("-")[0];
    if (base === "sv" || base === "en") return base;
  }
  return "en";
}

export function setLocale(locale: Locale): void {
  current.value = locale;
  if (typeof document !== "undefined") document.documentElement.lang = locale;
}

export function locale(): Locale {
  return current.value;
}

export function t(key: MessageKey, params: Record<string, string> = {}): string {
  const template = catalogs[current.value][key] ?? catalogs.en[key];
  if (template === undefined) throw new Error(`untranslated key ${key}`);
  return template.replace(/\{(\w+)\}/g, (_, name: string) => params[name] ?? `{${name}}`);
}

/** Whether the catalogs hold `key` (for keys built from an API's stable reason). */
export function hasKey(key: string): key is MessageKey {
  return key in catalogs.en;
}

/** A counted message: `{base}.one`, `{base}.other` (and any other form the locale's plural rules name) from the
 * catalog, with `{count}` filled in; a form the catalog lacks falls back to `{base}.other`. */
export function tn(base: string, count: number, params: Record<string, string> = {}): string {
  const form = new Intl.PluralRules(current.value).select(count);
  const key = (`${base}.${form}` in catalogs.en ? `${base}.${form}` : `${base}.other`) as MessageKey;
  return t(key, { ...params, count: String(count) });
}

export function formatDate(iso: string): string {
  return new Intl.DateTimeFormat(current.value === "sv" ? "sv-SE" : "en-GB", { dateStyle: "medium" }).format(
    new Date(`${iso}T00:00:00`),
  );
}

/** A moment (an ISO timestamp) as a date and time in the reader's language. */
export function formatDateTime(iso: string): string {
  return new Intl.DateTimeFormat(current.value === "sv" ? "sv-SE" : "en-GB", { dateStyle: "medium", timeStyle: "short" }).format(
    new Date(iso),
  );
}
