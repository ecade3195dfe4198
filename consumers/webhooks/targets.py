"""Where a webhook may be sent: URL syntax, and addresses that are not internal.

A webhook URL is chosen by an API caller, so without a check the service would make
requests into its own network for them (SSRF). The host is resolved and every address it
resolves to must be public, when the URL is registered and again at every attempt (DNS
can change). At an attempt the request then goes to the address that was checked, with
the URL's host kept for the Host header and TLS, so the name cannot resolve elsewhere
between the check and the connection (DNS rebinding).
`LEDGER_WEBHOOK_ALLOW_PRIVATE=1` lifts the address check (tests, private deployments).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

import msgspec

from ledger.errors import InvalidWebhookUrl, TargetNotAllowed, TargetUnresolvable

MAX_URL_LENGTH = 2048  # what browsers and proxies reliably carry
_URL_SAFE = "/%:@!$&'()*+,;=-._~?"  # what may stay as it is in a path or query (RFC 3986)
RESOLVE_TIMEOUT = 5.0  # seconds; a resolver that hangs must not hold a request or an attempt


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """How to reach a URL: the URL to request, and the Host / TLS name to present."""

    url: str
    host: str | None = None  # Host header, when `url` names an address instead of the host
    sni_hostname: str | None = None


def check_url(url: str) -> SplitResult:
    """The URL's parts, or `invalid_webhook_url` saying what is wrong with it."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhookUrl(f"The webhook URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidWebhookUrl("The webhook URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError when the port is not a number in range
    except ValueError as exc:
        raise InvalidWebhookUrl(f"The webhook URL is not valid: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhookUrl("The webhook URL must use http or https")
    if not parts.hostname:
        raise InvalidWebhookUrl("The webhook URL has no host")
    if parts.username is not None or parts.password is not None:
        # They would be shown back in every GET and sent in clear over http.
        raise InvalidWebhookUrl("The webhook URL must not carry credentials")
    return parts


def why_forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address is not a public one, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for reason, hit in (
        ("unspecified", address.is_unspecified), ("loopback", address.is_loopback),
        ("link-local", address.is_link_local), ("multicast", address.is_multicast),
        ("private", address.is_private), ("reserved", address.is_reserved),
    ):
        if hit:
            return reason
    return None if address.is_global else "non-public"


async def resolve(parts: SplitResult, *, allow_private: bool) -> list[str]:
    """Every address the URL's host resolves to; `target_not_allowed` if any is internal."""
    host = parts.hostname
    try:
        addresses = [str(ipaddress.ip_address(host))]  # type: ignore[arg-type]  # a validated URL has a host
    except ValueError:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT):
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError, TimeoutError) as exc:
            raise TargetUnresolvable(f"The webhook host {host} does not resolve: {exc}") from None
        addresses = list(dict.fromkeys(info[4][0] for info in infos))  # type: ignore[misc]  # an IP address from getaddrinfo is a str
    if not allow_private:
        for address in addresses:
            # One internal address is enough to refuse: a resolver may rotate through them.
            if reason := why_forbidden(ipaddress.ip_address(address.split("%")[0])):
                raise TargetNotAllowed(f"The webhook host {host} resolves to {address}, a {reason} address")
    return addresses


async def check_target(url: str, *, allow_private: bool) -> None:
    """For registering a URL: well formed, and (unless allowed) not internal."""
    await resolve(check_url(url), allow_private=allow_private)


async def pin(url: str, *, allow_private: bool) -> Target:
    """For an attempt: check the URL again, and fix the address to connect to. The URL
    to request is plain ASCII (an international host name in IDNA, the path escaped)."""
    parts = check_url(url)
    addresses = await resolve(parts, allow_private=allow_private)
    host = _ascii_host(parts.hostname)  # type: ignore[arg-type]  # a validated URL has a host
    path, query = quote(parts.path, safe=_URL_SAFE), quote(parts.query, safe=_URL_SAFE)
    if allow_private:  # no address to hold to: connect by name
        literal = f"[{host}]" if ":" in host else host
        netloc = f"{literal}:{parts.port}" if parts.port else literal
        return Target(url=urlunsplit((parts.scheme, netloc, path, query, "")))
    address = ipaddress.ip_address(addresses[0].split("%")[0])
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    return Target(
        url=urlunsplit((parts.scheme, netloc, path, query, "")),
        host=f"{host}:{parts.port}" if parts.port else host,
        sni_hostname=host if parts.scheme == "https" else None,
    )


def _ascii_host(hostname: str) -> str:
    try:
        return hostname.encode("idna").decode()
    except UnicodeError:
        raise InvalidWebhookUrl(f"The webhook host {hostname} is not a valid host name") from None
