"""The allow-lists and request origins of the benchmark, deterministic for every N.

The allowed origin is the one matched by the entry in the middle of the list (for
"mixed" lists: a subdomain wildcard, so the exact lookup misses first). The
refused origin matches nothing.
"""

REFUSED = "https://evil.example.net"


def exact(n: int) -> list[str]:
    return [f"https://app{i}.example.com" for i in range(n)]


def regexes(n: int) -> list[str]:
    return [rf"^https://app{i}\.example\.com$" for i in range(n)]


def _mixed(i: int) -> str:
    if i % 2 == 0:
        return f"https://app{i}.example.com"
    if i % 50 == 1:
        return f"http://dev{i}.example.com:*"
    return f"https://*.t{i}.example.com"


def corsadmin_entries(kind: str, n: int) -> list[str]:
    if kind == "exact":
        return exact(n)
    if kind == "wildcard":
        return [f"https://*.t{i}.example.com" for i in range(n)]
    if kind == "mixed":
        return [_mixed(i) for i in range(n)]
    raise ValueError(kind)


def _mixed_middle(n: int) -> int:
    m = (n // 2) | 1
    if m % 50 == 1:
        m += 2
    return m


def allowed(site: dict) -> str:
    """The origin the site's list allows (for bare/noop: the same as the exact lists)."""
    n = max(int(site.get("n") or 1), 1)
    lst = site.get("list") or "exact"
    if site["kind"] == "corsadmin" and lst == "wildcard":
        return f"https://www.t{n // 2}.example.com"
    if site["kind"] == "corsadmin" and lst == "mixed":
        m = _mixed_middle(n)
        assert _mixed(m).startswith("https://*."), m
        return f"https://www.t{m}.example.com"
    return f"https://app{n // 2}.example.com"
