"""Query parameters: the spellings of yes and no, read alike by every view and filter."""

from __future__ import annotations

TRUE = frozenset({"true", "1", "yes", "on"})
FALSE = frozenset({"false", "0", "no", "off"})


def flag(text: str) -> bool | None:
    """True or False for a spelling of yes or no (any case); None for anything else."""
    value = text.lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    return None
