"""Input read as the REST API reads it, without the REST framework: the field rules of the import
document, ``cors policy`` and ``cors check``, refusing in DRF's words and error structure.

The messages are DRF's own msgids on purpose: where the API is installed, DRF's catalogue
translates them exactly as it does the API's (``words``); the core install shows them in English.
"""

from __future__ import annotations

import contextlib
import datetime
import re
from collections.abc import Callable, Iterable, Mapping, Sized
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.functional import lazy
from django.utils.translation import gettext, gettext_lazy

NOT_GIVEN: Any = object()

# Bounds the API's serializers declare too (``corsadmin.api.serializers``): one definition.
TOKEN_MAX_LENGTH = 128
TOKEN_LIST_MAX_ITEMS = 100
HOSTS_MAX_ITEMS = 100
HOST_MAX_LENGTH = 255
INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # portable: a 32-bit integer column on every database

MAX_DAYS = 36500
DAYS_MESSAGE = lazy(
    lambda: gettext("Give a whole number of days from 1 to %(max)d.") % {"max": MAX_DAYS}, str
)()

# corsadmin's documents nest 5 levels (export -> policies -> policy -> origins -> origin).
# Deeper is refused the same way on every Python (3.11's parser gives up on its own near
# 1,000 levels; 3.13's reads 5,000).
MAX_DEPTH = 64

NOT_TEXT = gettext_lazy("Not a valid string.")
ISO_8601 = "iso-8601"
ISO_8601_HUMAN = "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]"
STRPTIME_WORDS = {
    "%Y": "YYYY",
    "%y": "YY",
    "%m": "MM",
    "%b": "[Jan-Dec]",
    "%B": "[January-December]",
    "%d": "DD",
    "%H": "hh",
    "%I": "hh",
    "%M": "mm",
    "%S": "ss",
    "%f": "uuuuuu",
    "%a": "[Mon-Sun]",
    "%A": "[Monday-Sunday]",
    "%p": "[AM|PM]",
    "%z": "[+HHMM|-HHMM]",
}
SLUG = r"^[-a-zA-Z0-9_]+$"
DECIMAL_TAIL = re.compile(r"\.0*\s*$")  # DRF reads 1.0 as the integer 1, 1.2 as no integer

# DRF's msgids (kept out of corsadmin's catalogue: not literals inside a gettext call).
REQUIRED = "This field is required."
NULL = "This field may not be null."
BLANK = "This field may not be blank."
TEXT_MAX = "Ensure this field has no more than {max_length} characters."
LIST_MAX = "Ensure this field has no more than {max_length} elements."
NOT_A_LIST = 'Expected a list of items but got type "{input_type}".'
NOT_BOOLEAN = "Must be a valid boolean."
NOT_INTEGER = "A valid integer is required."
INT_MAX_MESSAGE = "Ensure this value is less than or equal to {max_value}."
INT_MIN_MESSAGE = "Ensure this value is greater than or equal to {min_value}."
NOT_A_CHOICE = '"{input}" is not a valid choice.'
NOT_A_SLUG = 'Enter a valid "slug" consisting of letters, numbers, underscores or hyphens.'
SURROGATE = "Surrogate characters are not allowed: U+{code_point:X}."
DATETIME_FORMAT = "Datetime has wrong format. Use one of these formats instead: {format}."
DATETIME_TIMEZONE = 'Invalid datetime for the timezone "{timezone}".'
DATETIME_OVERFLOW = "Datetime value out of range."
NO_MATCH = "This value does not match the required pattern."
NOT_AN_OBJECT = "Invalid data. Expected a dictionary, but got {datatype}."


def words(msgid: str, **params: Any) -> str:
    """One of DRF's messages, translated where DRF's catalogue is installed, placeholders filled."""
    return gettext(msgid).format(**params)


def drf_setting(name: str, default: Any) -> Any:
    """One of DRF's settings as the site sets it (``REST_FRAMEWORK``), read without DRF."""
    return getattr(settings, "REST_FRAMEWORK", {}).get(name, default)


def non_field_key() -> str:
    """Where errors about no one field go: DRF's ``NON_FIELD_ERRORS_KEY``."""
    return str(drf_setting("NON_FIELD_ERRORS_KEY", "non_field_errors"))


def too_deep(value: object, limit: int = MAX_DEPTH) -> bool:
    """Whether lists and objects nest more than ``limit`` levels (iteratively: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in item)
    return False


class Refusal(Exception):
    """A field's or an object's refusal: ``detail`` is a list of messages, or errors by key."""

    def __init__(self, detail: list[str] | dict[Any, Any]) -> None:
        super().__init__(detail)
        self.detail = detail


Validator = Callable[[Any], Any]


class Field:
    """What the REST framework's fields do with JSON input: empty values, conversion, then every
    validator, their messages together."""

    def __init__(
        self,
        *,
        required: bool = False,
        allow_null: bool = False,
        default: Any = NOT_GIVEN,
        validators: Iterable[Validator] = (),
    ) -> None:
        self.required = required
        self.allow_null = allow_null
        self.default = default
        self.validators = list(validators)

    def run(self, data: object) -> Any:
        if data is None:
            if not self.allow_null:
                raise Refusal([words(NULL)])
            return None
        value = self.convert(data)
        errors: list[str] = []
        for validator in self.validators:
            try:
                validator(value)
            except Refusal as exc:
                errors.extend(exc.detail)
            except ValidationError as exc:
                errors.extend(exc.messages)
        if errors:
            raise Refusal(errors)
        return value

    def convert(self, data: object) -> Any:
        return data


def _max_length(limit: int, message: str) -> Validator:
    def validate(value: Sized) -> None:
        if len(value) > limit:
            raise Refusal([words(message, max_length=limit)])

    return validate


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _no_surrogates(value: str) -> None:
    found = _SURROGATE.search(value)  # a regex: an import checks 100,000 strings
    if found:
        raise Refusal([words(SURROGATE, code_point=ord(found.group()))])


def _matching(pattern: str | re.Pattern[str], message: Any) -> Validator:
    regex = re.compile(pattern)

    def validate(value: str) -> None:
        if not regex.search(value):
            raise Refusal([str(message)])

    return validate


class Text(Field):
    """Text; ``text_only``: a number is a type error (corsadmin's fields), else read as text (DRF's)."""

    def __init__(
        self,
        *,
        max_length: int | None = None,
        allow_blank: bool = False,
        trim: bool = True,
        text_only: bool = True,
        null_characters: bool = False,
        after: Iterable[Validator] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.allow_blank, self.trim, self.text_only = allow_blank, trim, text_only
        if max_length is not None:
            self.validators.append(_max_length(max_length, TEXT_MAX))
        if not null_characters:
            self.validators.append(ProhibitNullCharactersValidator())
        self.validators += [_no_surrogates, *after]

    def run(self, data: object) -> Any:
        if data == "" or (self.trim and str(data).strip() == ""):
            if not self.allow_blank:
                raise Refusal([words(BLANK)])
            return ""
        return super().run(data)

    def convert(self, data: object) -> str:
        if self.text_only and not isinstance(data, str):
            raise Refusal([str(NOT_TEXT)])
        if isinstance(data, bool) or not isinstance(data, (str, int, float)):
            raise Refusal([str(NOT_TEXT)])
        value = str(data)
        return value.strip() if self.trim else value


def Slug(**kwargs: Any) -> Text:  # noqa: N802 (a field, as the others)
    return Text(after=[_matching(SLUG, gettext(NOT_A_SLUG))], **kwargs)


def Pattern(pattern: str, message: Any = None, **kwargs: Any) -> Text:  # noqa: N802
    return Text(
        after=[_matching(pattern, message or words(NO_MATCH))],
        **kwargs,
    )


class Boolean(Field):
    """true or false: JSON's booleans only."""

    def convert(self, data: object) -> bool:
        if not isinstance(data, bool):
            raise Refusal([words(NOT_BOOLEAN)])
        return data


class Integer(Field):
    """A number without a fraction (1.0 is 1); neither text nor a boolean."""

    def __init__(self, *, min_value: int, max_value: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators += [self._at_most(max_value), self._at_least(min_value)]

    @staticmethod
    def _at_most(limit: int) -> Validator:
        def validate(value: int) -> None:
            if value > limit:
                raise Refusal([words(INT_MAX_MESSAGE, max_value=limit)])

        return validate

    @staticmethod
    def _at_least(limit: int) -> Validator:
        def validate(value: int) -> None:
            if value < limit:
                raise Refusal([words(INT_MIN_MESSAGE, min_value=limit)])

        return validate

    def convert(self, data: object) -> int:
        if isinstance(data, (bool, str)):
            raise Refusal([words(NOT_INTEGER)])
        try:
            return int(DECIMAL_TAIL.sub("", str(data)))
        except (ValueError, TypeError):
            raise Refusal([words(NOT_INTEGER)]) from None


class Choice(Field):
    def __init__(self, choices: Iterable[tuple[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.choices = {str(key): key for key, _label in choices}

    def convert(self, data: object) -> Any:
        try:
            return self.choices[str(data)]
        except KeyError:
            raise Refusal([words(NOT_A_CHOICE, input=data)]) from None


class List(Field):
    """A list of ``child`` items: errors by index, then the number of items."""

    def __init__(self, child: Field, *, max_length: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.child = child
        self.validators.append(_max_length(max_length, LIST_MAX))

    def convert(self, data: object) -> list[Any]:
        if isinstance(data, (str, Mapping)) or not hasattr(data, "__iter__"):
            raise Refusal([words(NOT_A_LIST, input_type=type(data).__name__)])
        result, errors = [], {}
        for index, item in enumerate(data):
            try:
                result.append(self.child.run(item))
            except Refusal as exc:
                errors[index] = exc.detail
        if errors:
            raise Refusal(errors)
        return result


class DateTime(Field):
    """ISO 8601 (or DRF's ``DATETIME_INPUT_FORMATS``); aware in the current time zone (naive with
    ``USE_TZ = False``)."""

    # Any: what is not text fails in parse_datetime or strptime (TypeError), as in DRF's DateTimeField
    def convert(self, data: Any) -> datetime.datetime:
        if isinstance(data, datetime.datetime):
            return enforce_timezone(data)
        formats = drf_setting("DATETIME_INPUT_FORMATS", [ISO_8601])
        for input_format in formats:
            with contextlib.suppress(ValueError, TypeError):
                if input_format.lower() == ISO_8601:
                    parsed = parse_datetime(data)
                    if parsed is not None:
                        return enforce_timezone(parsed)
                return enforce_timezone(datetime.datetime.strptime(data, input_format))
        raise Refusal([words(DATETIME_FORMAT, format=humanized(formats))])


def humanized(formats: Iterable[str]) -> str:
    """Date-time formats in words, as DRF names them in its message."""
    text = ", ".join(formats).replace(ISO_8601, ISO_8601_HUMAN)
    for directive, shown in STRPTIME_WORDS.items():
        text = text.replace(directive, shown)
    return text


def enforce_timezone(value: datetime.datetime) -> datetime.datetime:
    zone = timezone.get_current_timezone() if settings.USE_TZ else None
    if zone is not None:
        if timezone.is_aware(value):
            try:
                return value.astimezone(zone)
            except OverflowError:
                raise Refusal([words(DATETIME_OVERFLOW)]) from None
        aware = timezone.make_aware(value, zone)
        if not _unambiguous(aware):
            raise Refusal([words(DATETIME_TIMEZONE, timezone=zone)])
        return aware
    if timezone.is_aware(value):
        return timezone.make_naive(value, datetime.UTC)
    return value


def _unambiguous(value: datetime.datetime) -> bool:
    """DRF's test: a ZoneInfo raises no error for a time a clock change repeats, so ask."""
    if not isinstance(value.tzinfo, datetime.tzinfo):
        return False
    exists = value.astimezone(datetime.UTC) == value
    return not (exists and value.replace(fold=not value.fold).utcoffset() != value.utcoffset())


def check(
    fields: Mapping[str, Field],
    data: Any,
    *,
    partial: bool = False,
    after: Mapping[str, Callable[[Any], Any]] | None = None,
) -> dict[str, Any]:
    """``data``'s values of ``fields``, checked; raise ``Refusal({field: [messages]})`` with every error.

    Keys that are not fields are ignored; ``after`` maps a field to a last step on its value
    (DRF's ``validate_<field>``)."""
    if not isinstance(data, Mapping):
        raise Refusal({non_field_key(): [words(NOT_AN_OBJECT, datatype=type(data).__name__)]})
    values: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for name, field in fields.items():
        given = data.get(name, NOT_GIVEN)
        if given is NOT_GIVEN:
            if partial:
                continue
            if field.required:
                errors[name] = [words(REQUIRED)]
            elif field.default is not NOT_GIVEN:
                values[name] = field.default
            continue
        try:
            value = field.run(given)
            if after and name in after:
                value = after[name](value)
        except Refusal as exc:
            errors[name] = exc.detail
        except ValidationError as exc:
            errors[name] = exc.messages
        else:
            values[name] = value
    if errors:
        raise Refusal(errors)
    return values
