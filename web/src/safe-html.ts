// Comment bodies arrive as HTML the server already sanitized; rebuild it from an allow-list anyway, so the page
// never depends on one layer alone. Anything not on the list becomes its text.

const TAGS = new Set(["P", "BR", "STRONG", "EM", "DEL", "CODE", "PRE", "BLOCKQUOTE", "UL", "OL", "LI", "A", "H1",
  "H2", "H3", "H4", "H5", "H6", "HR"]);

function copy(node: Node, into: Node): void {
  for (const child of Array.from(node.childNodes)) {
    if (child.nodeType === Node.TEXT_NODE) {
      into.appendChild(document.createTextNode(child.textContent ?? ""));
    } else if (child instanceof Element && TAGS.has(child.tagName)) {
      const el = document.createElement(child.tagName.toLowerCase());
      if (child.tagName === "A") {
        const href = child.getAttribute("href") ?? "";
        if (/^(https?:|mailto:)/i.test(href)) el.setAttribute("href", href);
        el.setAttribute("rel", "noopener noreferrer nofollow");
        el.setAttribute("target", "_blank");
      }
      copy(child, el);
      into.appendChild(el);
    } else if (child instanceof Element) {
      into.appendChild(document.createTextNode(child.textContent ?? ""));
    }
  }
}

export function safeFragment(html: string): DocumentFragment {
  const parsed = new DOMParser().parseFromString(html, "text/html");
  const fragment = document.createDocumentFragment();
  copy(parsed.body, fragment);
  return fragment;
}

/** Wrap each "@Name" of a known person in a <mark class="mention"> (text nodes only, so nothing becomes markup); a
 * mention of `me` (the reader) is a <mark class="mention mention-me"> that also says `me.hint` to screen readers. */
export function highlightMentions(root: Node, names: readonly string[], me?: { name: string; hint: string }): void {
  const known = [...new Set([...names, ...(me ? [me.name] : [])])].filter(Boolean).sort((a, b) => b.length - a.length);
  if (!known.length) return;
  const escaped = known.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(`@(?:${escaped.join("|")})`, "gu");
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const texts: Text[] = [];
  while (walker.nextNode()) texts.push(walker.currentNode as Text);
  for (const text of texts) {
    const value = text.data;
    pattern.lastIndex = 0;
    if (!pattern.test(value)) continue;
    pattern.lastIndex = 0;
    const parts = document.createDocumentFragment();
    let last = 0;
    for (const match of value.matchAll(pattern)) {
      parts.append(value.slice(last, match.index));
      const mark = document.createElement("mark");
      mark.className = "mention";
      mark.textContent = match[0];
      if (me && match[0] === `@${me.name}`) {
        mark.className = "mention mention-me";
        mark.title = me.hint;
        const hint = document.createElement("span");
        hint.className = "visually-hidden";
        hint.textContent = ` (${me.hint})`;
        mark.append(hint);
      }
      parts.append(mark);
      last = match.index + match[0].length;
    }
    parts.append(value.slice(last));
    text.replaceWith(parts);
  }
}
