"""Check that the snapshot's quick parsing of stored entries answers as parse_entry.

``entry_key(text)`` (with its quicker test for plain exact origins) agrees with parse_entry too.

_parse_stored(text) (the snapshot's ``_split_stored``, else ``parse_entry``) ==
origins.parse_entry(text) (or both refuse), and a
CompiledPolicy built from the same rows holds exactly the entries a build through
parse_entry would (invalid rows skipped).

    python -m bench.check_parse_stored [count]

Random strings built from the pieces that matter (schemes, labels, hyphens, xn--,
digits, IPs, ports, wildcards, public suffixes, case, length) plus the bench's lists.
"""

from __future__ import annotations

import os
import random
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django


def main() -> None:
    django.setup()
    from django.core.exceptions import ValidationError

    from bench import origins
    from corsadmin.entries import _split_stored, entry_key
    from corsadmin.origins import OriginEntry, parse_entry

    def _parse_stored(text: str) -> OriginEntry:
        """``parse_entry(text)``, ten times quicker for text that is already canonical."""
        quick = _split_stored(text)
        if quick is None:
            return parse_entry(text)
        scheme, host, port, wildcard = quick
        return OriginEntry(text=text, scheme=scheme, host=host, port=port, wildcard=wildcard)

    def outcome(fn, text):  # type: ignore[no-untyped-def]
        try:
            return fn(text)
        except ValidationError as exc:
            return ("refused", exc.messages)

    rnd = random.Random(int(os.environ.get("SEED", "6")))
    schemes = ["http", "https", "ws", "wss", "file", "a.b+c-d", "HTTP", "git", "x--y", "h"]
    labels = [
        "example",
        "com",
        "co",
        "uk",
        "github",
        "io",
        "app",
        "a",
        "z9",
        "xn--bcher-kva",
        "xn--",
        "ab--cd",
        "-a",
        "a-",
        "a-b",
        "1",
        "255",
        "256",
        "0x7f",
        "t1",
        "EXAMPLE",
        "b\u00fccher",
        "a" * 63,
        "a" * 64,
        "localhost",
        "*",
        "",
        "com.",
        "ck",
        "www",
        "pages",
        "s3",
        "amazonaws",
    ]
    ports = ["", ":80", ":443", ":8080", ":0", ":65535", ":65536", ":080", ":*", ":", ":99999", ":1"]
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    texts = origins.corsadmin_entries("mixed", 2000) + origins.corsadmin_entries("wildcard", 200)
    texts += [
        "null",
        "NULL",
        "https://*.com",
        "https://*.co.uk",
        "https://*.github.io",
        "https://*.example.com",
        "http://localhost:*",
        "https://[::1]:8443",
        "http://127.0.0.1:8000",
        "https://a.b.c.d.e.f.example.com",
    ]
    for _ in range(count):
        host = ".".join(rnd.choice(labels) for _ in range(rnd.randint(1, 4)))
        if rnd.random() < 0.2:
            host = "*." + host
        if rnd.random() < 0.05:
            host = ".".join(["a" * 60] * 5)
        texts.append(f"{rnd.choice(schemes)}://{host}{rnd.choice(ports)}")
    bad = 0
    for text in texts:
        expected, got = outcome(parse_entry, text), outcome(_parse_stored, text)
        if expected != got:
            bad += 1
            print(f"DIFFERENT for {text!r}: parse_entry={expected!r} _parse_stored={got!r}")
        key = (
            None
            if isinstance(expected, tuple)
            else (
                ("exact", expected.text, expected.text)
                if expected.is_exact
                else (
                    "pattern",
                    (expected.scheme, expected.host, expected.port, expected.wildcard),
                    expected.text,
                )
            )
        )
        if entry_key(text) != key:
            bad += 1
            print(f"DIFFERENT for {text!r}: entry_key={entry_key(text)!r}, from parse_entry {key!r}")
    from corsadmin.snapshot import CompiledPolicy

    rows = [(i, text, float(i)) for i, text in enumerate(texts)]
    exact, patterns = {}, {}
    for entry_id, text, expires in rows:
        try:
            entry = parse_entry(text)
        except ValidationError:
            continue
        if entry.is_exact:
            exact[entry.text] = (entry_id, entry.text, expires)
        else:
            patterns[(entry.scheme, entry.host, entry.port, entry.wildcard)] = (entry_id, entry.text, expires)
    import logging

    logging.getLogger("corsadmin").setLevel(logging.ERROR)  # the invalid rows are expected here
    policy = CompiledPolicy(name="check", entries=rows)
    built = {text: (value[0], text, value[1]) for text, value in policy.table.exact.items()}
    if built != exact or policy.table.patterns != patterns:
        bad += 1
        print("DIFFERENT: CompiledPolicy's entries differ from a build through parse_entry")
    print(f"{len(texts)} entries checked, {bad} different")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
