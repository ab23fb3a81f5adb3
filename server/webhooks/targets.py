"""Where a webhook may point: SSRF care.

Only ``http`` and ``https`` URLs without credentials are accepted. In production (unless
``TANDEM_WEBHOOK_ALLOW_PRIVATE_TARGETS``) a host that resolves to any loopback, private, link-local, shared,
multicast or reserved address is refused, both when the webhook is saved and at every attempt. Each attempt then
connects to the address it checked (the URL's host stays in ``Host`` and in TLS's SNI and certificate check), so
a DNS answer that changes between the check and the connection (rebinding) cannot redirect it. Redirects are never
followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from server.settings import Settings

RESOLVE_TIMEOUT_SECONDS = 5.0
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """The URL may not be a webhook target; the message says why, for the user."""


@dataclass(frozen=True)
class Target:
    """A checked target: connect to ``url`` (host replaced by the checked address), send ``host`` as Host."""

    url: str
    host: str
    sni_hostname: str | None
    # Every address the host resolved to is public. Outside production private targets are allowed, but what they
    # answer is not shown to those who may not see the network behind Tandem (server/webhooks/delivery.py).
    public: bool = True


def check_url(url: str) -> None:
    """Refuse URLs that are not plain http(s) with a host.

    Raises:
        TargetRefused: with the reason.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("The URL is malformed.") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("Use an http:// or https:// URL.")
    if not parts.hostname:
        raise TargetRefused("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("Put no credentials in the URL: everyone who reads the webhook would see them.")
    if port == 0:
        raise TargetRefused("The URL's port is invalid.")


def _public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def restricts_private(settings: Settings) -> bool:
    return settings.production and not settings.webhooks.allow_private_targets


async def _addresses(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError):
        raise TargetRefused(f"The host {host} does not resolve.") from None
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in found:
            found.append(address)
    if not found:
        raise TargetRefused(f"The host {host} does not resolve.")
    return found


async def resolve(url: str, settings: Settings) -> Target:
    """Check ``url`` and resolve its host to the address an attempt connects to.

    Raises:
        TargetRefused: the URL is not allowed, its host does not resolve, or (in production) it resolves to an
            address that is not public.
    """
    check_url(url)
    parts = urlsplit(url)
    host = parts.hostname
    assert host is not None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await _addresses(host, port)
    if restricts_private(settings) and not all(_public(a) for a in addresses):
        raise TargetRefused("The URL points at a private or local address; webhooks go to public hosts only.")
    address = addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = parts.netloc
    return Target(
        url=pinned,
        host=host_header,
        sni_hostname=host if parts.scheme == "https" else None,
        public=all(_public(a) for a in addresses),
    )
