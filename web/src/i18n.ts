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

export function formatDate(iso: string): string {
  return new Intl.DateTimeFormat(current.value === "sv" ? "sv-SE" : "en-GB", { dateStyle: "medium" }).format(
    new Date(`${iso}T00:00:00`),
  );
}

/** A count in words: `key.one`, `key.other` (and any other CLDR category a language needs) chosen by the
 * locale's plural rules; `{count}` in the sentence gets the number. */
export function tn(key: string, count: number, params: Record<string, string> = {}): string {
  const category = new Intl.PluralRules(current.value === "sv" ? "sv-SE" : "en-GB").select(count);
  const chosen = hasKey(`${key}.${category}`) ? `${key}.${category}` : `${key}.other`;
  if (!hasKey(chosen)) throw new Error(`untranslated key ${chosen}`);
  return t(chosen, { count: String(count), ...params });
}
