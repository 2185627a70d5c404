"""Address ranges and the destination checks: which hosts and addresses the mock may connect
to (see the package docstring)."""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)
Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses``; tests inject one to play DNS answers."""

SCHEMES: Final = frozenset({"http", "https"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean ... (link-local anyway)
        "fd00:ec2::254",  # AWS IPv6 (a ULA: allow_private alone must not open it)
        "100.100.100.200",  # Alibaba Cloud (shared address space)
        "168.63.129.16",  # Azure WireServer (a public address)
    )
)
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")


class DestinationRefused(ValueError):
    """A URL the policy does not let the mock connect to; the message names host, address, why."""

    def __init__(self, host: str, address: str | None, reason: str) -> None:
        where = f"{host!r}" if address is None or address == host else f"{host!r} ({address})"
        super().__init__(f"destination {where} refused: {reason}")
        self.host = host
        self.address = address
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    """Which destinations beyond the public internet are allowed. The default allows none."""

    allow_private: bool = False
    """Private and other non-global ranges (RFC 1918, ``fc00::/7``, ``100.64.0.0/10``, ...)."""
    allow_loopback: bool = False
    """``127.0.0.0/8`` and ``::1``."""
    allowed_hosts: frozenset[str] = frozenset()
    """Exempt from every range check: host names (exact, case-insensitive), IP addresses or
    networks (``"10.1.0.0/16"``). The only way to reach link-local or metadata addresses."""
    _names: frozenset[str] = field(init=False, repr=False, compare=False)
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in self.allowed_hosts:
            text = _normal_host(entry)
            if not text:
                raise ValueError(f"allowed_hosts: empty entry {entry!r}")
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                names.add(text)
        object.__setattr__(self, "_names", frozenset(names))
        object.__setattr__(self, "_networks", tuple(networks))

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` is exempt by name."""
        return _normal_host(host) in self._names

    def address_allowed(self, address: IPAddress) -> bool:
        """Whether ``address`` is exempt by an address or network entry."""
        return any(address.version == n.version and address in n for n in self._networks)


DEFAULT_POLICY: Final = DestinationPolicy()
"""Public internet only."""


def refusal_reason(address: IPAddress, policy: DestinationPolicy = DEFAULT_POLICY) -> str | None:
    """Why ``policy`` refuses ``address``, or ``None`` when it may be reached. Ignores host names:
    see :func:`check_address`."""
    if policy.address_allowed(address):
        return None
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        inner = refusal_reason(embedded, policy)
        return None if inner is None else f"it embeds the IPv4 address {embedded}: {inner}"
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address (allow it by address in allowed_hosts)"
    if address.is_unspecified:
        return "the unspecified address (it reaches the local host)"
    if address.is_loopback:
        return None if policy.allow_loopback else "a loopback address (allow_loopback is off)"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there; allow it in allowed_hosts)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved or address == ipaddress.IPv4Address("255.255.255.255"):
        return "a reserved address"
    if not address.is_global:
        return (
            None
            if policy.allow_private
            else "a private or non-global address (allow_private is off)"
        )
    return None


def check_address(
    host: str, address: str | IPAddress, policy: DestinationPolicy = DEFAULT_POLICY
) -> IPAddress:
    """The parsed ``address`` that ``host`` resolved to, if ``policy`` allows it; else raises
    :class:`DestinationRefused`."""
    ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    if policy.host_allowed(host):
        return ip
    reason = refusal_reason(ip, policy)
    if reason is not None:
        raise DestinationRefused(host, str(ip), reason)
    return ip


@dataclass(frozen=True, slots=True)
class CheckedDestination:
    """A URL whose every address passed the policy, in resolver order."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for a TCP connection (the system resolver). Raises
    :class:`OSError` (``socket.gaierror``) when it does not resolve: a network failure, which a
    caller may retry, not a refusal."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as error:  # a label the IDNA codec refuses
        raise socket.gaierror(socket.EAI_NONAME, f"{host!r}: {error}") from error
    return _unique(str(info[4][0]) for info in infos)


def check_url(
    url: str,
    policy: DestinationPolicy = DEFAULT_POLICY,
    *,
    resolve: Resolver = resolve_host,
) -> CheckedDestination:
    """Parse ``url``, resolve its host (all addresses) and check each against ``policy``.

    An early, clear answer (e.g. when a request is submitted); a connection must still go
    through the guarded clients, which check again at connect time (see the module docstring).
    Raises :class:`DestinationRefused`, or :class:`OSError` when the host does not resolve.
    """
    scheme, host, port = _split(url)
    addresses = checked_addresses(host, port, policy, resolve)
    return CheckedDestination(url, scheme, host, port, addresses)


def _split(url: str) -> tuple[str, str, int]:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise DestinationRefused(url[:200], None, f"not a valid URL ({error})") from error
    scheme = parts.scheme.lower()
    host = _normal_host(parts.hostname or "")
    if scheme not in SCHEMES:
        raise DestinationRefused(host or url[:200], None, f"scheme {scheme!r} is not http(s)")
    if not host:
        raise DestinationRefused(url[:200], None, "the URL has no host")
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def checked_addresses(
    host: str, port: int, policy: DestinationPolicy, resolve: Resolver
) -> tuple[IPAddress, ...]:
    host = _normal_host(host)
    literal = _literal(host)
    found = [literal] if literal is not None else resolve(host, port)
    if not found:
        raise DestinationRefused(host, None, "it resolves to no address")
    return tuple(check_address(host, a, policy) for a in found)


# -- helpers --------------------------------------------------------------------------------


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _literal(host: str) -> str | None:
    """``host`` itself when it is an IP literal (the resolver would only echo it)."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    return host


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
