"""Origin entries: parsing, canonical form and validation.

This is the one validator. The model, the admin, the API, the command line and
the settings import all call ``parse_entry``; the snapshot calls
``split_request_origin`` on the ``Origin`` header of a request.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

import idna
from django.core.exceptions import ValidationError
from publicsuffixlist import PublicSuffixList

from .hosting import shared_hosting_platform

NULL = "null"
ANY_PORT = "*"
DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}
MAX_LENGTH = 300  # a stored entry
# A request's Origin header longer than this is ignored (no browser sends one).
MAX_ORIGIN_LENGTH = 2048
MAX_HOST_LENGTH = 253
# Schemes no browser ever puts in an Origin header: pages of these schemes send
# "null" (or the origin of the page that made them), and ws/wss connections carry
# the page's http(s) origin. Refused with a message that says so.
NON_WEB_SCHEMES = frozenset(
    {
        "about",
        "blob",
        "chrome",
        "data",
        "edge",
        "filesystem",
        "ftp",
        "javascript",
        "mailto",
        "resource",
        "sms",
        "tel",
        "view-source",
        "vbscript",
        "ws",
        "wss",
    }
)
# The schemes an origin entry may have (an allow-list: anything else is refused).
WEB_SCHEMES = ("http", "https")
# Browser extensions' pages: Chromium (Chrome, Edge, Brave, Opera), Firefox, Safari, old Edge.
EXTENSION_SCHEMES = (
    "chrome-extension",
    "moz-extension",
    "safari-web-extension",
    "safari-extension",
    "ms-browser-extension",
)
# Webviews of hybrid and desktop app shells, which send their own scheme: Capacitor
# (capacitor://localhost), Ionic (ionic://localhost), Tauri (tauri://localhost), Cordova
# and Electron apps (app://...), VS Code webviews (vscode-webview://...).
APP_SCHEMES = ("app", "capacitor", "ionic", "tauri", "vscode-webview")
ORIGIN_SCHEMES = frozenset((*WEB_SCHEMES, *EXTENSION_SCHEMES, *APP_SCHEMES))
ACCEPTED_SCHEMES = (
    f"{', '.join(WEB_SCHEMES)}; browser extensions: {', '.join(EXTENSION_SCHEMES)}; "
    f"app webviews: {', '.join(APP_SCHEMES)}"
)

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")
# What a browser sends, in canonical form: the only shape worth a lookup.
_REQUEST_ORIGIN = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://"
    r"(?P<host>[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
    r"|\[[0-9a-f:.]+\])"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?"
)

SHAPE_HINT = (
    "Write an origin as scheme://host[:port] (e.g. https://app.example.com), "
    "a subdomain wildcard (https://*.example.com), a port wildcard "
    "(http://localhost:*), or null."
)


@dataclass(frozen=True)
class OriginEntry:
    """A parsed allow-list entry.

    ``host`` is the exact host, or for a wildcard the base below which any host
    matches. ``port`` is "" for the scheme's default, ``ANY_PORT``, or digits.
    """

    text: str
    scheme: str = ""
    host: str = ""
    port: str = ""
    wildcard: bool = False

    @property
    def is_null(self) -> bool:
        return self.text == NULL

    @property
    def is_exact(self) -> bool:
        return not self.wildcard and self.port != ANY_PORT


def _fail(message: str) -> ValidationError:
    return ValidationError(message, code="invalid_origin")


@lru_cache(maxsize=1)
def _public_suffixes() -> PublicSuffixList:
    return PublicSuffixList()


# Shared hosting that the Public Suffix List does not (or no longer) name, where
# hosts below belong to many different owners: treated as public suffixes.
SHARED_HOSTING = frozenset({"googleusercontent.com"})


def is_public_suffix(host: str) -> bool:
    return host in SHARED_HOSTING or bool(_public_suffixes().is_public(host))


@lru_cache(maxsize=1)
def _suffix_parents() -> frozenset[str]:
    """Every domain with a public suffix strictly below it (``amazonaws.com``,
    ``windows.net``...), from the rules of the Public Suffix List."""
    parents: set[str] = set()
    for rule in (*_public_suffixes()._publicsuffix, *SHARED_HOSTING):  # the parsed rules (no public accessor)
        if rule.startswith("!"):
            continue  # an exception to a "*." rule, whose base is added by that rule
        if rule.startswith("*."):
            rule = rule[2:]
            parents.add(rule)
        labels = rule.split(".")
        for start in range(1, len(labels)):
            parents.add(".".join(labels[start:]))
    return frozenset(parents)


def public_suffix_below(base: str) -> str | None:
    """A public suffix strictly below ``base`` (e.g. ``s3.amazonaws.com`` for
    ``amazonaws.com``), or None: a wildcard on ``base`` would reach other owners' sites."""
    if base not in _suffix_parents():
        return None
    below = sorted(
        (rule.count("."), rule)
        for rule in _public_suffixes()._publicsuffix
        if not rule.startswith("!") and rule.endswith("." + base)
    )
    return below[0][1] if below else None


def wildcard_base_refused(host: str) -> bool:
    """Whether a wildcard on ``host`` reaches sites of other owners: ``host`` is a
    public suffix, or has one below it."""
    return is_public_suffix(host) or host in _suffix_parents()


def shared_hosting(entry: OriginEntry) -> str | None:
    """For a wildcard on a shared hosting platform (``https://*.glitch.me``): the platform
    (``corsadmin.hosting``), whose hosts belong to strangers; None otherwise."""
    return shared_hosting_platform(entry.host) if entry.wildcard else None


def shared_hosting_refusal(text: str, platform: str) -> str:
    return (
        f"'{text}' would let any page on {platform}, a shared hosting platform where anyone "
        "can publish, read your users' data with their cookies: a policy that allows "
        f"credentials cannot list it. List the hosts you own (e.g. https://yourapp.{platform}), "
        "or put the wildcard on a policy without credentials."
    )


def shared_hosting_warning(text: str, platform: str) -> str:
    return (
        f"'{text}' allows every page on {platform}, a shared hosting platform where anyone "
        "can publish: any stranger's page there can read these responses. Prefer the hosts "
        f"you own (e.g. https://yourapp.{platform})."
    )


def _check_characters(value: str) -> None:
    if not value:
        raise _fail(f"The origin is empty. {SHAPE_HINT}")
    if len(value) > MAX_LENGTH:
        raise _fail(f"The origin is longer than {MAX_LENGTH} characters.")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise _fail("The origin contains a control character; remove it.")
    if any(c.isspace() for c in value):
        raise _fail(f"The origin contains whitespace; remove it. {SHAPE_HINT}")


_REGEX_SIGNS = (".+", "\\.", "(", "|", "?:", "[^", "\\d", "\\w")


def _refuse_regex(value: str) -> None:
    if value.startswith("^") or value.endswith("$") or any(sign in value for sign in _REGEX_SIGNS):
        raise _fail(
            f"'{value}' looks like a regular expression; entries are origins, not patterns. "
            "For every subdomain write a wildcard (https://*.example.com), for any port "
            "http://localhost:*; a regex can stay in CORS_ALLOWED_ORIGIN_REGEXES."
        )


def _split_scheme(value: str) -> tuple[str, str]:
    _refuse_regex(value)
    if value == "*":
        raise _fail(
            "A bare '*' is not an origin. To allow every origin, turn on "
            "'allow all origins' on the policy instead."
        )
    scheme, sep, rest = value.partition("://")
    if not sep:
        raise _fail(f"'{value}' has no scheme. {SHAPE_HINT}")
    scheme = scheme.lower()
    if not _SCHEME.fullmatch(scheme):
        raise _fail(f"'{scheme}' is not a valid URL scheme. {SHAPE_HINT}")
    if scheme == "file":
        raise _fail("Pages opened from file:// send 'Origin: null'; add the entry null instead.")
    if scheme in NON_WEB_SCHEMES:
        raise _fail(
            f"'{scheme}://' is never the scheme of an origin a browser sends (WebSocket "
            "connections carry the page's http:// or https:// origin). Use http://, "
            "https:// or a browser-extension scheme."
        )
    if scheme not in ORIGIN_SCHEMES:
        raise _fail(
            f"'{scheme}://' is not a scheme browsers send in an Origin header for a page that "
            f"may be allowed. Accepted schemes: {ACCEPTED_SCHEMES}."
        )
    return scheme, rest


def _check_authority(value: str, scheme: str, rest: str) -> None:
    for char, part in (("/", "a path"), ("?", "a query"), ("#", "a fragment")):
        if char in rest:
            authority = rest.split("/")[0].split("?")[0].split("#")[0]
            raise _fail(f"'{value}' has {part}; an origin has none. Write it as {scheme}://{authority}.")
    if "@" in rest:
        raise _fail(
            f"'{value}' has user information (user@); an origin has none. "
            f"Write it as {scheme}://{rest.rpartition('@')[2]}."
        )
    if "\\" in rest:
        raise _fail(f"'{value}' contains a backslash. {SHAPE_HINT}")


def _split_port(value: str, scheme: str, rest: str) -> tuple[str, str]:
    if rest.startswith("["):
        end = rest.find("]")
        if end == -1:
            raise _fail(f"'{value}' has an unclosed '[' in its IPv6 address.")
        host, after = rest[: end + 1], rest[end + 1 :]
        if after and not after.startswith(":"):
            raise _fail(f"'{value}' has text after its IPv6 address. {SHAPE_HINT}")
        port = after[1:] if after else None
    else:
        host, sep, port_text = rest.rpartition(":")
        if not sep:
            host, port = rest, None
        else:
            port = port_text
    if port is None:
        return host, ""
    if port == ANY_PORT:
        return host, ANY_PORT
    if not _PORT.fullmatch(port) or not 0 < int(port) < 65536:
        raise _fail(
            f"'{port}' is not a valid port in '{value}': use a number from 1 to "
            "65535, '*' for any port, or leave it out for the default."
        )
    port = str(int(port))
    return host, "" if DEFAULT_PORTS.get(scheme) == port else port


def _canonical_ip(host: str, value: str) -> str | None:
    if host.startswith("["):
        try:
            if "%" in host:  # a zone ("%eth0"): browsers never put one in an origin
                raise ValueError(host)
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise _fail(f"'{host}' in '{value}' is not a valid IPv6 address.") from None
    if host.rsplit(".", 1)[-1].isdigit():
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise _fail(
                f"'{host}' in '{value}' is not a valid IPv4 address; write it as four "
                "decimal numbers, e.g. 192.0.2.10."
            ) from None
    return None


@lru_cache(maxsize=4096)
def _idna(host: str) -> str:
    """The host as IDNA ASCII (UTS 46), remembered: an import validates each origin twice (the
    document's text, then the model's ``full_clean`` of the canonical one), and this is most of
    the cost. A refusal (``IDNAError``) is not remembered."""
    return idna.encode(host, uts46=True).decode("ascii")


def _canonical_hostname(host: str, value: str) -> str:
    if not host:
        raise _fail(f"'{value}' has no host. {SHAPE_HINT}")
    if host.endswith("."):
        raise _fail(f"'{value}' ends its host with a dot; remove the trailing dot.")
    if "*" in host:
        raise _fail(
            f"'{value}' has a '*' inside the host. A wildcard may only be the whole "
            "first label, as in https://*.example.com."
        )
    if any(not label for label in host.split(".")):
        raise _fail(f"'{value}' has an empty label (two dots in a row or a leading dot).")
    try:
        ascii_host = _idna(host)
    except idna.IDNAError as exc:
        raise _fail(f"'{host}' in '{value}' is not a valid host name: {exc}.") from None
    if len(ascii_host) > 253 or not all(_LABEL.fullmatch(label) for label in ascii_host.split(".")):
        raise _fail(
            f"'{host}' in '{value}' is not a valid host name: use letters, digits and "
            "hyphens, labels of at most 63 characters."
        )
    return ascii_host


def parse_entry(value: str) -> OriginEntry:
    """Parse and canonicalise an allow-list entry, or raise ``ValidationError``."""
    if not isinstance(value, str):
        raise _fail(f"An origin must be text. {SHAPE_HINT}")
    _check_characters(value)
    if value.lower() == NULL:
        return OriginEntry(text=NULL)
    scheme, rest = _split_scheme(value)
    _check_authority(value, scheme, rest)
    host, port = _split_port(value, scheme, rest)
    wildcard = host.startswith("*.")
    if wildcard:
        host = host[2:]
    ip = _canonical_ip(host, value)
    if ip is not None:
        if wildcard:
            raise _fail(f"'{value}' puts a wildcard on an IP address; list each address.")
        host = ip
    else:
        host = _canonical_hostname(host, value)
    if wildcard and is_public_suffix(host):
        raise _fail(
            f"'{value}' would allow every site under the public suffix '{host}'. "
            f"Use a domain you control, e.g. {scheme}://*.example.{host}."
        )
    nested = public_suffix_below(host) if wildcard else None
    if nested is not None:
        raise _fail(
            f"'{value}' would also allow sites under the public suffix '{nested}' (and others "
            f"below {host}), which belong to other people. List your own hosts, e.g. "
            f"{scheme}://*.yourname.{nested} or {scheme}://app.{host}."
        )
    port_part = f":{port}" if port else ""
    text = f"{scheme}://{'*.' if wildcard else ''}{host}{port_part}"
    return OriginEntry(text=text, scheme=scheme, host=host, port=port, wildcard=wildcard)


def canonical_origin(value: str) -> str:
    return parse_entry(value).text


def split_request_origin(origin: str) -> tuple[str, str, str] | None:
    """Split a request's ``Origin`` into (scheme, host, port) if it is canonical.

    Anything a browser would not send byte for byte (upper case, default port,
    trailing dot, path, whitespace) or could not send (a label starting or ending
    with '-', a label over 63 or a host over 253 characters) gives None and is refused.
    """
    match = _REQUEST_ORIGIN.fullmatch(origin) if len(origin) <= MAX_LENGTH else None
    if match is None:
        return None
    scheme, host, port = match.group("scheme", "host", "port")
    port = port or ""
    if len(host) > MAX_HOST_LENGTH:
        return None
    if port and (int(port) > 65535 or DEFAULT_PORTS.get(scheme) == port):
        return None
    return scheme, host, port
