"""One flush thread per process serves every job, each at its own interval."""

from __future__ import annotations

import logging
import threading

import pytest

from corsadmin.flusher import Flusher, Job

# Each test's thread lives on (a daemon): at the test's end its jobs' intervals become an hour.
_quiet = {"on": False}


@pytest.fixture(autouse=True)
def quiet_afterwards():
    _quiet["on"] = False
    yield
    _quiet["on"] = True


def job(name: str, interval: float, flush, pending=lambda: True) -> Job:
    return Job(
        name,
        flush,
        interval=lambda: 3600.0 if _quiet["on"] else interval,
        pending=pending,
        what=name,
        event=f"{name}_failed",
    )


def test_one_thread_runs_every_job_at_its_own_interval():
    runs: dict[str, list[str]] = {"fast": [], "slow": []}
    enough = threading.Event()

    def flusher_of(name: str):
        def flush() -> None:
            runs[name].append(threading.current_thread().name)
            if len(runs["fast"]) >= 6 and runs["slow"]:
                enough.set()

        return flush

    flusher = Flusher("test-flusher")
    fast = flusher.register(job("fast", 0.02, flusher_of("fast")))
    slow = flusher.register(job("slow", 0.1, flusher_of("slow")))
    flusher.ensure_started(fast)
    flusher.ensure_started(slow)
    assert enough.wait(10)
    threads = {name for names in runs.values() for name in names}
    assert (threads, len(runs["fast"]) > len(runs["slow"])) == ({"test-flusher"}, True)


def test_a_job_with_nothing_pending_is_not_flushed_and_a_failure_is_logged_once(caplog):
    calls: list[str] = []
    failed = threading.Event()

    def broken() -> None:
        calls.append("broken")
        if len(calls) >= 3:
            failed.set()
        raise OSError("database is down")

    flusher = Flusher("test-flusher-2")
    idle = flusher.register(job("idle", 0.01, lambda: calls.append("idle"), pending=lambda: False))
    failing = flusher.register(job("failing", 0.01, broken))
    with caplog.at_level(logging.ERROR, logger="corsadmin"):
        flusher.ensure_started(idle)
        flusher.ensure_started(failing)
        assert failed.wait(10)
    logged = [r for r in caplog.records if getattr(r, "event", None) == "failing_failed"]
    assert ("idle" in calls, len(logged)) == (False, 1)


def test_the_exit_flush_writes_only_the_jobs_started_in_this_process(monkeypatch):
    from corsadmin import flusher as module

    # No database here: what the exit flush does to this thread's connection is not the point.
    monkeypatch.setattr(module, "close_old_connections", lambda: None)
    monkeypatch.setattr(module, "connection", type("Closed", (), {"close": lambda self: None})())
    written: list[str] = []
    flusher = Flusher("test-flusher-3")
    started = flusher.register(job("started", 3600, lambda: written.append("started")))
    flusher.register(job("manual", 3600, lambda: written.append("manual")))
    flusher.ensure_started(started)
    flusher.flush_at_exit()
    assert written == ["started"]


def test_a_wake_flushes_at_once_and_a_wake_during_the_flush_once_more():
    flushed: list[int] = []
    twice = threading.Event()
    flusher = Flusher("test-flusher-4")

    def flush() -> None:
        flushed.append(len(flushed))
        if len(flushed) == 1:
            flusher.wake(woken)  # something changed while it was being written
        else:
            twice.set()

    woken = flusher.register(job("woken", 3600, flush))
    flusher.ensure_started(woken)
    flusher.wake(woken)
    assert twice.wait(10)
    assert flushed == [0, 1]


def test_at_exit_a_job_with_an_exit_of_its_own_runs_it_in_place_of_a_flush(monkeypatch):
    from corsadmin import flusher as module

    monkeypatch.setattr(module, "close_old_connections", lambda: None)
    monkeypatch.setattr(module, "connection", type("Closed", (), {"close": lambda self: None})())
    calls: list[str] = []
    flusher = Flusher("test-flusher-5")
    own = job("own", 3600, lambda: calls.append("flushed"))
    own.exit = lambda: calls.append("exit")
    flusher.register(own)  # never started here (manual mode): its exit runs all the same
    flusher.flush_at_exit()
    assert calls == ["exit"]


def test_the_process_hooks_reach_every_flusher_and_the_heartbeat_is_a_job_apart_from_the_counts():
    from corsadmin import flusher as module
    from corsadmin import heartbeat, metrics, telemetry, usage

    counts = [usage.job, telemetry.recorder.job, metrics.job]
    assert (module.flusher, module.heartbeats) == module.FLUSHERS
    assert all(job in module.flusher.jobs for job in counts)
    assert heartbeat.reporter.job in module.heartbeats.jobs
    assert heartbeat.reporter.job not in module.flusher.jobs
    assert heartbeat.WRITER == module.heartbeats.name == "corsadmin-heartbeat"
