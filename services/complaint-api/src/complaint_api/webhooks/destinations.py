"""Where webhooks may point: not at this network's own services (server-side request forgery).

A URL whose host resolves to a loopback, private, link-local, multicast, reserved or unspecified address
is refused, unless `COMPLAINT_API_WEBHOOK_ALLOW_PRIVATE` allows it (an on-premises receiver). The check runs
when a webhook is subscribed and again before every delivery, so a name re-pointed later is caught too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class RefusedDestination(ValueError):
    """The URL's host is internal, or does not resolve."""


def _internal(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


async def check_destination(url: str, *, allow_private: bool) -> None:
    """Raise RefusedDestination unless every address the URL's host resolves to is a public one."""
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise RefusedDestination("the URL has no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise RefusedDestination(f"the host {host} does not resolve") from exc
    internal = sorted({info[4][0] for info in infos if _internal(str(info[4][0]))})
    if internal:
        raise RefusedDestination(
            f"the host {host} resolves to an internal address ({', '.join(internal)}); webhooks go to public "
            "addresses unless COMPLAINT_API_WEBHOOK_ALLOW_PRIVATE is set"
        )
