"""Comment text to safe HTML: light markdown (links, bold, lists, code), never markup or script from users.

Two independent layers: markdown-it renders with raw HTML turned off (``<script>`` comes out as text) and refuses
``javascript:``/``data:`` links; nh3 (ammonia) then keeps only an allow-list of tags, attributes and URL schemes.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("strikethrough")
_markdown.disable("image")  # no remote images: they would leak who reads a thread

_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "del",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
}
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}


def render_markdown(text: str) -> str:
    """The safe HTML for ``text``; links open with ``rel="noopener noreferrer nofollow"``."""
    html = _markdown.render(text)
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def excerpt(text: str, length: int = 140) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= length else flat[: length - 1] + "…"
