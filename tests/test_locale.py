"""The German catalogue shipped in corsadmin/locale/de: complete, up to date with the sources,
compiled, and used by every admin page; other locales Django ships keep working.

An admin page "speaks German" when no English msgid of corsadmin's catalogue whose German
differs appears in its visible text (text outside <script>/<style>, and the values of the
attributes a browser shows): a string that skipped translation, or a msgid the catalogue
lacks, shows up in English.
"""

from __future__ import annotations

import gettext as gettext_module
import re
import shutil
from datetime import timedelta
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.utils import timezone

import corsadmin
from corsadmin import history, leases
from corsadmin.models import AllowedOrigin, LeaseToken, OriginUsage, Policy, PolicyHour, RefusedOrigin

APP = Path(corsadmin.__file__).parent
PO = APP / "locale" / "de" / "LC_MESSAGES" / "django.po"
MO = APP / "locale" / "de" / "LC_MESSAGES" / "django.mo"
# How the catalogue is made (README, "Translations"; the same flags in the lead's update).
MAKEMESSAGES = ["makemessages", "-l", "de", "--add-location", "file", "--no-obsolete"]

# English msgids that a German page shows as data, not as corsadmin's words:
NOT_WORDS = {
    "default",  # the name of the policy `migrate` creates
    "report",  # the API's parameter, quoted in German sentences ("report: true")
    "host",  # in notation German sentences keep: schema://host[:port]
}


# --- the catalogue, read without gettext tools ------------------------------------------


def _unquote(lines: list[str]) -> str:
    text = "".join(line[1:-1] for line in lines)
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text)


def read_po(path: Path) -> list[dict]:
    """The entries of a PO file: msgid, msgid_plural, msgstr (a list), flags."""
    entries = []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        entry: dict = {"flags": set(), "msgid_plural": None}
        parts: dict[str, list[str]] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith("#,"):
                entry["flags"] |= {flag.strip() for flag in line[2:].split(",")}
            elif line.startswith("#"):
                continue
            elif line.startswith('"'):
                parts[key].append(line)
            else:
                key, _, value = line.partition(" ")
                parts[key] = [value]
        entry["msgid"] = _unquote(parts["msgid"])
        if "msgid_plural" in parts:
            entry["msgid_plural"] = _unquote(parts["msgid_plural"])
        entry["msgstr"] = [_unquote(v) for k, v in sorted(parts.items()) if k.startswith("msgstr")]
        entries.append(entry)
    return entries


def messages(path: Path = PO) -> list[dict]:
    return [entry for entry in read_po(path) if entry["msgid"]]  # not the header


def translated_away() -> list[str]:
    """The English msgids (plural forms included) whose German differs."""
    found = []
    for entry in messages():
        english = [entry["msgid"], *([entry["msgid_plural"]] if entry["msgid_plural"] else [])]
        found += [text for text in english if text not in entry["msgstr"] and text not in NOT_WORDS]
    return found


# --- what a page shows ---------------------------------------------------------------------

SHOWN = {"title", "placeholder", "alt", "aria-label"}


# Elements without an end tag: they open no element a lang="en" quote would have to close.
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Visible(HTMLParser):
    """The text a reader sees, but what is marked as quoted English (``lang="en"``: a browser's
    console message, which browsers print in English whatever the page's language)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0
        self.quoted = 0  # open elements inside a lang="en" one, itself included

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.hidden += 1
        values = dict(attrs)
        if tag not in VOID and (self.quoted or values.get("lang") == "en"):
            self.quoted += 1
            self.hidden += 1
        shown = [v for k, v in attrs if k in SHOWN and v]
        if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
            shown.append(values["value"] or "")
        self.parts += [f" {value} " for value in shown]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.hidden -= 1
        if self.quoted and tag not in VOID:
            self.quoted -= 1
            self.hidden -= 1
        self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = Visible()
    parser.feed(html)
    return " ".join("".join(parser.parts).split())


PLACEHOLDER = re.compile(r"%\(\w+\)[sdr]|\{\w+\}")


def pattern(msgid: str) -> re.Pattern[str]:
    """The msgid as a page shows it: placeholders are any text (up to 300 characters), markup
    is dropped, words stand alone (``Allow`` is not found in ``Access-Control-Allow-Origin``)."""
    text = " ".join(re.sub(r"<[^>]+>", "", msgid).split())
    pieces = [piece for piece in PLACEHOLDER.split(text) if piece.strip()]
    body = ".{0,300}?".join(re.escape(piece.strip()).replace(r"\ ", r"\s+") for piece in pieces)
    start = r"(?<![\w-])" if re.match(r"\w", pieces[0].strip()) else ""
    end = r"(?![\w-])" if re.search(r"\w$", pieces[-1].strip()) else ""
    return re.compile(start + body + end)


@lru_cache(maxsize=1)
def patterns() -> dict[str, re.Pattern[str]]:
    return {msgid: pattern(msgid) for msgid in translated_away()}


@lru_cache(maxsize=1)
def djangos_own_gaps() -> list[re.Pattern[str]]:
    """Django's own admin sentences its German catalogue leaves English (Django 6.1's new delete
    confirmation, "Are you sure you want to delete the %(object_name)s ...? All of the
    following ..."): Django's to translate, not corsadmin's, so the scans skip them."""
    import django
    from django.utils import translation

    admin = Path(django.__file__).parent / "contrib" / "admin"
    english = admin / "locale" / "en" / "LC_MESSAGES" / "django.po"
    with translation.override("de"):
        return [
            pattern(entry["msgid"])
            for entry in messages(english)
            if len(entry["msgid"].split()) > 2 and translation.gettext(entry["msgid"]) == entry["msgid"]
        ]


def corsadmins_text(html: str) -> str:
    text = visible_text(html)
    for gap in djangos_own_gaps():
        text = gap.sub(" ", text)
    return text


def english_left(html: str) -> list[str]:
    text = corsadmins_text(html)
    return sorted({msgid for msgid, found in patterns().items() if found.search(text)})


# English words no German sentence has (not "in", "was", "an"; not "Origins", German too), as a
# string that never went through gettext shows them: the scan above only knows the catalogue's msgids.
ENGLISH = re.compile(
    r"(?<![\w-])(?:the|is|are|not|and|of|to|with|by|this|for|which|it|on|has|have|will|would|any|every"
    r"|none|never|nothing|other|only|allowed|refused|disabled|expired|active|policy|entry|seen)(?![\w-])",
    re.IGNORECASE,
)


def english_words(html: str) -> list[str]:
    return sorted({word.lower() for word in ENGLISH.findall(corsadmins_text(html))})


def test_the_page_scan_finds_an_english_msgid():
    html = '<h1 title="Check an origin">Origin pr\u00fcfen</h1><p>Keine Ausnahmen.</p><p>No exceptions.</p>'
    assert english_left(html) == ["Check", "Check an origin", "No exceptions.", "origin"]
    assert english_left("<p>Access-Control-Allow-Origin: *</p><script>Allow</script>") == []
    assert english_words("<p>Nothing changed: <b>the</b> Origin in der Richtlinie</p>") == ["nothing", "the"]
    quoted = '<td><code lang="en">Access to <b>x</b> is blocked<br>by CORS policy</code> Nothing</td>'
    assert english_words(quoted) == ["nothing"]


# --- the German admin ------------------------------------------------------------------------


@pytest.fixture
def german(settings):
    settings.LANGUAGE_CODE = "de"


@pytest.fixture
def data(db):
    """A little of everything the admin shows: policies, allow and deny entries (expired,
    expiring, disabled, plain http:// with credentials), refused origins, counts, history."""
    now = timezone.now()
    api = Policy.objects.create(
        name="api", url_regex=r"^/api/", allow_credentials=True, hosts=["api.example.com"], priority=5
    )
    Policy.objects.filter(name="default").update(enabled=False)  # some paths covered by nothing
    report = Policy.objects.create(name="shadow", url_regex=r"^/shadow/", mode=Policy.REPORT)
    rows = {
        "allow": AllowedOrigin.objects.create(origin="https://app.example.com", policy=api, note="die App"),
        "http": AllowedOrigin.objects.create(origin="http://legacy.example.org", policy=api),
        "soon": AllowedOrigin.objects.create(
            origin="https://soon.example.com", policy=api, expires_at=now + timedelta(days=2)
        ),
        "gone": AllowedOrigin.objects.create(
            origin="https://gone.example.com", policy=api, expires_at=now - timedelta(days=2)
        ),
        "off": AllowedOrigin.objects.create(origin="https://off.example.com", policy=api, enabled=False),
        "wild": AllowedOrigin.objects.create(origin="https://*.example.net", policy=api),
        "deny": AllowedOrigin.objects.create(
            origin="https://evil.example.net", policy=api, effect=AllowedOrigin.DENY
        ),
        "report": AllowedOrigin.objects.create(origin="https://r.example.com", policy=report),
    }
    OriginUsage.objects.create(origin=rows["allow"], hits=12, last_seen=now)
    OriginUsage.objects.create(origin=rows["deny"], hits=3, last_seen=now)
    hour = now.replace(minute=0, second=0, microsecond=0)
    PolicyHour.objects.create(policy="api", hour=hour - timedelta(hours=1), allowed=7, refused=2)
    for origin, path, is_report, policy in (
        ("https://stranger.example", "/api", False, ""),
        ("https://app.example.com", "/web", False, ""),
        ("https://x.example.com", "/shadow", True, "shadow"),
    ):
        RefusedOrigin.objects.create(
            origin=origin,
            path_prefix=path,
            count=4,
            first_seen=now,
            last_seen=now,
            report=is_report,
            policy=policy,
        )
    return rows


ORIGINS = "/admin/corsadmin/allowedorigin/"
POLICIES = "/admin/corsadmin/policy/"
REFUSED = "/admin/corsadmin/refusedorigin/"
LEASES = "/admin/corsadmin/leasetoken/"


def a_lease(policy: Policy) -> int:
    """A revoked origin lease (its page shows every field), made when the page is asked for."""
    lease, _key = leases.create("ci-previews", policy, "https://pr-*.preview.example.com", 604800)
    leases.revoke(lease)
    return lease.pk


def lease_form(policy: Policy, pattern: str) -> dict:
    return {"name": "pr", "policy": policy.pk, "pattern": pattern, "max_ttl": "7d"}


def check(origin: str, **params: str) -> tuple[str, str, None]:
    query = {"origin": origin, "path": "/api/x", "method": "GET", "host": "api.example.com", **params}
    return "get", f"{ORIGINS}check/?{urlencode(query)}", None


def action(name: str, rows: list, **extra: object) -> dict:
    return {"action": name, "_selected_action": [row.pk for row in rows], **extra}


def origin_form(origin: str, policy: Policy, **extra: str) -> dict:
    return {"origin": origin, "policy": policy.pk, "effect": "allow", "enabled": "on", "cors": "on", **extra}


POLICY_FORM = {
    "name": "bad name",
    "url_regex": "^/(?=x)",
    "allow_methods": ["GET"],
    "allow_methods_other": "B@D",
    "allow_headers": "x y@",
    "hosts": "http://x.example.com/",
    "max_age": "0",
    "priority": "0",
    "mode": "enforce",
    "enabled": "on",
    "allow_all_origins": "on",
    "allow_credentials": "on",
    "origins-TOTAL_FORMS": "0",
    "origins-INITIAL_FORMS": "0",
}

# name -> (method, url, POST data), from the rows of ``data`` (r) and the refused origins (x).
PAGES = {
    "index": lambda r, x: ("get", "/admin/", None),
    "app index": lambda r, x: ("get", "/admin/corsadmin/", None),
    "policies": lambda r, x: ("get", POLICIES, None),
    "policy add": lambda r, x: ("get", POLICIES + "add/", None),
    "policy change": lambda r, x: ("get", f"{POLICIES}{r['allow'].policy_id}/change/", None),
    "policy delete": lambda r, x: ("get", f"{POLICIES}{r['allow'].policy_id}/delete/", None),
    "policy history": lambda r, x: ("get", f"{POLICIES}{r['allow'].policy_id}/history/", None),
    "policy errors": lambda r, x: ("post", POLICIES + "add/", POLICY_FORM),
    "origins": lambda r, x: ("get", ORIGINS, None),
    "origins filtered": lambda r, x: ("get", ORIGINS + "?expired=soon&unused=30", None),
    "origin add": lambda r, x: ("get", ORIGINS + "add/", None),
    "origin change": lambda r, x: ("get", f"{ORIGINS}{r['http'].pk}/change/", None),
    "deny change": lambda r, x: ("get", f"{ORIGINS}{r['deny'].pk}/change/", None),
    "deny delete": lambda r, x: ("get", f"{ORIGINS}{r['deny'].pk}/delete/", None),
    "origin history": lambda r, x: ("get", f"{ORIGINS}{r['allow'].pk}/history/", None),
    "origin errors": lambda r, x: (
        "post",
        ORIGINS + "add/",
        origin_form("https://a.example/p", r["allow"].policy),
    ),
    "origin duplicate": lambda r, x: (
        "post",
        ORIGINS + "add/",
        origin_form(r["allow"].origin, r["allow"].policy),
    ),
    "origin null": lambda r, x: (
        "post",
        ORIGINS + "add/",
        origin_form("null", r["allow"].policy, csrf_trusted="on"),
    ),
    "refused": lambda r, x: ("get", REFUSED, None),
    "refused change": lambda r, x: ("get", f"{REFUSED}{x[0].pk}/change/", None),
    "check form": lambda r, x: ("get", ORIGINS + "check/", None),
    "check allowed": lambda r, x: check("https://app.example.com"),
    "check disabled": lambda r, x: check("https://off.example.com"),
    "check denied": lambda r, x: check("https://evil.example.net"),
    "check preflight": lambda r, x: check("https://app.example.com", method="PUT", request_headers="x-a"),
    "check uncovered": lambda r, x: check("https://app.example.com", path="/shadow/x", host=""),
    "check invalid": lambda r, x: check("https://app.example.com/x/y"),  # no catalogue word in the data
    "check elsewhere": lambda r, x: check("http://app.example.com:8080", host="www.example.com"),
    "overview": lambda r, x: ("get", ORIGINS + "overview/", None),
    "probe form": lambda r, x: ("get", ORIGINS + "probe/", None),
    "probe errors": lambda r, x: (
        "post",
        ORIGINS + "probe/",
        {"url": "ftp://x/", "origin": "x", "method": "TRACE", "headers": "Cookie: a", "credentials": "omit"},
    ),
    "confirm disable": lambda r, x: ("post", ORIGINS, action("disable", [r["deny"], r["allow"]])),
    "confirm delete": lambda r, x: ("post", ORIGINS, action("delete_selected", [r["deny"], r["allow"]])),
    "move form": lambda r, x: ("post", ORIGINS, action("move_to_policy", [r["deny"], r["allow"]])),
    "expiry form": lambda r, x: ("post", ORIGINS, action("set_expiry", [r["deny"], r["allow"]])),
    "allow refused form": lambda r, x: ("post", REFUSED, action("allow", x)),
    "action message": lambda r, x: ("follow", ORIGINS, action("enable", [r["off"]])),
    "leases": lambda r, x: ("get", LEASES if a_lease(r["allow"].policy) else "", None),
    "lease add": lambda r, x: ("get", LEASES + "add/", None),
    "lease change": lambda r, x: ("get", f"{LEASES}{a_lease(r['allow'].policy)}/change/", None),
    "lease errors": lambda r, x: (
        "post",
        LEASES + "add/",
        lease_form(r["allow"].policy, "https://a.*.x.com"),
    ),
    "lease created": lambda r, x: (
        "follow",
        LEASES + "add/",
        lease_form(r["allow"].policy, "https://pr-*.x.com"),
    ),
    "lease revoked": lambda r, x: (
        "follow",
        LEASES,
        action("revoke", list(LeaseToken.objects.filter(pk=a_lease(r["allow"].policy)))),
    ),
    "widening done": lambda r, x: ("follow", ORIGINS, action("disable", [r["deny"]], confirm_widening="1")),
}


@pytest.fixture
def admin_page(admin_client, admin_user, data):
    for obj in (data["allow"], data["allow"].policy):  # a change in each history
        history.log_change(admin_user, obj, {**history.field_values(obj), "note": "x"}, ["note"])
    refused = list(RefusedOrigin.objects.order_by("origin"))

    def get(name: str) -> str:
        method, url, body = PAGES[name](data, refused)
        if method == "get":
            response = admin_client.get(url)
        else:
            response = admin_client.post(url, body, follow=method == "follow")
        assert response.status_code == 200, (name, response.status_code)
        return response.content.decode()

    return get


@pytest.mark.parametrize("name", sorted(PAGES))
def test_admin_pages_in_german_show_no_english_corsadmin_string(german, admin_page, name):
    html = admin_page(name)
    assert english_left(html) == []
    assert english_words(html) == []
    assert "Abmelden" in html or "abmelden" in html.lower()  # Django's own German: the page is German


# --- the catalogue -----------------------------------------------------------------------------


def test_the_german_catalogue_is_complete():
    entries = messages()
    assert len(entries) > 300
    assert [e["msgid"] for e in entries if not all(e["msgstr"]) or "fuzzy" in e["flags"]] == []


def test_the_german_catalogue_has_every_msgid_of_the_sources(tmp_path, monkeypatch):
    """``makemessages`` run on a copy of the sources finds exactly the shipped msgids."""
    assert shutil.which("xgettext"), (
        "gettext is not installed (Debian: apt-get install gettext; make gettext)"
    )
    copy = tmp_path / "corsadmin"
    shutil.copytree(APP, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    monkeypatch.chdir(copy)
    call_command(*MAKEMESSAGES, verbosity=0)
    fresh = {(e["msgid"], e["msgid_plural"]) for e in messages(copy / PO.relative_to(APP))}
    shipped = {(e["msgid"], e["msgid_plural"]) for e in messages()}
    assert {"missing": fresh - shipped, "stale": shipped - fresh} == {"missing": set(), "stale": set()}


def test_the_compiled_catalogue_matches_the_po_file():
    with MO.open("rb") as mo:
        compiled = dict(gettext_module.GNUTranslations(mo)._catalog)  # type: ignore[attr-defined]
    compiled.pop("", None)  # the header
    expected: dict = {}
    for entry in messages():
        if entry["msgid_plural"]:
            expected.update({(entry["msgid"], n): text for n, text in enumerate(entry["msgstr"])})
        else:
            expected[entry["msgid"]] = entry["msgstr"][0]
    assert compiled == expected


# --- other locales -----------------------------------------------------------------------------


# A page in a language corsadmin has no catalogue for, and one of corsadmin's words on it.
IN_ENGLISH = {
    "origins": "Enable selected origins",
    "check denied": "Check an origin",
    "origin errors": "has a path; an origin has none",
    "overview": "Requests per policy",
}


@pytest.mark.parametrize("name", sorted(IN_ENGLISH))
def test_other_locales_show_django_s_words_and_corsadmin_s_english(settings, admin_page, name):
    settings.LANGUAGE_CODE = "fr"
    text = visible_text(admin_page(name))
    assert "Déconnexion" in text  # Django's French
    assert IN_ENGLISH[name] in text
    german = {s for e in messages() for s in e["msgstr"] if len(s) > 12} - {e["msgid"] for e in messages()}
    assert [s for s in german if s in text] == []
