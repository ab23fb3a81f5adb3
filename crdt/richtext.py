"""A note's rich text: the ProseMirror document in the Yjs ``Y.XmlFragment``, as markdown, plain text and JSON.

The web editor (Tiptap on ProseMirror, bound by y-prosemirror's fork ``@tiptap/y-tiptap``) stores the note as a tree in
one ``Y.XmlFragment``: every block node is a ``Y.XmlElement`` whose name is the ProseMirror node type
(``paragraph``, ``heading`` with ``level``, ``bulletList``/``orderedList``/``listItem``, ``taskList``/``taskItem``
with ``checked``, ``blockquote``, ``codeBlock`` with ``language``, ``horizontalRule``, ``hardBreak``) and whose
attributes are the node's attributes; the text of a block is a ``Y.XmlText`` whose formatting attributes are the
marks (``bold``, ``italic``, ``strike``, ``code``, ``underline``: ``{}``; ``link``: ``{"href": ...}``).

Everything here goes through one neutral form, ProseMirror's JSON (``{"type": "doc", "content": [...]}``):

    markdown --parse_markdown--> JSON --write_fragment--> Y.XmlFragment
    Y.XmlFragment --read_fragment--> JSON --to_markdown--> markdown (or --to_plain_text--> text)

so the export, the version previews, the REST ``content`` seed and the migration of old markdown notes all read and
write the same structure, and ``to_markdown(parse_markdown(md)) == md`` holds for markdown in the form it writes.

Markdown dialect: CommonMark with ``~~strike~~`` and GitHub task items (``- [ ]``, ``- [x]``). A single newline inside
a paragraph is a line break (``hardBreak``), as it looked in the old source editor; raw HTML is text.
"""

from __future__ import annotations

import re
from typing import Any

import pycrdt
from markdown_it import MarkdownIt
from markdown_it.token import Token

Node = dict[str, Any]

# Marks in the order they are opened in markdown (outermost first), with their delimiters.
_MARK_ORDER = ("link", "bold", "italic", "strike", "underline", "code")
_DELIMITERS = {"bold": "**", "italic": "*", "strike": "~~", "code": "`"}
# Links the editor follows; anything else stays text (a `javascript:` link in an old note must not become clickable).
_SAFE_HREF = re.compile(r"^(https?:|mailto:|tel:|/|#)", re.IGNORECASE)

_md = MarkdownIt("commonmark", {"html": False}).enable("strikethrough")


# --- markdown -> JSON -------------------------------------------------------------------------------------------


def parse_markdown(source: str) -> Node:
    """The ProseMirror JSON of ``source`` (markdown)."""
    tokens = _md.parse(source.replace("\r\n", "\n"))
    content, _ = _blocks(tokens, 0, None)
    return {"type": "doc", "content": content or [{"type": "paragraph"}]}


def _blocks(tokens: list[Token], i: int, closing: str | None) -> tuple[list[Node], int]:
    """Block nodes from ``tokens[i:]`` up to the token of type ``closing`` (returns the index after it)."""
    out: list[Node] = []
    while i < len(tokens):
        tok = tokens[i]
        if closing is not None and tok.type == closing:
            return out, i + 1
        if tok.type == "paragraph_open":
            out.append(_with_content({"type": "paragraph"}, _inline(tokens[i + 1])))
            i += 3
        elif tok.type == "heading_open":
            node = {"type": "heading", "attrs": {"level": int(tok.tag[1])}}
            out.append(_with_content(node, _inline(tokens[i + 1])))
            i += 3
        elif tok.type in ("bullet_list_open", "ordered_list_open"):
            items, i = _list_items(tokens, i + 1, tok.type.replace("_open", "_close"))
            if tok.type == "ordered_list_open":
                start = int(tok.attrGet("start") or 1)
                out.append({"type": "orderedList", "attrs": {"start": start}, "content": items})
            elif items and all(_task_state(item) is not None for item in items):
                out.append({"type": "taskList", "content": [_task_item(item) for item in items]})
            else:
                out.append({"type": "bulletList", "content": items})
        elif tok.type == "blockquote_open":
            inner, i = _blocks(tokens, i + 1, "blockquote_close")
            out.append({"type": "blockquote", "content": inner or [{"type": "paragraph"}]})
        elif tok.type in ("fence", "code_block"):
            code = tok.content[:-1] if tok.content.endswith("\n") else tok.content
            language = tok.info.strip().split(" ")[0] or None
            out.append(_with_content({"type": "codeBlock", "attrs": {"language": language}}, _texts(code)))
            i += 1
        elif tok.type == "hr":
            out.append({"type": "horizontalRule"})
            i += 1
        elif tok.type in ("html_block",):
            out.append(_with_content({"type": "paragraph"}, _texts(tok.content.rstrip("\n"))))
            i += 1
        else:  # a closing token of an enclosing block we were not asked to stop at, or something unknown
            i += 1
    return out, i


def _list_items(tokens: list[Token], i: int, closing: str) -> tuple[list[Node], int]:
    items: list[Node] = []
    while tokens[i].type != closing:
        if tokens[i].type == "list_item_open":
            inner, i = _blocks(tokens, i + 1, "list_item_close")
            items.append({"type": "listItem", "content": inner or [{"type": "paragraph"}]})
        else:
            i += 1
    return items, i + 1


_TASK = re.compile(r"^\[([ xX])\](?: |$)")


def _task_state(item: Node) -> bool | None:
    """Whether a list item is a GitHub task item (``[ ] ``/``[x] `` leading its first paragraph): checked, or None."""
    first = (item.get("content") or [{}])[0]
    if first.get("type") != "paragraph" or not first.get("content"):
        return None
    head = first["content"][0]
    if head.get("type") != "text" or head.get("marks"):
        return None
    match = _TASK.match(head["text"])
    return None if match is None else match.group(1) != " "


def _task_item(item: Node) -> Node:
    checked = bool(_task_state(item))
    first, *rest = item["content"]
    head, *tail = first["content"]
    text = _TASK.sub("", head["text"], count=1)
    inline = ([{**head, "text": text}] if text else []) + tail
    return {
        "type": "taskItem",
        "attrs": {"checked": checked},
        "content": [_with_content({"type": "paragraph"}, inline), *rest],
    }


def _inline(tok: Token) -> list[Node]:
    out: list[Node] = []
    marks: list[dict[str, Any]] = []
    for child in tok.children or []:
        kind = child.type
        if kind in ("text", "html_inline"):
            _push_text(out, child.content, marks)
        elif kind == "code_inline":
            _push_text(out, child.content, [*marks, {"type": "code"}])
        elif kind in ("softbreak", "hardbreak"):
            out.append({"type": "hardBreak", **({"marks": list(marks)} if marks else {})})
        elif kind in ("strong_open", "em_open", "s_open"):
            marks.append({"type": {"strong_open": "bold", "em_open": "italic", "s_open": "strike"}[kind]})
        elif kind in ("strong_close", "em_close", "s_close"):
            name = {"strong_close": "bold", "em_close": "italic", "s_close": "strike"}[kind]
            _drop_last(marks, name)
        elif kind == "link_open":
            href = str(child.attrGet("href") or "")
            # An unsafe link keeps its text without the link (the markdown around it is gone, as in any renderer).
            marks.append({"type": "link", "attrs": {"href": href}} if _SAFE_HREF.match(href) else {"type": "_none"})
        elif kind == "link_close":
            if marks and marks[-1]["type"] in ("link", "_none"):
                marks.pop()
            else:
                _drop_last(marks, "link")
        elif kind == "image":
            _push_text(out, child.content or str(child.attrGet("src") or ""), marks)
    return out


def _drop_last(marks: list[dict[str, Any]], name: str) -> None:
    for j in range(len(marks) - 1, -1, -1):
        if marks[j]["type"] == name:
            del marks[j]
            return


def _push_text(out: list[Node], text: str, marks: list[dict[str, Any]]) -> None:
    if not text:
        return
    real = _normal_marks([m for m in marks if m["type"] != "_none"])
    if out and out[-1]["type"] == "text" and out[-1].get("marks", []) == real:
        out[-1]["text"] += text
        return
    out.append({"type": "text", "text": text, **({"marks": real} if real else {})})


def _normal_marks(marks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Marks without duplicates, in ProseMirror's order (the schema's order; ours is ``_MARK_ORDER``)."""
    seen: dict[str, dict[str, Any]] = {}
    for m in marks:
        seen.setdefault(m["type"], m)
    return sorted(seen.values(), key=lambda m: _MARK_ORDER.index(m["type"]) if m["type"] in _MARK_ORDER else 99)


def _texts(text: str) -> list[Node]:
    return [{"type": "text", "text": text}] if text else []


def _with_content(node: Node, content: list[Node]) -> Node:
    if content:
        node["content"] = content
    return node


# --- JSON <-> Y.XmlFragment -------------------------------------------------------------------------------------


def write_fragment(fragment: pycrdt.XmlFragment, doc: Node) -> None:
    """Append the blocks of ``doc`` (ProseMirror JSON) to ``fragment`` (which must be in a document)."""
    for block in doc.get("content", []):
        _write_element(fragment, block)


def _write_element(parent: pycrdt.XmlFragment | pycrdt.XmlElement, node: Node) -> None:
    attrs = {k: v for k, v in (node.get("attrs") or {}).items() if v is not None}
    element = parent.children.append(pycrdt.XmlElement(node["type"], attrs))
    text: pycrdt.XmlText | None = None
    for child in node.get("content", []):
        if child["type"] == "text":
            if text is None:
                text = element.children.append(pycrdt.XmlText())
            # y-prosemirror keeps a mark as the attribute named by its type holding the mark's attrs.
            formats = {m["type"]: dict(m.get("attrs") or {}) for m in child.get("marks", [])}
            text.insert(len(text), child["text"], formats)
        else:
            text = None
            _write_element(element, child)


def read_fragment(fragment: pycrdt.XmlFragment) -> Node:
    """The ProseMirror JSON of what ``fragment`` holds."""
    return {"type": "doc", "content": [n for c in fragment.children for n in _read(c)]}


def _read(item: Any) -> list[Node]:
    if isinstance(item, pycrdt.XmlText):
        out: list[Node] = []
        for chunk, formats in item.diff():
            if not isinstance(chunk, str) or not chunk:
                continue  # an embed: the editor never writes one
            marks = []
            for key, value in (formats or {}).items():
                if value is None:
                    continue
                # Overlapping marks get a hashed key (``comment--a1b2``); the mark's type is before the ``--``.
                mark: Node = {"type": key.split("--")[0]}
                if isinstance(value, dict) and value:
                    mark["attrs"] = dict(value)
                marks.append(mark)
            _push_text(out, chunk, marks)
        return out
    if isinstance(item, pycrdt.XmlElement):
        node: Node = {"type": item.tag or "paragraph"}
        # Iterating the view gives (name, value) pairs; pycrdt types its __iter__ loosely.
        attrs = {k: _attr(v) for k, v in item.attributes}  # type: ignore[attr-defined]
        if attrs:
            node["attrs"] = attrs
        content = [n for c in item.children for n in _read(c)]
        if content:
            node["content"] = content
        return [node]
    return []


def _attr(value: Any) -> Any:
    # Yjs numbers arrive as floats from pycrdt; ProseMirror compares heading levels to integers.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# --- JSON -> markdown / plain text ------------------------------------------------------------------------------


def to_markdown(doc: Node) -> str:
    """``doc`` (ProseMirror JSON) as markdown; "" for an empty note."""
    return _join_blocks(doc.get("content", []), tight=False).strip("\n")


def _join_blocks(blocks: list[Node], *, tight: bool) -> str:
    parts = [_block_markdown(b) for b in blocks]
    return ("\n" if tight else "\n\n").join(p for p in parts)


def _item_markdown(blocks: list[Node]) -> str:
    """A list item's blocks: a nested list follows its paragraph directly (a tight list stays tight)."""
    out = ""
    for n, block in enumerate(blocks):
        text = _block_markdown(block)
        if n:
            out += "\n" if block["type"] in ("bulletList", "taskList", "orderedList") else "\n\n"
        out += text
    return out


def _indent(text: str, first: str, rest: str) -> str:
    lines = text.split("\n")
    return "\n".join([first + lines[0], *[(rest + line) if line else "" for line in lines[1:]]])


def _block_markdown(node: Node) -> str:
    kind = node["type"]
    content = node.get("content", [])
    attrs = node.get("attrs") or {}
    if kind == "paragraph":
        return _inline_markdown(content, start_of_block=True)
    if kind == "heading":
        level = min(max(int(attrs.get("level") or 1), 1), 6)
        return "#" * level + " " + _inline_markdown(content)
    if kind in ("bulletList", "taskList", "orderedList"):
        start = int(attrs.get("start") or 1)
        lines = []
        for n, item in enumerate(content):
            if kind == "orderedList":
                marker = f"{start + n}. "
            elif kind == "taskList" or item["type"] == "taskItem":
                marker = "- [x] " if (item.get("attrs") or {}).get("checked") else "- [ ] "
            else:
                marker = "- "
            body = _item_markdown(item.get("content", []))
            lines.append(_indent(body, marker, " " * (3 if kind == "orderedList" else 2)))
        return "\n".join(lines)
    if kind == "blockquote":
        inner = _join_blocks(content, tight=False)
        return "\n".join(("> " + line) if line else ">" for line in inner.split("\n"))
    if kind == "codeBlock":
        code = "".join(c.get("text", "") for c in content)
        fence = "```"
        while fence in code:
            fence += "`"
        return f"{fence}{attrs.get('language') or ''}\n{code}\n{fence}"
    if kind == "horizontalRule":
        return "---"
    if kind in ("listItem", "taskItem"):
        return _join_blocks(content, tight=False)
    # Unknown block (a node type a future editor adds): its text, so nothing is silently dropped from exports.
    return (
        _inline_markdown(content)
        if content and content[0].get("type") == "text"
        else _join_blocks(content, tight=False)
    )


_ESCAPE = re.compile(r"([\\*_`~])")
_LINK_CLOSE = re.compile(r"\](?=[(\[])")
_BLOCK_START = re.compile(r"^(\s*)(#{1,6}(?:\s|$)|[-+*](?:\s|$)|>|\d+[.)](?:\s|$)|={3,}|-{3,})")


def _escape(text: str, *, line_start: bool) -> str:
    text = _LINK_CLOSE.sub(r"\\]", _ESCAPE.sub(r"\\\1", text))
    if line_start:
        # "1. " is escaped after its number ("1\\. "); every other block marker before its first character.
        text = _BLOCK_START.sub(
            lambda m: (
                m.group(1) + (re.sub(r"^(\d+)", r"\1\\", m.group(2)) if m.group(2)[0].isdigit() else "\\" + m.group(2))
            ),
            text,
        )
    return text


def _inline_markdown(content: list[Node], *, start_of_block: bool = False) -> str:
    out: list[str] = []
    active: list[Node] = []  # marks open in the output, outermost first

    def close_to(keep: int) -> None:
        trail = ""
        if len(active) > keep and out:
            # Emphasis cannot end with a space either: trailing spaces move after the closing delimiters.
            stripped = out[-1].rstrip(" ")
            if stripped and stripped != out[-1]:
                trail = out[-1][len(stripped) :]
                out[-1] = stripped
        while len(active) > keep:
            mark = active.pop()
            href = (mark.get("attrs") or {}).get("href", "")
            out.append(f"]({href})" if mark["type"] == "link" else _DELIMITERS.get(mark["type"], ""))
        out.append(trail)

    line_start = start_of_block
    for node in content:
        marks = [m for m in _normal_marks(node.get("marks", [])) if m["type"] in _MARK_ORDER]
        if node["type"] == "hardBreak":
            close_to(0)
            out.append("\n")
            line_start = True
            continue
        if node["type"] != "text":
            continue
        keep = 0
        while keep < len(active) and keep < len(marks) and active[keep] == marks[keep]:
            keep += 1
        text = node["text"]
        code = any(m["type"] == "code" for m in marks)
        if keep < len(active):
            close_to(keep)
        # Emphasis cannot start or end with a space: spaces at the edges stay outside newly opened marks.
        lead = len(text) - len(text.lstrip(" ")) if keep < len(marks) else 0
        if lead:
            out.append(text[:lead])
            text = text[lead:]
        for mark in marks[keep:]:
            out.append("[" if mark["type"] == "link" else _DELIMITERS.get(mark["type"], ""))
            active.append(mark)
        out.append(text if code else _escape(text, line_start=line_start))
        line_start = False
    close_to(0)
    return "".join(out)


def to_plain_text(doc: Node) -> str:
    """``doc`` (ProseMirror JSON) as plain text: blocks on their own lines, list items with their bullet."""
    return _plain_blocks(doc.get("content", []), "\n\n").strip("\n")


def _plain_blocks(blocks: list[Node], separator: str) -> str:
    return separator.join(_plain_block(b) for b in blocks)


def _plain_block(node: Node) -> str:
    kind = node["type"]
    content = node.get("content", [])
    if kind in ("bulletList", "taskList", "orderedList"):
        start = int((node.get("attrs") or {}).get("start") or 1)
        lines = []
        for n, item in enumerate(content):
            if kind == "orderedList":
                marker = f"{start + n}. "
            elif item["type"] == "taskItem":
                marker = "[x] " if (item.get("attrs") or {}).get("checked") else "[ ] "
            else:
                marker = "- "
            lines.append(_indent(_plain_blocks(item.get("content", []), "\n"), marker, " " * len(marker)))
        return "\n".join(lines)
    if kind == "horizontalRule":
        return "---"
    if any(c.get("type") in ("text", "hardBreak") for c in content):
        return "".join("\n" if c["type"] == "hardBreak" else c.get("text", "") for c in content)
    return _plain_blocks(content, "\n\n")
