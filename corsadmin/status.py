"""Is every live server process serving the database's allow-list? (``/api/cors/status/``,
``manage.py cors status``, read from the processes' heartbeats: ``corsadmin.heartbeat``.)

A process is stale when:

- it has no confirmed snapshot, or the database last confirmed it more than ``max_age``
  seconds ago (``default_max_age()``: a healthy refresher confirms at least every
  ``DATABASE_CHECK_EVERY`` intervals; ``MAX_STALENESS`` when it is set and smaller);
- its generation is behind the database's and has been for longer than ``grace()``
  (``REFRESH_INTERVAL + SERVICE_TIMEOUT``, what one refresh may take): the time
  since another process began serving a newer generation. A process is behind for a
  moment after every change; that alone is not stale;
- its generation is ahead of the database's (the database was replaced under it).
"""

from __future__ import annotations

import time
from typing import Any

from django.db import router

from . import conf
from .heartbeat import Beat, store
from .loader import database_generation
from .models import Generation


def default_max_age() -> float:
    interval = max(conf.refresh_interval(), 1.0)
    limit = (int(conf.get("DATABASE_CHECK_EVERY")) + 1) * interval + 2 * float(conf.get("SERVICE_TIMEOUT"))
    staleness = conf.get("MAX_STALENESS") if "MAX_STALENESS" in conf.DEFAULTS else None
    return min(limit, float(staleness)) if staleness else limit


def grace() -> float:
    return conf.refresh_interval() + float(conf.get("SERVICE_TIMEOUT"))


def report(max_age: float | None = None) -> dict[str, Any]:
    """``{"generation": <the database's>, "processes": [{"id", "generation", "age_seconds",
    "last_error", "stale"}]}``, processes by id. Raises when the store or the database
    cannot be read."""
    beats = store().read()  # before the database's generation: a heartbeat is never ahead of it by a race
    generation = database_generation(router.db_for_read(Generation))
    limit = default_max_age() if max_age is None else max_age
    now = time.time()
    processes = []
    for beat in sorted(beats, key=lambda b: b.process):
        age = None if beat.confirmed_at is None else max(0.0, now - beat.confirmed_at)
        processes.append(
            {
                "id": beat.process,
                "generation": beat.generation,
                "age_seconds": None if age is None else round(age, 1),
                "last_error": beat.last_error,
                "stale": _stale(beat, age, generation, beats, limit, now),
            }
        )
    return {"generation": generation, "processes": processes}


def _stale(
    beat: Beat, age: float | None, generation: int, beats: list[Beat], limit: float, now: float
) -> bool:
    if age is None or beat.generation is None or age > limit or beat.generation > generation:
        return True
    if beat.generation == generation:
        return False
    # Behind: since when, at least? Since another process began serving a newer generation.
    newer = [b.since for b in beats if b.since is not None and (b.generation or 0) > beat.generation]
    return bool(newer) and now - min(newer) > grace()


def summary(result: dict[str, Any]) -> tuple[int, int]:
    """(processes, of them stale)."""
    processes = result["processes"]
    return len(processes), sum(1 for p in processes if p["stale"])
