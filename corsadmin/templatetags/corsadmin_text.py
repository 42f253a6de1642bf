"""Attacker-sent text in templates: ``{% load corsadmin_text %}``, then ``{{ value|visible }}``,
``{{ value|visible_text }}`` (an attribute) or ``{{ value|one_line }}`` (``corsadmin.visible``)."""

from __future__ import annotations

from django import template

from ..visible import one_line, visible, visible_text

register = template.Library()
register.filter("visible", visible, is_safe=True)
register.filter("visible_text", visible_text)
register.filter("one_line", one_line, is_safe=True)
