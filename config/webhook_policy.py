"""The webhook address policy: which URLs a push notification config may name and which addresses a
delivery may connect to. SPEC §9.5 asks servers to validate webhook URLs against SSRF (PROTOCOL.md §8).

The gateway checks a config when it is set, the worker again before each delivery: both resolve the
host with `host_addresses` and ask about every address they would connect to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_FIELD = "pushNotificationConfig.url"
_ADMIT_HINT = "A2A_PUSH_ALLOWLIST admits addresses or hosts"
_DEFAULT_PORTS = {"https": 443, "http": 80}

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_HOST_ENTRY = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*")
# WHATWG URL parsers read a host whose last label is a number as an IPv4 address ("127.1",
# "0x7f.1"); only the dotted-quad form is accepted, so no two parsers disagree about the host.
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
_PORT = re.compile(r"[0-9]{1,5}")

# Instance metadata services, reported apart from the ranges that hold them: AWS/GCP/Azure/OpenStack
# 169.254.169.254, AWS's IPv6 endpoint, Alibaba Cloud 100.100.100.200, Azure's WireServer.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)

# Checked in order, after the metadata addresses; an address in none of them must still be global.
_RULES: tuple[tuple[str, str, tuple[IPNetwork, ...]], ...] = tuple(
    (rule, what, tuple(ipaddress.ip_network(n) for n in networks))
    for rule, what, networks in (
        ("unspecified", "the unspecified address", ("0.0.0.0/32", "::/128")),
        ("loopback", "a loopback address", ("127.0.0.0/8", "::1/128")),
        ("link-local", "a link-local address", ("169.254.0.0/16", "fe80::/10")),
        (
            "private",
            "a private address",
            ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
        ),
        ("cgnat", "a carrier-grade NAT address", ("100.64.0.0/10",)),
        ("multicast", "a multicast address", ("224.0.0.0/4", "ff00::/8")),
        ("broadcast", "the broadcast address", ("255.255.255.255/32",)),
        # Ranges Python 3.11's `is_global` still calls global: IETF protocol assignments, local-use
        # NAT64 (RFC 8215), deprecated site-local, IPv6 documentation (RFC 9637).
        (
            "reserved",
            "a reserved address",
            ("192.0.0.0/24", "64:ff9b:1::/48", "fec0::/10", "3fff::/20"),
        ),
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


# Host name, port -> IP addresses.
Resolver = Callable[[str, int], Awaitable[list[str]]]

# The `authentication.schemes` a notification can carry, as `Authorization: <scheme> <credentials>`.
AUTH_SCHEMES = ("Bearer", "Basic")


class WebhookRefused(ValueError):
    """A webhook URL or address the policy refuses. `rule` names the rule broken: "scheme", "host",
    "userinfo", "port", or the class of the address ("loopback", "private", "metadata"...)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class WebhookPolicy:
    """`allowlist` holds addresses and CIDR networks ("10.1.2.3", "127.0.0.0/8", "::1/128") and host
    names: exact ("hooks.internal") or a suffix ("*.svc.cluster.local": any host below it, at any
    depth). Construction raises ValueError naming the first bad entry."""

    allow_http: bool = False
    allowlist: tuple[str, ...] = ()
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)
    _hosts: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        entries = [_allowlist_entry(entry) for entry in self.allowlist]
        object.__setattr__(self, "_networks", tuple(e for e in entries if not isinstance(e, str)))
        object.__setattr__(self, "_hosts", tuple(e for e in entries if isinstance(e, str)))

    @classmethod
    def parse(cls, allow_http: bool, allowlist: Iterable[str]) -> WebhookPolicy:
        """The policy from settings: allowlist entries are stripped, empty ones dropped."""
        return cls(allow_http, tuple(e.strip() for e in allowlist if e.strip()))

    def check_url(self, url: str) -> tuple[str, int]:
        """The host (lower case, IPv6 without brackets) and port a webhook URL names; raises
        WebhookRefused when its form breaks the policy. Says nothing about the host's addresses."""
        try:
            parts = urlsplit(url)
        except ValueError as err:
            raise WebhookRefused("host", f"{_FIELD}: not a valid URL ({err})") from err
        allowed = ("https", "http") if self.allow_http else ("https",)
        if parts.scheme not in allowed:
            required = " or ".join(allowed)
            hint = " (A2A_PUSH_ALLOW_HTTP admits http)" if parts.scheme == "http" else ""
            raise WebhookRefused(
                "scheme",
                f"{_FIELD}: scheme {parts.scheme!r} is not allowed; "
                f"the webhook policy requires {required}{hint}",
            )
        if "@" in parts.netloc:
            raise WebhookRefused(
                "userinfo",
                f"{_FIELD}: a user:password@ part is not allowed; "
                "credentials go in pushNotificationConfig.authentication",
            )
        host, port_text = _split_netloc(parts.netloc)
        if not port_text:
            return host, _DEFAULT_PORTS[parts.scheme]
        if not _PORT.fullmatch(port_text) or not 0 < int(port_text) < 65536:
            raise WebhookRefused(
                "port", f"{_FIELD}: port {port_text!r} is not a valid port (1-65535)"
            )
        return host, int(port_text)

    def host_allowed(self, host: str) -> bool:
        """Whether a host-name entry of the allowlist admits `host` (and so every address of it)."""
        name = host.lower().rstrip(".")
        return any(
            name.endswith(entry[1:]) if entry.startswith("*.") else name == entry
            for entry in self._hosts
        )

    def check_address(self, address: str, host: str) -> None:
        """Raise WebhookRefused unless a delivery to `host` may connect to `address`: a global
        address, or one the allowlist admits. An IPv4 address carried inside an IPv6 one (mapped,
        NAT64, 6to4) is judged as that IPv4 address."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise WebhookRefused(
                "host", f"{_FIELD}: {address!r} (from {host!r}) is not an IP address"
            ) from None
        carried = _carried_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
        if self.host_allowed(host) or any(
            a in network for a in (ip, carried) if a is not None for network in self._networks
        ):
            return
        refusal = _refusal(ip if carried is None else carried)
        if refusal is None:
            return
        rule, what = refusal
        origin = "" if _is_literal(host, ip) else f" (from {host!r})"
        inside = "" if carried is None else f" (IPv4 {carried} inside IPv6)"
        raise WebhookRefused(
            rule,
            f"{_FIELD}: {address}{origin} is {what}{inside}; "
            f"the webhook policy refuses it ({_ADMIT_HINT})",
        )


def _allowlist_entry(entry: str) -> IPNetwork | str:
    text = entry.strip().lower()
    if "/" in text or ":" in text or re.fullmatch(r"[0-9.]+", text):
        try:
            return ipaddress.ip_network(text)
        except ValueError as err:
            raise ValueError(
                f"A2A_PUSH_ALLOWLIST entry {entry!r} is not an address or CIDR network ({err})"
            ) from err
    name = text.rstrip(".")
    if len(name) > 253 or not _HOST_ENTRY.fullmatch(name):
        raise ValueError(
            f"A2A_PUSH_ALLOWLIST entry {entry!r} is not an address, a CIDR network or a host name "
            "('hooks.internal', '*.svc.cluster.local')"
        )
    return name


def _split_netloc(netloc: str) -> tuple[str, str]:
    """(host, port text) of a netloc without userinfo; raises WebhookRefused for a bad host."""
    if netloc.startswith("["):
        literal, _, rest = netloc[1:].partition("]")
        host = literal.lower()
        if rest[:1] not in ("", ":") or "%" in host or not _is_ipv6(host):
            raise _bad_host(f"[{literal}]")
        return host, rest[1:]
    raw, _, port_text = netloc.partition(":")
    host = raw.lower()
    if not host:
        raise WebhookRefused("host", f"{_FIELD}: the URL has no host")
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not _HOST_NAME.fullmatch(host):
        raise _bad_host(raw)
    if _NUMERIC_LABEL.fullmatch(labels[-1]) and not _is_ipv4(host):
        raise _bad_host(raw)
    return host, port_text


def _bad_host(host: str) -> WebhookRefused:
    return WebhookRefused("host", f"{_FIELD}: host {host!r} is not a valid host name or IP address")


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _is_literal(host: str, ip: IPAddress) -> bool:
    try:
        return ipaddress.ip_address(host) == ip
    except ValueError:
        return False


def _carried_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _refusal(ip: IPAddress) -> tuple[str, str] | None:
    """(rule, description) of the class that refuses `ip`, or None for a global address."""
    if ip in _METADATA:
        return "metadata", "a cloud metadata address"
    for rule, what, networks in _RULES:
        if any(ip in network for network in networks):
            return rule, what
    if not ip.is_global or ip.is_reserved:
        return "reserved", "a reserved address"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver, duplicates dropped, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def host_addresses(host: str, port: int, resolver: Resolver) -> list[str]:
    """The addresses a connection to `host` may go to: the host itself when it is an IP address, else
    what `resolver` answers. OSError when it answers none."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [host]
    addresses = await resolver(host, port)
    if not addresses:
        raise OSError("no address")
    return addresses
