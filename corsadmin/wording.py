"""An allowed-origin entry's status in words: the one wording the admin, the API and the CLI
show (``deny: active``, ``expires soon``...).

``AllowedOrigin.status()`` says where the entry is in its life (active, disabled, expired,
expires soon); a deny entry (an exception) says so first, as ``deny: <status>``. The admin
shows it in the operator's language; the API (``status``) and the CLI (``cors list``) in
English, the same words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext, gettext_lazy, override

if TYPE_CHECKING:
    from .models import AllowedOrigin

STATUS_WORDS = {
    "active": gettext_lazy("active"),
    "disabled": gettext_lazy("disabled"),
    "expired": gettext_lazy("expired"),
    "expires soon": gettext_lazy("expires soon"),
}


def entry_status(entry: AllowedOrigin, translate: bool = True) -> str:
    """``active``, ``disabled``, ``expired`` or ``expires soon``; ``deny: <that>`` for a deny entry.
    In the active language, or in English (``translate=False``: the API's and the CLI's)."""
    if not translate:
        with override(None):
            return entry_status(entry)
    state = entry.status()
    words = str(STATUS_WORDS.get(state, state))
    if entry.is_deny:
        return gettext("deny: %(status)s") % {"status": words}
    return words
