// Focus stays where the person was when a live update redraws a screen. A redraw can replace the focused element:
// a card someone else moved is drawn anew in its new column, a row is rebuilt from fresh data, an item leaves a
// list. The browser then drops focus to the page, and a keyboard or screen-reader user is thrown back to the top.
//
// One watcher for every screen (board, list, task page, thread, inbox, "waiting on you"): it remembers what had
// focus by its item's key (the nearest `data-focus-key`, `data-task-id`, `data-comment-id`… or an id) and the
// control's place inside that item. When the focused element leaves the document and nothing else took focus,
// the same control of the item with the same key gets it back (or the item's first control; or, when the item
// left, the one now in its place), without scrolling: the page stays where it was. A navigation to another
// address, or focus the person moved themselves, is left alone.

const KEYS = [
  "data-focus-key",
  "data-task-id",
  "data-comment-id",
  "data-notification-id",
  "data-request-id",
  "data-note-id",
  "data-file-id",
  "data-audit-id",
];
const KEYED = [...KEYS.map((name) => `[${name}]`), "li[id]", "article[id]"].join(", ");
const FOCUSABLE = "a[href], button:not([disabled]), select:not([disabled]), input:not([disabled]), textarea:not([disabled]), [tabindex]";
// Classes that come and go with state, so they do not identify a control.
const PASSING = /^(flash|active|selected|mine|open|busy|notice-unread|is-\w+)$/;

interface Mark {
  element: Element;
  pathname: string;
  /** A selector for the item the control belongs to. */
  key: string;
  /** The control inside the item: a selector and which of its matches. */
  path: string;
  index: number;
  /** Where the item sat, for when it left. */
  list: Element | null;
  position: number;
  scrollX: number;
  scrollY: number;
}

function itemKey(item: Element): string {
  for (const name of KEYS) {
    const value = item.getAttribute(name);
    if (value !== null) return `[${name}="${CSS.escape(value)}"]`;
  }
  return `#${CSS.escape(item.id)}`;
}

function controlPath(element: Element): string {
  const classes = [...element.classList].filter((c) => !PASSING.test(c)).map((c) => `.${CSS.escape(c)}`);
  const name = element.getAttribute("name");
  return element.tagName.toLowerCase() + classes.join("") + (name ? `[name="${CSS.escape(name)}"]` : "");
}

let mark: Mark | null = null;
let scroll = { x: 0, y: 0 };

function remember(element: Element): void {
  const item = element.id ? element : element.closest(KEYED);
  if (!item) {
    mark = null; // nothing to find it again by: leave focus to the browser
    return;
  }
  const path = item === element ? "" : controlPath(element);
  const matches = path ? [...item.querySelectorAll(path)] : [];
  const list = item.parentElement;
  mark = {
    element,
    pathname: location.pathname,
    key: itemKey(item),
    path,
    index: Math.max(0, matches.indexOf(element)),
    list,
    position: list ? [...list.children].indexOf(item) : -1,
    scrollX: scroll.x,
    scrollY: scroll.y,
  };
}

function within(item: Element, m: Mark): HTMLElement | null {
  if (!m.path) return item instanceof HTMLElement ? item : null;
  const same = item.querySelectorAll<HTMLElement>(m.path);
  return same[Math.min(m.index, same.length - 1)] ?? item.querySelector<HTMLElement>(FOCUSABLE);
}

/** The element that takes the lost focus back, if any. */
export function replacementFor(m: Mark, root: ParentNode = document): HTMLElement | null {
  const item = root.querySelector(m.key);
  if (item) return within(item, m);
  // The item left: the one now in its place in the same list (or the last one), at its first control.
  if (m.list?.isConnected && m.position >= 0) {
    const items = [...m.list.children].filter((child) => child.matches(KEYED));
    const next = items[Math.min(m.position, items.length - 1)];
    if (next) return next.querySelector<HTMLElement>(FOCUSABLE) ?? (next instanceof HTMLElement && next.tabIndex >= 0 ? next : null);
  }
  return null;
}

function restore(): void {
  const m = mark;
  if (!m || m.element.isConnected) return;
  const active = document.activeElement;
  if (active && active !== document.body && active !== document.documentElement) return; // focus went somewhere on purpose
  if (location.pathname !== m.pathname) {
    mark = null; // a navigation: the new page decides
    return;
  }
  const target = replacementFor(m);
  if (!target) return; // perhaps in the next redraw (kept until then)
  const { scrollX: x, scrollY: y } = m;
  target.focus({ preventScroll: true });
  if (document.activeElement === target && (window.scrollX !== x || window.scrollY !== y)) window.scrollTo(x, y);
}

/** Start watching (once, at start-up). */
export function keepFocusAcrossRedraws(): void {
  scroll = { x: window.scrollX, y: window.scrollY };
  addEventListener(
    "scroll",
    () => {
      scroll = { x: window.scrollX, y: window.scrollY };
      // While the remembered control is still on the page, where the page is now is where it should stay: the
      // browser scrolls a newly focused control into view after the focusin that remembered it.
      if (mark?.element.isConnected) {
        mark.scrollX = scroll.x;
        mark.scrollY = scroll.y;
      }
    },
    { passive: true },
  );
  document.addEventListener("focusin", (e) => {
    if (e.target instanceof Element) remember(e.target);
  });
  new MutationObserver(restore).observe(document.body, { childList: true, subtree: true });
}
