"""The client's address, believing ``X-Forwarded-For`` only from ``TRUSTED_PROXIES``.

Every per-client limit uses this one answer: DRF's throttles (creatorcommerce/throttling.py),
allauth's rate limits on signup and login (creatorcommerce/account_adapter.py) and the media
hook's limits. See docs/operations.md ("Behind a reverse proxy").

- The peer (``REMOTE_ADDR``) is not a trusted proxy: the peer is the client, and whatever
  ``X-Forwarded-For`` it sent is ignored (anyone can write that header).
- The peer is a trusted proxy: ``X-Forwarded-For`` is read from the right, skipping trusted
  addresses (each proxy appends the address it received the request from); the first
  untrusted address is the client. If every address is trusted, the leftmost is.

``TRUSTED_PROXIES`` is a list of addresses or CIDR networks (``10.0.0.0/8,127.0.0.1``); empty
(the default) trusts nobody, which is right when clients connect to the server directly.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def trusted_networks() -> tuple:
    return _networks(tuple(settings.TRUSTED_PROXIES))


def parse_address(text: str) -> Address | None:
    """An address from a header hop or a peer: ``1.2.3.4``, ``1.2.3.4:567``, ``[::1]:8``,
    ``::1``; IPv4-mapped IPv6 becomes IPv4. None for anything else."""
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6] or [v6]:port
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _is_trusted(address: Address | None, networks) -> bool:
    return address is not None and any(address in network for network in networks)


def resolve_client_ip(peer: str, forwarded_for: str | None) -> str:
    """The client's address given the peer's and the ``X-Forwarded-For`` value."""
    peer_address = parse_address(peer or "")
    networks = trusted_networks()
    client = peer_address
    if networks and forwarded_for and _is_trusted(peer_address, networks):
        for hop in reversed(forwarded_for.split(",")):
            address = parse_address(hop)
            if address is None:  # not an address: written by the client, stop at what we know
                break
            client = address
            if not _is_trusted(address, networks):
                break
    if client is None:
        return (peer or "unknown")[:64]
    return str(client)


def client_ip(request) -> str:
    """The client address of a Django ``HttpRequest`` (or a DRF ``Request``)."""
    meta = request.META
    return resolve_client_ip(meta.get("REMOTE_ADDR", ""), meta.get("HTTP_X_FORWARDED_FOR"))
