"""The cost of one decision at N origins, the tables as a full load builds them (dictionaries)
against the same tables mapped from a snapshot file (``flat_table``), in one process, taking turns.

    python -m bench.lookup [--rounds 5]

On ``$DATABASE_URL``'s origins (``bench.load fill``). The memo of decisions is bypassed
(``Snapshot._decide``): each call looks the origin up. Cases: an allowed exact origin, a refused
one (``https://evil.example.net``), an allowed wildcard (``https://a.w7.example.com``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import timeit

from bench.load import setup

CASES = {
    "allowed exact": "https://h123457.example.com",
    "refused": "https://evil.example.net",
    "allowed wildcard": "https://a.w7.example.com",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import os

    os.environ["CORSADMIN_VAR_DIR"] = tempfile.mkdtemp()
    setup()
    from corsadmin.loader import SnapshotBuilder

    builder = SnapshotBuilder()
    loaded = builder.load()
    mapped = builder.save()
    assert mapped is not None, "no snapshot file (SNAPSHOT_DIR)"
    times: dict[str, dict[str, list[float]]] = {case: {"dict": [], "flat": []} for case in CASES}
    for k in range(args.rounds):
        for case, origin in CASES.items():
            pairs = (("dict", loaded), ("flat", mapped))
            for name, snapshot in pairs if k % 2 == 0 else pairs[::-1]:
                expected = case.startswith("allowed")
                assert snapshot._decide(origin, "/x", "GET", False, False)[0].allowed is expected
                number = 20000
                seconds = timeit.timeit(
                    lambda s=snapshot, o=origin: s._decide(o, "/x", "GET", False, False), number=number
                )
                times[case][name].append(seconds / number * 1e6)
    for case, by_name in times.items():
        ratios = [f / d for f, d in zip(by_name["flat"], by_name["dict"], strict=True)]
        print(
            f"{case}: dict {statistics.median(by_name['dict']):.2f} µs, "
            f"flat {statistics.median(by_name['flat']):.2f} µs, "
            f"flat/dict median {statistics.median(ratios):.2f} "
            f"(range {min(ratios):.2f}-{max(ratios):.2f})"
        )


if __name__ == "__main__":
    main()
