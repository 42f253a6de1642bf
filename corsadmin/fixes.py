"""The fix ``check`` offers for a refusal: the steps that make every browser read the response.

Each step is ``{"action", "policy", "origin", "set", "text"}``: ``add_origin`` (list ``origin``
in ``policy``), ``change_policy`` (set the fields ``set`` of ``policy``), ``add_policy`` (a new
policy with the fields ``set``, then ``add_origin`` into it), ``change_page`` (the page's
``fetch()`` call), ``change_entry`` (a deny entry) and ``change_settings`` (Django or
``CORSADMIN`` settings). It covers credentials: a fetch with ``credentials: 'include'`` needs
the policy's ``allow_credentials``, and never ``allow_all_origins`` (browsers refuse ``*``
with credentials; corsadmin refuses the pair at write time), so a policy that allows all
origins gets a credentials policy next to it instead.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .engines import Fetch, Verdict
from .fetches import SAFELISTED_METHODS, normalise_method, unsafe_headers
from .hosts import host_matches
from .models import Policy
from .origins import canonical_origin
from .protected import is_protected
from .refresh import holder


def _step(
    action: str,
    text: str,
    policy: str | None = None,
    origin: str | None = None,
    set: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {"action": action, "policy": policy, "origin": origin, "set": set, "text": text}


def _covering_policy(path: str, host: str | None) -> Policy | None:
    """The enforcing, enabled policy an entry for this path and host belongs in (highest first)."""
    names = [
        p.name
        for p in holder.get().policies
        if not p.report and p.match_path(path) and host_matches(p.hosts, host)
    ]
    if not names:
        return None
    return Policy.objects.filter(name=names[0]).first()


def _needs(policy: Policy, fetch: Fetch) -> dict[str, Any]:
    """The fields of ``policy`` that must change for this fetch (credentials, method, headers)."""
    include = fetch.credentials == "include"
    change: dict[str, Any] = {}
    if include and not policy.allow_credentials:
        change["allow_credentials"] = True
    method = normalise_method(fetch.method).upper()
    methods = list(policy.allow_methods)
    if method not in SAFELISTED_METHODS and method not in methods and (include or "*" not in methods):
        change["allow_methods"] = [*methods, method]
    headers = list(policy.allow_headers)
    wildcard = "*" in headers and not include
    missing = [
        name
        for name in unsafe_headers(fetch)
        if name not in headers and not (wildcard and name != "authorization")
    ]
    if missing:
        change["allow_headers"] = [*headers, *missing]
    return change


def _describe(change: dict[str, Any]) -> str:
    return "; ".join(
        f"{name} = {'true' if value is True else ', '.join(value) if isinstance(value, list) else value}"
        for name, value in change.items()
    )


def offer(
    result: dict[str, Any], fetch: Fetch, per_engine: dict[str, Verdict], refused_host: bool
) -> list[dict[str, Any]]:
    """The steps that make this fetch work in every engine (empty: none corsadmin can name)."""
    steps: list[dict[str, Any]] = []
    host = result["host"]
    if refused_host:
        steps.append(
            _step(
                "change_settings",
                _("Add %(host)s to ALLOWED_HOSTS (Django answers 400 to any other host).")
                % {"host": repr(host)},
            )
        )
    if fetch.method != normalise_method(fetch.method).upper():
        upper = fetch.method.upper()
        steps.append(
            _step(
                "change_page",
                _(
                    "Write method: '%(upper)s' in the page's fetch(): it sends %(method)s as written and "
                    "browsers compare methods byte for byte."
                )
                % {"upper": upper, "method": repr(fetch.method)},
            )
        )
    if result.get("effect") == "deny":
        steps.append(
            _step(
                "change_entry",
                _(
                    "The exception (deny entry) %(entry)s in policy %(policy)s refuses the origin: delete or "
                    "disable it if the origin should be allowed."
                )
                % {"entry": repr(result["matched"]), "policy": repr(result["policy"])},
                policy=result["policy"],
            )
        )
        return steps
    if fetch.credentials == "include" and is_protected(result["path"]):
        steps.append(
            _step(
                "change_settings",
                _(
                    "%(path)s is the admin or corsadmin's API: no other site may read it with the user's "
                    "cookies unless CORSADMIN['ALLOW_CREDENTIALS_ON_ADMIN'] = True."
                )
                % {"path": repr(result["path"])},
            )
        )
        return steps
    deciding = result["policy"] if result["matched"] else None
    policy = Policy.objects.filter(name=deciding).first() if deciding else None
    origin = None
    if policy is None:
        if deciding:  # the CORS_* settings' policy: no row to change
            steps.append(_settings_policy(deciding))
            return steps
        try:
            origin = canonical_origin(fetch.origin)
        except ValidationError:
            return steps
        policy = _covering_policy(result["path"], None if refused_host else host)
        if policy is None:
            steps.append(
                _step(
                    "add_policy",
                    _(
                        "No policy covers %(path)s: add one whose url_regex matches it, and list "
                        "%(origin)s in it."
                    )
                    % {"path": repr(result["path"]), "origin": origin},
                    origin=origin,
                )
            )
            return steps
    change = _needs(policy, fetch)
    if change.get("allow_credentials") and policy.allow_all_origins:
        return [*steps, *_credentials_policy(policy, fetch, change)]
    if origin is not None:
        steps.append(
            _step(
                "add_origin",
                _("Allow %(origin)s in policy %(policy)s.") % {"origin": origin, "policy": repr(policy.name)},
                policy=policy.name,
                origin=origin,
            )
        )
    if change:
        steps.append(
            _step(
                "change_policy",
                _("Change policy %(policy)s: %(change)s.")
                % {"policy": repr(policy.name), "change": _describe(change)},
                policy=policy.name,
                set=change,
            )
        )
    return steps


def _settings_policy(name: str) -> dict[str, Any]:
    return _step(
        "change_settings",
        _(
            "Policy %(policy)s comes from the CORS_* settings: change them there (e.g. "
            "CORS_ALLOW_CREDENTIALS, CORS_ALLOW_METHODS, CORS_ALLOW_HEADERS), or copy them into the "
            "database with 'manage.py cors import-settings' and change the policy."
        )
        % {"policy": repr(name)},
        policy=name,
    )


def _credentials_policy(policy: Policy, fetch: Fetch, change: dict[str, Any]) -> list[dict[str, Any]]:
    """A policy allowing all origins cannot allow credentials: a listed one next to it, tried first."""
    origin = canonical_origin(fetch.origin)
    name = f"{policy.name[:52]}-credentials"
    fields = {
        "name": name,
        "url_regex": policy.url_regex,
        "hosts": list(policy.hosts),
        "priority": policy.priority + 1,
        "allow_credentials": True,
        "allow_methods": change.get("allow_methods", list(policy.allow_methods)),
        "allow_headers": change.get("allow_headers", list(policy.allow_headers)),
        "expose_headers": list(policy.expose_headers),
        "max_age": policy.max_age,
    }
    return [
        _step(
            "add_policy",
            _(
                "Policy %(policy)s allows all origins (Access-Control-Allow-Origin: *), which browsers never "
                "accept with credentials: add policy %(name)s for the same paths, tried first, with "
                "allow_credentials = true."
            )
            % {"policy": repr(policy.name), "name": repr(name)},
            policy=name,
            set=fields,
        ),
        _step(
            "add_origin",
            _("Allow %(origin)s in policy %(policy)s.") % {"origin": origin, "policy": repr(name)},
            policy=name,
            origin=origin,
        ),
    ]
