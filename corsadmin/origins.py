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
from django.utils.functional import lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .hosting import shared_hosting_platform
from .suffixes import is_public_suffix, public_suffix_below

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


def _accepted_schemes() -> str:
    return _("%(web)s; browser extensions: %(extensions)s; app webviews: %(apps)s") % {
        "web": ", ".join(WEB_SCHEMES),
        "extensions": ", ".join(EXTENSION_SCHEMES),
        "apps": ", ".join(APP_SCHEMES),
    }


ACCEPTED_SCHEMES = lazy(_accepted_schemes, str)()

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# A host IDNA leaves as it is (lower-case letters, digits, hyphens; no "--" at 3-4, so no
# "xn--"): an import of 100,000 such hosts skips the IDNA library for each.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACE = re.compile(r"\s")
_PLAIN_LABEL = r"(?![a-z0-9-]{2}--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_HOST = re.compile(rf"{_PLAIN_LABEL}(?:\.{_PLAIN_LABEL})*")
_PORT = re.compile(r"[0-9]{1,5}")
# What a browser sends, in canonical form: the only shape worth a lookup.
_REQUEST_ORIGIN = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://"
    r"(?P<host>[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
    r"|\[[0-9a-f:.]+\])"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?"
)

SHAPE_HINT = gettext_lazy(
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


def shared_hosting(entry: OriginEntry) -> str | None:
    """For a wildcard on a shared hosting platform (``https://*.glitch.me``): the platform
    (``corsadmin.hosting``), whose hosts belong to strangers; None otherwise."""
    return shared_hosting_platform(entry.host) if entry.wildcard else None


def shared_hosting_refusal(text: str, platform: str) -> str:
    return _(
        "'%(origin)s' would let any page on %(platform)s, a shared hosting platform where anyone "
        "can publish, read your users' data with their cookies: a policy that allows "
        "credentials cannot list it. List the hosts you own (e.g. https://yourapp.%(platform)s), "
        "or put the wildcard on a policy without credentials."
    ) % {"origin": text, "platform": platform}


def shared_hosting_warning(text: str, platform: str) -> str:
    return _(
        "'%(origin)s' allows every page on %(platform)s, a shared hosting platform where anyone "
        "can publish: any stranger's page there can read these responses. Prefer the hosts "
        "you own (e.g. https://yourapp.%(platform)s)."
    ) % {"origin": text, "platform": platform}


def _check_characters(value: str) -> None:
    if not value:
        raise _fail(_("The origin is empty. %(hint)s") % {"hint": SHAPE_HINT})
    if len(value) > MAX_LENGTH:
        raise _fail(_("The origin is longer than %(max)d characters.") % {"max": MAX_LENGTH})
    if _CONTROL.search(value):
        raise _fail(_("The origin contains a control character; remove it."))
    if _SPACE.search(value):  # \s of a str pattern is what str.isspace() is
        raise _fail(_("The origin contains whitespace; remove it. %(hint)s") % {"hint": SHAPE_HINT})


_REGEX_SIGNS = (".+", "\\.", "(", "|", "?:", "[^", "\\d", "\\w")


def _refuse_regex(value: str) -> None:
    if value.startswith("^") or value.endswith("$") or any(sign in value for sign in _REGEX_SIGNS):
        raise _fail(
            _(
                "'%(value)s' looks like a regular expression; entries are origins, not patterns. "
                "For every subdomain write a wildcard (https://*.example.com), for any port "
                "http://localhost:*; a regex can stay in CORS_ALLOWED_ORIGIN_REGEXES."
            )
            % {"value": value}
        )


def _split_scheme(value: str) -> tuple[str, str]:
    _refuse_regex(value)
    if value == "*":
        raise _fail(
            _(
                "A bare '*' is not an origin. To allow every origin, turn on "
                "'allow all origins' on the policy instead."
            )
        )
    scheme, sep, rest = value.partition("://")
    if not sep:
        raise _fail(_("'%(value)s' has no scheme. %(hint)s") % {"value": value, "hint": SHAPE_HINT})
    scheme = scheme.lower()
    if not _SCHEME.fullmatch(scheme):
        raise _fail(
            _("'%(scheme)s' is not a valid URL scheme. %(hint)s") % {"scheme": scheme, "hint": SHAPE_HINT}
        )
    if scheme == "file":
        raise _fail(_("Pages opened from file:// send 'Origin: null'; add the entry null instead."))
    if scheme in NON_WEB_SCHEMES:
        raise _fail(
            _(
                "'%(scheme)s://' is never the scheme of an origin a browser sends (WebSocket "
                "connections carry the page's http:// or https:// origin). Use http://, "
                "https:// or a browser-extension scheme."
            )
            % {"scheme": scheme}
        )
    if scheme not in ORIGIN_SCHEMES:
        raise _fail(
            _(
                "'%(scheme)s://' is not a scheme browsers send in an Origin header for a page that "
                "may be allowed. Accepted schemes: %(schemes)s."
            )
            % {"scheme": scheme, "schemes": ACCEPTED_SCHEMES}
        )
    return scheme, rest


def _check_authority(value: str, scheme: str, rest: str) -> None:
    for char, message in (
        ("/", gettext_lazy("'%(value)s' has a path; an origin has none. Write it as %(origin)s.")),
        ("?", gettext_lazy("'%(value)s' has a query; an origin has none. Write it as %(origin)s.")),
        ("#", gettext_lazy("'%(value)s' has a fragment; an origin has none. Write it as %(origin)s.")),
    ):
        if char in rest:
            authority = rest.split("/")[0].split("?")[0].split("#")[0]
            raise _fail(message % {"value": value, "origin": f"{scheme}://{authority}"})
    if "@" in rest:
        raise _fail(
            _("'%(value)s' has user information (user@); an origin has none. Write it as %(origin)s.")
            % {"value": value, "origin": f"{scheme}://{rest.rpartition('@')[2]}"}
        )
    if "\\" in rest:
        raise _fail(_("'%(value)s' contains a backslash. %(hint)s") % {"value": value, "hint": SHAPE_HINT})


def _split_port(value: str, scheme: str, rest: str) -> tuple[str, str]:
    if rest.startswith("["):
        end = rest.find("]")
        if end == -1:
            raise _fail(_("'%(value)s' has an unclosed '[' in its IPv6 address.") % {"value": value})
        host, after = rest[: end + 1], rest[end + 1 :]
        if after and not after.startswith(":"):
            raise _fail(
                _("'%(value)s' has text after its IPv6 address. %(hint)s")
                % {"value": value, "hint": SHAPE_HINT}
            )
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
            _(
                "'%(port)s' is not a valid port in '%(value)s': use a number from 1 to "
                "65535, '*' for any port, or leave it out for the default."
            )
            % {"port": port, "value": value}
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
            raise _fail(
                _("'%(host)s' in '%(value)s' is not a valid IPv6 address.") % {"host": host, "value": value}
            ) from None
    if host.rsplit(".", 1)[-1].isdigit():
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise _fail(
                _(
                    "'%(host)s' in '%(value)s' is not a valid IPv4 address; write it as four "
                    "decimal numbers, e.g. 192.0.2.10."
                )
                % {"host": host, "value": value}
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
        raise _fail(_("'%(value)s' has no host. %(hint)s") % {"value": value, "hint": SHAPE_HINT})
    if host.endswith("."):
        raise _fail(_("'%(value)s' ends its host with a dot; remove the trailing dot.") % {"value": value})
    if "*" in host:
        raise _fail(
            _(
                "'%(value)s' has a '*' inside the host. A wildcard may only be the whole "
                "first label, as in https://*.example.com."
            )
            % {"value": value}
        )
    if any(not label for label in host.split(".")):
        raise _fail(
            _("'%(value)s' has an empty label (two dots in a row or a leading dot).") % {"value": value}
        )
    try:
        ascii_host = host if _PLAIN_HOST.fullmatch(host) else _idna(host)
    except idna.IDNAError as exc:
        raise _fail(
            _("'%(host)s' in '%(value)s' is not a valid host name: %(error)s.")
            % {"host": host, "value": value, "error": exc}
        ) from None
    if len(ascii_host) > 253 or not all(_LABEL.fullmatch(label) for label in ascii_host.split(".")):
        raise _fail(
            _(
                "'%(host)s' in '%(value)s' is not a valid host name: use letters, digits and "
                "hyphens, labels of at most 63 characters."
            )
            % {"host": host, "value": value}
        )
    return ascii_host


def parse_entry(value: str) -> OriginEntry:
    """Parse and canonicalise an allow-list entry, or raise ``ValidationError``."""
    if not isinstance(value, str):
        raise _fail(_("An origin must be text. %(hint)s") % {"hint": SHAPE_HINT})
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
            raise _fail(
                _("'%(value)s' puts a wildcard on an IP address; list each address.") % {"value": value}
            )
        host = ip
    else:
        host = _canonical_hostname(host, value)
    if wildcard and is_public_suffix(host):
        raise _fail(
            _(
                "'%(value)s' would allow every site under the public suffix '%(suffix)s'. "
                "Use a domain you control, e.g. %(example)s."
            )
            % {"value": value, "suffix": host, "example": f"{scheme}://*.example.{host}"}
        )
    nested = public_suffix_below(host) if wildcard else None
    if nested is not None:
        raise _fail(
            _(
                "'%(value)s' would also allow sites under the public suffix '%(suffix)s' (and others "
                "below %(base)s), which belong to other people. List your own hosts, e.g. "
                "%(example)s or %(other)s."
            )
            % {
                "value": value,
                "suffix": nested,
                "base": host,
                "example": f"{scheme}://*.yourname.{nested}",
                "other": f"{scheme}://app.{host}",
            }
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
