"""What device a session is on, read from its User-Agent header."""

from __future__ import annotations

import re

# (pattern, name), first match wins: Edge and Opera also say Chrome, Chrome also says Safari.
_BROWSERS = (
    (r"Edg(e|A|iOS)?/", "Edge"),
    (r"OPR/|Opera", "Opera"),
    (r"Firefox/|FxiOS/", "Firefox"),
    (r"Chrome/|CriOS/|Chromium/", "Chrome"),
    (r"Safari/", "Safari"),
    (r"^python-|httpx|curl/|Wget/", "Script"),
)
_SYSTEMS = (
    (r"iPhone|iPad|iPod", "iOS"),
    (r"Android", "Android"),
    (r"Windows", "Windows"),
    (r"Mac OS X|Macintosh", "macOS"),
    (r"CrOS", "ChromeOS"),
    (r"Linux|X11", "Linux"),
)


def device_parts(user_agent: str) -> tuple[str | None, str | None]:
    """The browser and the system a User-Agent header names (either None when it names none we know)."""
    browser = next((name for pattern, name in _BROWSERS if re.search(pattern, user_agent)), None)
    system = next((name for pattern, name in _SYSTEMS if re.search(pattern, user_agent)), None)
    return browser, system


def describe_device(user_agent: str) -> str:
    """A readable device for a User-Agent header, in English (the audit log's details): "Firefox on Linux", "Safari
    on iOS", or "Unknown device". Clients word it themselves from ``browser`` and ``system``."""
    browser, system = device_parts(user_agent)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"
