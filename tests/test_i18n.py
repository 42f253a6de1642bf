"""Admin-facing strings are translatable: lazy where they are defined at import time, passed
through gettext where they are built per request, and inside translate tags in the templates.

"Pseudo-locale" tests replace Django's gettext/ngettext with one that marks every string it
sees (⟦...⟧): a string that skips translation shows up unmarked. No catalogue is needed.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django import forms
from django.contrib import admin
from django.contrib.admin import SimpleListFilter
from django.contrib.messages import get_messages
from django.utils import timezone, translation
from django.utils.functional import Promise

import corsadmin
from corsadmin import admin as corsadmin_admin
from corsadmin.admin.forms import AllowedOriginForm, PolicyForm
from corsadmin.models import AllowedOrigin, OriginUsage, Policy, PolicyHour, RefusedOrigin

TEMPLATES = Path(corsadmin.__file__).parent / "templates" / "admin" / "corsadmin"
ADMIN_MODELS = (Policy, AllowedOrigin, RefusedOrigin)
INTERNAL_FIELDS = {"id", "version"}


def lazy(value: object) -> bool:
    return isinstance(value, Promise)


# --- Defined at import time: lazy -------------------------------------------------------


@pytest.mark.parametrize("model", [*ADMIN_MODELS, OriginUsage])
def test_model_names_are_lazy(model):
    assert lazy(model._meta.verbose_name)
    assert lazy(model._meta.verbose_name_plural)


@pytest.mark.parametrize("model", ADMIN_MODELS)
def test_field_names_help_texts_and_choices_are_lazy(model):
    plain = []
    for field in model._meta.concrete_fields:
        if field.name in INTERNAL_FIELDS:
            continue
        texts = [field.verbose_name, *([field.help_text] if field.help_text else [])]
        texts += [label for _value, label in field.choices or []]
        plain += [f"{field.name}: {text!r}" for text in texts if not lazy(text)]
    assert plain == []


def corsadmin_model_admins() -> list[admin.ModelAdmin]:
    return [ma for model, ma in admin.site._registry.items() if model._meta.app_label == "corsadmin"]


def test_admin_column_and_action_descriptions_are_lazy():
    plain = []
    for model_admin in corsadmin_model_admins():
        names = [*model_admin.list_display, *model_admin.readonly_fields, *(model_admin.actions or ())]
        for name in names:
            method = getattr(type(model_admin), name, None)
            if callable(method) and not lazy(getattr(method, "short_description", None)):
                plain.append(f"{type(model_admin).__name__}.{name}")
    assert plain == []


def test_admin_list_filter_titles_and_fieldset_names_are_lazy():
    plain = []
    for model_admin in corsadmin_model_admins():
        for item in model_admin.list_filter:
            if isinstance(item, type) and issubclass(item, SimpleListFilter) and not lazy(item.title):
                plain.append(item.__name__)
        for name, _options in model_admin.fieldsets or ():
            if name is not None and not lazy(name):
                plain.append(f"fieldset {name!r}")
    assert plain == []


@pytest.mark.parametrize(
    "form_class",
    [
        PolicyForm,
        AllowedOriginForm,
        corsadmin_admin.CheckForm,
        corsadmin_admin.ExpiryForm,
        corsadmin_admin.PolicyChoiceForm,
    ],
)
def test_declared_form_labels_and_help_texts_are_lazy(form_class: type[forms.Form]):
    plain = []
    for name, field in form_class.declared_fields.items():
        if not lazy(field.label):
            plain.append(f"{name} label")
        if field.help_text and not lazy(field.help_text):
            plain.append(f"{name} help_text")
    assert plain == []


# --- Built per request: through gettext (the pseudo-locale) ------------------------------


def mark(text: str) -> str:
    return f"⟦{text}⟧"


@pytest.fixture
def pseudo_locale(monkeypatch):
    """Every string that passes through gettext/ngettext comes out marked."""
    monkeypatch.setattr(translation._trans, "gettext", mark)
    monkeypatch.setattr(translation._trans, "ngettext", lambda one, many, n: mark(one if n == 1 else many))


def messages_after(client, action: str, model: str, pks: list[int]) -> list[str]:
    data = {"action": action, "_selected_action": pks}
    response = client.post(f"/admin/corsadmin/{model}/", data, follow=True)
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.django_db
def test_action_messages_go_through_ngettext(admin_client, pseudo_locale):
    entry = AllowedOrigin.objects.create(origin="https://app.example.com", enabled=False)
    assert messages_after(admin_client, "enable", "allowedorigin", [entry.pk]) == [
        mark("Enabled %(count)d origin(s).") % {"count": 1}
    ]


@pytest.mark.django_db
def test_refused_origin_messages_go_through_ngettext(admin_client, pseudo_locale):
    now = timezone.now()
    refused = RefusedOrigin.objects.create(
        origin="https://evil.example", path_prefix="/api", count=1, first_seen=now, last_seen=now
    )
    assert messages_after(admin_client, "dismiss", "refusedorigin", [refused.pk]) == [
        "⟦Dismissed 1 refused origin(s).⟧"
    ]


@pytest.mark.django_db
def test_status_column_goes_through_gettext(pseudo_locale):
    entry = AllowedOrigin(origin="https://app.example.com", effect=AllowedOrigin.DENY)
    status = admin.site._registry[AllowedOrigin].status(entry)
    assert status == '<span class="corsadmin-line">⟦deny: ⟦active⟧⟧</span>'  # then expiry, CSRF: none


def test_filter_choices_go_through_gettext(pseudo_locale):
    lookups = corsadmin_admin.UnusedFilter.lookups(None, None, None)  # type: ignore[arg-type]
    assert [str(label) for _value, label in lookups] == ["⟦Unused for 30 days⟧", "⟦Unused for 90 days⟧"]


@pytest.mark.django_db
def test_overview_charts_and_headings_go_through_gettext(admin_client, pseudo_locale):
    this_hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    PolicyHour.objects.create(policy="default", hour=this_hour - timedelta(hours=1), allowed=3, refused=1)
    html = admin_client.get("/admin/corsadmin/allowedorigin/overview/").content.decode()
    assert "⟦Policy default: allowed and refused requests per hour, last 24 hours⟧" in html
    assert "<h2>⟦Requests per policy⟧</h2>" in html
    assert 'font-size="12">⟦allowed⟧</text>' in html  # the chart's legend
    assert "⟦Policy default: 3 allowed, 1 refused in 30 days⟧" in html
    assert "<title>⟦CORS overview⟧ |" in html


# --- Templates: no visible text outside translate tags -----------------------------------

TAGS = re.compile(r"{%.*?%}|{{.*?}}", re.DOTALL)
BLOCK_TRANSLATE = re.compile(r"{%\s*blocktranslate.*?{%\s*endblocktranslate\s*%}", re.DOTALL)
COMMENTS = re.compile(r"{#.*?#}|<!--.*?-->", re.DOTALL)
STYLE = re.compile(r"<style.*?</style>", re.DOTALL)
SHOWN_ATTRIBUTES = re.compile(r'\b(?:value|placeholder|title|alt|aria-label)="([^"]*)"')


def untranslated_words(source: str) -> list[str]:
    """Words a browser would show that are not inside {% translate %} or {% blocktranslate %}."""
    text = STYLE.sub("", COMMENTS.sub("", source))
    text = TAGS.sub("", BLOCK_TRANSLATE.sub("", text))
    shown = " ".join(SHOWN_ATTRIBUTES.findall(text))
    text = re.sub(r"<[^>]*>", " ", text)
    text = re.sub(r"&\w+;", " ", text)
    return re.findall(r"[A-Za-z][A-Za-z'-]+", f"{text} {shown}")


def test_the_template_scan_finds_untranslated_text():
    source = '{% load i18n %}<h2>{% translate "Tools" %}</h2><p>Check <input value="Go"></p>'
    assert untranslated_words(source) == ["Check", "Go"]


@pytest.mark.parametrize(
    "template", sorted(str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*.html")), ids=str
)
def test_templates_show_no_text_outside_translate_tags(template: str):
    source = (TEMPLATES / template).read_text()
    assert "{% load i18n" in source
    assert untranslated_words(source) == []


# --- Validation and API messages: through gettext, placeholders filled after --------------


def refusal(call) -> str:
    """The first message of the error ``call`` raises."""
    from django.core.exceptions import ValidationError
    from rest_framework.exceptions import APIException

    from corsadmin.documents import ImportRefused

    try:
        call()
    except ValidationError as exc:
        return exc.messages[0]
    except ImportRefused as exc:
        return next(iter(exc.errors.values()))[0]
    except APIException as exc:
        return str(exc.detail)
    raise AssertionError("no error")


def _origin():
    from corsadmin.origins import parse_entry

    return refusal(lambda: parse_entry("https://a.example/p"))


def _host():
    from corsadmin.hosts import canonical_host

    return refusal(lambda: canonical_host("api.example.com:8000"))


def _regex():
    from corsadmin.regex import regex_problem

    return regex_problem("^/(?=x)")


def _token():
    from corsadmin.models import clean_token_list

    return refusal(lambda: clean_token_list(["b@d"], "methods"))


def _constraint():
    return refusal(
        lambda: Policy(name="p", allow_all_origins=True, allow_credentials=True).prepare_for_save()
    )


def _null_with_credentials():
    from corsadmin.models import NULL_WITH_CREDENTIALS

    return str(NULL_WITH_CREDENTIALS)


def _import_version():
    from corsadmin.documents import import_document

    return refusal(lambda: import_document({"version": 2, "policies": []}))


def _check_host():
    from corsadmin.api.answers import CheckQuerySerializer

    serializer = CheckQuerySerializer(data={"origin": "https://a.example", "host": "*.example.com"})
    assert not serializer.is_valid()
    return str(serializer.errors["host"][0])


def _json():
    from corsadmin.api.parsers import loads

    return refusal(lambda: loads("{"))


def _database():
    from corsadmin.db_errors import UNAVAILABLE

    return str(UNAVAILABLE.detail)


def _days():
    from corsadmin.api.filters import DAYS_MESSAGE

    return str(DAYS_MESSAGE)


def _widening():
    from corsadmin.widening import Opening, messages

    return messages(
        [Opening("https://x.example.com", "https://x.example.com", "https://*.example.com", "api")]
    )[0]


def _refused_text():
    now = timezone.now()
    return str(RefusedOrigin(origin="https://a.example", path_prefix="/api", first_seen=now, last_seen=now))


def _warning():
    policy = Policy.objects.create(name="creds", url_regex="^/", allow_credentials=True)
    return AllowedOrigin(origin="http://a.example", policy=policy).warnings()[0]


def _reason():
    from corsadmin.diagnosis import explain

    return explain("https://a.example", "/api/")["reason"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "message",
    [
        pytest.param(_origin, id="origins"),
        pytest.param(_host, id="hosts"),
        pytest.param(_regex, id="regex"),
        pytest.param(_token, id="models: token lists"),
        pytest.param(_constraint, id="models: constraints"),
        pytest.param(_null_with_credentials, id="models: module-level texts"),
        pytest.param(_warning, id="models: warnings"),
        pytest.param(_refused_text, id="models: refused origin's text"),
        pytest.param(_import_version, id="documents"),
        pytest.param(_check_host, id="serializers"),
        pytest.param(_json, id="api parsers"),
        pytest.param(_days, id="api filters"),
        pytest.param(_database, id="db_errors"),
        pytest.param(_widening, id="widening"),
        pytest.param(_reason, id="diagnosis"),
    ],
)
def test_messages_go_through_gettext_with_placeholders(pseudo_locale, message):
    text = message()
    assert text.startswith("⟦"), text
    assert "%(" not in text  # the placeholders filled after translation
