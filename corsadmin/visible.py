"""Attacker-sent text (refused origins and paths, anything a client put in a header) as the
admin shows it: control and bidi characters made visible, never interpreted.

A refused path ``/\u202enimda/`` would display as ``/admin/``; here it displays as
``/\\u202enimda/`` with the escape marked (``span.corsadmin-escape``, its name on hover).
Every C0 and C1 control (category Cc), every format character (Cf: the bidi embeddings,
overrides and isolates U+202A–U+202E and U+2066–U+2069, the marks U+200E, U+200F and U+061C,
zero-width characters, the BOM...) and the line and paragraph separators (Zl, Zp) are escaped.

One place for it: ``visible()`` (HTML), ``visible_text()`` (plain text, e.g. a ``title``) and
``one_line()`` (an origin or a path cut to one line) here, for the admin's columns and the
models' ``__str__``; the same as template filters: ``{% load corsadmin_text %}``, then
``{{ value|visible }}``, ``{{ value|visible_text }}``, ``{{ value|one_line }}``.
"""

from __future__ import annotations

import unicodedata

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def _hidden(char: str) -> bool:
    return unicodedata.category(char) in HIDDEN_CATEGORIES


def _escape_of(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _name_of(char: str) -> str:
    return f"U+{ord(char):04X} {unicodedata.name(char, 'CONTROL CHARACTER')}"


def visible_text(value: object) -> str:
    """Plain text: each hidden character as ``\\uXXXX`` (for attributes, logs, plain lists)."""
    return "".join(_escape_of(char) if _hidden(char) else char for char in str(value))


def visible(value: object) -> SafeString:
    """HTML: the text escaped, each hidden character as a marked ``\\uXXXX`` with its name on hover."""
    parts = [
        format_html('<span class="corsadmin-escape" title="{}">{}</span>', _name_of(char), _escape_of(char))
        if _hidden(char)
        else escape(char)
        for char in str(value)
    ]
    return mark_safe("".join(parts))  # every part escaped above


def one_line(value: object, css_class: str = "corsadmin-origin") -> SafeString:
    """An origin (or, with ``"corsadmin-path"``, a path) on one line, cut with an ellipsis by
    CSS, the whole text on hover: ``<span class="corsadmin-origin" title="…">…</span>``, hidden
    characters made visible in both."""
    return format_html(
        '<span class="{}" title="{}">{}</span>', css_class, visible_text(value), visible(value)
    )
