"""JSON bodies: too deep or too large is a clear 4xx, never a 500 or a bare HTML 400."""

from __future__ import annotations

import codecs
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import APIException, ParseError, UnsupportedMediaType
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.utils import json

from .. import conf
from ..fields import too_deep

TOO_DEEP = gettext_lazy("The JSON document is nested too deeply to read; nothing was changed.")


def loads(raw: bytes | str) -> Any:
    """``json.loads``, with a document nested too deeply as a ``ParseError``."""
    parse_constant = json.strict_constant if api_settings.STRICT_JSON else None
    try:
        value = json.loads(raw, parse_constant=parse_constant)  # type: ignore[arg-type]  # bytes too
    except RecursionError:
        raise ParseError(TOO_DEEP) from None
    except ValueError as exc:
        raise ParseError(_("JSON parse error - %(error)s") % {"error": exc}) from None
    if too_deep(value):
        raise ParseError(TOO_DEEP)
    return value


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, answering 400 (not 500) for a document nested too deeply."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            text = codecs.getreader(encoding)(stream).read()
        except ValueError as exc:  # not in that encoding
            raise ParseError(_("JSON parse error - %(error)s") % {"error": exc}) from None
        return loads(text)


class DocumentTooLarge(APIException):
    status_code = 413
    default_code = "document_too_large"


def read_document(request: Request) -> Any:
    """The JSON body of an import, up to ``CORSADMIN["IMPORT_MAX_BYTES"]`` (not Django's
    ``DATA_UPLOAD_MAX_MEMORY_SIZE``, made for forms: 2.5 MB is a 12,000-origin export)."""
    limit = int(conf.get("IMPORT_MAX_BYTES"))
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    django_request = request._request
    if length > limit:
        raw = b""
    elif hasattr(django_request, "_body"):  # already read (by a middleware)
        raw = django_request._body
    else:
        raw = django_request.read(limit + 1)
    if length > limit or len(raw) > limit:
        size = (_("%(count)s bytes") if length > limit else _("over %(count)s bytes")) % {
            "count": f"{length:,}" if length > limit else f"{limit:,}"
        }
        raise DocumentTooLarge(
            _(
                "The document is %(size)s; imports are limited to %(limit)s bytes. Raise "
                "CORSADMIN['IMPORT_MAX_BYTES'] to import it. Nothing was changed."
            )
            % {"size": size, "limit": f"{limit:,}"}
        )
    if not raw:
        return {}  # refused by the import with "version: This field is required." and the like
    if request.content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(request.content_type)
    return loads(raw)
