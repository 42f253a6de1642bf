"""corsadmin's models, by lifetime: the configuration, the change log it writes, and the counts.

``config`` holds what users edit (``Policy``, ``AllowedOrigin``), ``validation`` what they
may hold, ``changelog`` the generation stamping, tombstones and process heartbeats that
carry every change to every process, ``counts`` the refused and usage tables, ``jobs``
the API's background imports, ``leases`` the origin leases' tokens, and ``snapshots`` the
snapshot files kept in the database. Every name is importable from ``corsadmin.models``.
"""

from __future__ import annotations

from .changelog import (
    NOTIFY_CHANNEL,
    TOMBSTONE_BATCH,
    ConfigManager,
    ConfigModel,
    ConfigQuerySet,
    Generation,
    ProcessHeartbeat,
    Tombstone,
    next_generation,
    record_deletions,
    request_reload,
)
from .config import (
    DEFAULT_POLICY,
    EXPIRES_SOON,
    AllowedOrigin,
    Policy,
    default_headers,
    default_methods,
    default_policy,
    find_default_policy,
)
from .counts import OriginHour, OriginTraffic, OriginUsage, PolicyHour, RefusedOrigin
from .jobs import ImportJob
from .leases import ACTOR_PREFIX, KEY_PREFIX, LeaseToken, key_digest
from .snapshots import StoredSnapshot
from .validation import (
    DENIED_IN_POLICY,
    DENY_CSRF_TRUSTED,
    EVERY_ORIGIN_WITH_CREDENTIALS,
    NO_SCOPE,
    NULL_CSRF_TRUSTED,
    NULL_WITH_CREDENTIALS,
    PAST_EXPIRY,
    PLAIN_HTTP_WITH_CREDENTIALS,
    SCOPES,
    SCOPES_CONTRADICTED,
    TOKEN_LIST_MESSAGES,
    TOKEN_PATTERN,
    clean_token_list,
    expiry_in_past,
    shared_hosting_wildcards,
    validate_url_regex,
)

__all__ = [
    "ACTOR_PREFIX",
    "DEFAULT_POLICY",
    "DENIED_IN_POLICY",
    "DENY_CSRF_TRUSTED",
    "EVERY_ORIGIN_WITH_CREDENTIALS",
    "EXPIRES_SOON",
    "KEY_PREFIX",
    "NOTIFY_CHANNEL",
    "NO_SCOPE",
    "NULL_CSRF_TRUSTED",
    "NULL_WITH_CREDENTIALS",
    "PAST_EXPIRY",
    "PLAIN_HTTP_WITH_CREDENTIALS",
    "SCOPES",
    "SCOPES_CONTRADICTED",
    "TOKEN_LIST_MESSAGES",
    "TOKEN_PATTERN",
    "TOMBSTONE_BATCH",
    "AllowedOrigin",
    "ConfigManager",
    "ConfigModel",
    "ConfigQuerySet",
    "Generation",
    "ImportJob",
    "LeaseToken",
    "OriginHour",
    "OriginTraffic",
    "OriginUsage",
    "Policy",
    "PolicyHour",
    "ProcessHeartbeat",
    "RefusedOrigin",
    "StoredSnapshot",
    "Tombstone",
    "clean_token_list",
    "default_headers",
    "default_methods",
    "default_policy",
    "expiry_in_past",
    "find_default_policy",
    "key_digest",
    "next_generation",
    "record_deletions",
    "request_reload",
    "shared_hosting_wildcards",
    "validate_url_regex",
]
