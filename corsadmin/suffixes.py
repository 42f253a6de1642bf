"""Public suffixes: where a wildcard would reach sites of other owners.

From the Public Suffix List (the ``publicsuffixlist`` package, ICANN and private rules),
plus the shared hosting it does not name. ``origins.parse_entry`` refuses a wildcard on
such a base; the snapshot skips a stored one.
"""

from __future__ import annotations

from functools import lru_cache

from publicsuffixlist import PublicSuffixList


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
