"""``manage.py cors probe URL --origin O [--method M] [--header H ...] [--credentials [MODE]] [--json]``:
what ``POST /api/cors/probe/`` answers.

Exit status: 0 when every engine lets the page read the response and nothing disagrees with
corsadmin's decision, 1 otherwise (an engine refuses, a disagreement, no answer), 2 bad input
(nothing sent).
"""

from __future__ import annotations

import json
from typing import Any

from .. import edge, probe
from ..errors import one_line
from ..fields import Refusal
from .cli import BAD_INPUT, REFUSED, bad_input

FAILED = REFUSED  # 1


def add_arguments(sub: Any) -> None:
    p = sub.add_parser(
        "probe",
        help="send a browser's preflight and request to URL through the edge, and compare "
        "(exit 0 all allowed and no disagreement, 1 otherwise)",
        description="Send the real preflight (when one is needed) and the real request to URL, as a "
        "browser would from ORIGIN, through whatever CDN, gateway or proxy answers there; show the "
        "CORS headers of both, each browser engine's verdict, corsadmin's own decision when this site "
        "serves the URL, and each disagreement. URL's host must be in CORSADMIN['PROBE_HOSTS'] (by "
        "default ALLOWED_HOSTS, without '*'). No cookie is sent. Exit 0 when every engine allows and "
        "nothing disagrees, 1 otherwise, 2 bad input.",
    )
    p.add_argument("url", help="e.g. https://api.example.com/items/")
    p.add_argument("--origin", required=True, help="the page's origin, e.g. https://app.example.com")
    p.add_argument("--method", default="GET", help="as the page writes it (default GET)")
    p.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="H",
        help="a request header the page sets: 'Name' or 'Name: value' (repeat for more)",
    )
    p.add_argument(
        "--credentials",
        nargs="?",
        const="include",
        default="same-origin",
        metavar="MODE",
        help="the fetch's credentials mode: include (the default when the flag is given alone), "
        "same-origin (the default) or omit",
    )
    p.add_argument("--json", action="store_true", help="print what /api/cors/probe/ answers")


def run(command: Any, options: dict[str, Any]) -> str | None:
    """Probe and print; returns why the exit status is ``FAILED``, or None when all is well."""
    try:
        asked = probe.question(
            options["url"], options["origin"], options["method"], options["header"], options["credentials"]
        )
    except Refusal as exc:
        raise bad_input(one_line(exc.detail)) from None
    result = edge.run(asked)
    if options.get("json"):
        command.stdout.write(json.dumps(result, indent=2))
    else:
        print_result(command, result)
    return failure(result)


def failure(result: dict[str, Any]) -> str | None:
    refusing = [name for name, verdict in result["engines"].items() if not verdict["allowed"]]
    kinds = [item["kind"] for item in result["disagreements"]]
    reasons = []
    if refusing:
        reasons.append("refused by " + ", ".join(refusing))
    if kinds:
        reasons.append("disagreements: " + ", ".join(dict.fromkeys(kinds)))
    return "; ".join(reasons) or None


def print_result(command: Any, result: dict[str, Any]) -> None:
    write = command.stdout.write
    write(f"url:       {result['url']}")
    write(f"origin:    {result['origin']}")
    headers = f", headers: {', '.join(result['headers'])}" if result["headers"] else ""
    write(f"method:    {result['method']} (credentials: {result['credentials']}{headers})")
    for which in ("preflight", "response"):
        exchange = result[which]
        if exchange is None:
            write(
                f"{which + ':':<11}"
                + ("not needed" if which == "preflight" else "not sent (the preflight failed)")
            )
            continue
        status = "no answer" if exchange["status"] is None else str(exchange["status"])
        hops = len(exchange["redirects"])
        via = f" after {hops} redirect(s), from {exchange['url']}" if hops else ""
        error = f" ({exchange['error']['code']}: {exchange['error']['detail']})" if exchange["error"] else ""
        write(f"{which + ':':<11}{exchange['method']} {status}{via}{error}")
        for name, value in exchange["headers"]:
            write(f"  {name}: {value}")
    write("engines:")
    for name, verdict in result["engines"].items():
        write(f"  {name:<9}" + ("allowed" if verdict["allowed"] else f"refused: {verdict['message']}"))
    expected = result["expected"]
    if expected is None:
        write("corsadmin: (this site does not serve the URL's host)")
    else:
        write(f"corsadmin: {'allowed' if expected['allowed'] else 'refused'}: {expected['reason']}")
    write("disagreements:" + ("" if result["disagreements"] else " none"))
    for item in result["disagreements"]:
        write(f"  {item['kind']}: {item['detail']}")


__all__ = ["BAD_INPUT", "FAILED", "add_arguments", "failure", "run"]
