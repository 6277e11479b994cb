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


NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address in the last 32 bits, reached by a gateway
# Not globally reachable by the IANA special-purpose registries, whatever the running Python says: before 3.11.10
# and 3.12.4 (CVE-2024-4032) `is_global` took these for public. 192.0.0.9 and .10 are the registry's exceptions.
NOT_GLOBAL = tuple(ipaddress.ip_network(net) for net in ("192.0.0.0/24", "64:ff9b:1::/48", "3fff::/20"))
GLOBAL_IN_NOT_GLOBAL = frozenset(ipaddress.ip_address(ip) for ip in ("192.0.0.9", "192.0.0.10"))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries to an IPv4 host: mapped, 6to4, NAT64, or the old compatible form."""
    if (carried := ip.ipv4_mapped or ip.sixtofour) is not None:
        return carried
    if ip in NAT64 or (int(ip) >> 32 == 0 and int(ip) > 1):  # ::a.b.c.d, not :: or ::1
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _internal(address: str) -> bool:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is None and ip.is_site_local:
            return True
        ip = embedded or ip
    if ip not in GLOBAL_IN_NOT_GLOBAL and any(ip.version == net.version and ip in net for net in NOT_GLOBAL):
        return True
    return not ip.is_global or ip.is_multicast or ip.is_reserved


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
    if any(_internal(str(info[4][0])) for info in infos):
        # Which address is not said: a key that manages webhooks would map this network's names with it.
        raise RefusedDestination(
            f"the host {host} resolves to an internal address; webhooks go to public addresses unless "
            "COMPLAINT_API_WEBHOOK_ALLOW_PRIVATE is set"
        )
