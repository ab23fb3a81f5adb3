// What the note editor accepts as a link's address (no DOM: tested on its own).

/** Only links a reader can follow safely: web, mail and phone addresses (a bare "example.com" becomes https). */
export function normaliseLink(raw: string): string | null {
  const value = raw.trim();
  if (!value || /\s/.test(value)) return null;
  if (/^(https?:\/\/[^/]|mailto:[^\s]|tel:\+?[\d\s().-]+$)/i.test(value)) return value;
  if (/^[^\s@/:]+@[^\s@/]+\.[^\s@/]+$/.test(value)) return `mailto:${value}`;
  if (/^[a-z0-9-]+(\.[a-z0-9-]+)+(:\d+)?([/?#]\S*)?$/i.test(value)) return `https://${value}`;
  return null;
}
