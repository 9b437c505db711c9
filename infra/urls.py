"""Is a data URL safe to fetch from inside the cluster?

The tuning pod downloads spec URLs with the cluster's network identity, so a URL that reaches
a private, link-local or cluster-internal destination would let whoever writes a spec read
internal services or the node's Azure credentials. A host is judged as an HTTP client will
read it: after percent-decoding, IDNA/UTS46 mapping (full-width and other Unicode forms fold
to ASCII), and with every IPv4 address an IPv6 address can carry.

What cannot be checked offline, documented in docs/workload-specs.md: a public name that
resolves to a private address (DNS rebinding, wildcard DNS such as 10.0.0.1.nip.io), and
`<service>.<namespace>` names, which the cluster's DNS search path resolves.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qs, unquote, urlsplit

import idna

# Azure's platform endpoints: the WireServer (a public address, so is_global calls it safe)
# and the instance metadata service (link-local, refused anyway; named for the message).
AZURE_PLATFORM = {ipaddress.ip_address("168.63.129.16"): "Azure's WireServer (168.63.129.16)",
                  ipaddress.ip_address("169.254.169.254"): "the Azure instance metadata service"}
UNSAFE_HOSTS = {"localhost", "metadata"}
# Names only a private resolver answers: mDNS, RFC 6761/6762/8375 special-use, Kubernetes services.
UNSAFE_SUFFIXES = (".local", ".localhost", ".internal", ".localdomain", ".home.arpa", ".arpa", ".svc",
                   ".cluster", ".test", ".invalid", ".example", ".intranet", ".corp", ".lan")
# Hosts an HTTP client may read as an IPv4 address although ipaddress does not: 2852039166, 0xa9fea9fe, 0251.0.0.1
NUMERIC_HOST = re.compile(r"(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}")
# Characters URL parsers disagree on (a backslash is "/" to WHATWG parsers, not to urllib), or that
# no valid URL holds unescaped.
AMBIGUOUS_CHARS = re.compile(r"[\\\s\x00-\x1f\x7f]")
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
ISATAP_IDS = (0x00005EFE, 0x02005EFE)  # interface identifier ::0:5efe:a.b.c.d, or ::200:5efe:a.b.c.d
FIX = "data must come from a public https endpoint"


def problems(url: str) -> list[tuple[str, str]]:
    """(message, hint) for each reason `url` may not be fetched; [] for a safe https URL."""
    if AMBIGUOUS_CHARS.search(url):
        return [("the URL contains a space, control character or backslash",
                 "percent-encode it in the path; parsers disagree on where such a URL goes")]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:  # an unclosed [ipv6, a bad port, a netloc that normalises to '/', '@' ...
        return [(f"not a valid URL: {exc}", "write it as https://host/path")]
    if parts.scheme != "https":
        return []  # the schema's pattern reports it
    found = []
    if parts.username is not None or parts.password is not None:
        found.append(("the URL carries credentials",
                      "never put credentials in a spec; use an image source with pullSecrets"))
    query = {key.lower() for key in parse_qs(parts.query, keep_blank_values=True)}
    if {"sv", "se"} <= query and "sig" not in query:  # sig= itself is a signed URL, reported with the secrets
        found.append(("the URL carries a SAS token (sv= and se=)",
                      "never put tokens in a spec; grant the cluster read access or use an image source"))
    host, reason = unsafe_host(parts.hostname or "")
    if reason:
        found.append((f"host {host!r} is {reason}", FIX))
    return found


def unsafe_host(raw: str) -> tuple[str, str]:
    """(the host as a client reads it, why it is unsafe or "")."""
    if not raw:
        return raw, "missing"
    if "%" in raw:
        return unquote(raw), "percent-encoded (clients decode it); write the host name plainly"
    try:
        return raw, _unsafe_address(ipaddress.ip_address(raw))
    except ValueError:
        pass
    try:
        host = idna.encode(raw, uts46=True).decode("ascii") if not raw.isascii() else raw
    except idna.IDNAError as exc:
        return raw, f"not a valid host name ({exc})"
    host = host.lower().rstrip(".")
    try:
        return host, _unsafe_address(ipaddress.ip_address(host))  # e.g. full-width digits fold to an address
    except ValueError:
        pass
    if NUMERIC_HOST.fullmatch(host):
        return host, "a numeric address in a form clients read differently"
    if host in UNSAFE_HOSTS or host.startswith("metadata.") or host.endswith(UNSAFE_SUFFIXES):
        return host, "local, cluster-internal or a metadata endpoint"
    if "." not in host:
        return host, "a single-label name (the cluster's DNS search path resolves it to internal services)"
    return host, ""


def _unsafe_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if ip in AZURE_PLATFORM:
        return AZURE_PLATFORM[ip]
    if isinstance(ip, ipaddress.IPv6Address):
        for embedded in _embedded_ipv4(ip):
            reason = _unsafe_address(embedded)
            if reason:
                return f"an IPv6 address carrying {embedded} ({reason})"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "link-local (cloud metadata lives there)"
    if not ip.is_global or ip.is_multicast:  # private, shared address space, documentation, reserved
        return "a private or reserved address"
    return ""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address an IPv6 address reaches: mapped, compatible, 6to4, Teredo, NAT64, ISATAP."""
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    found = []
    if ip.ipv4_mapped:
        found.append(ip.ipv4_mapped)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # ::a.b.c.d, IPv4-compatible (deprecated, still routed by some stacks)
        found.append(low32)
    if ip.sixtofour:
        found.append(ip.sixtofour)
    if ip.teredo:
        found.extend(ip.teredo)  # (server, client)
    if any(ip in net for net in NAT64):
        found.append(low32)
    if (int(ip) >> 32) & 0xFFFFFFFF in ISATAP_IDS:
        found.append(low32)
    return found
