"""Shared hosting platforms the Public Suffix List does not name (as of its 2026-10 release).

On each of these, the hosts below the platform's domain belong to many different people:
a stranger can publish a page at ``anything.glitch.me`` in a minute. A wildcard entry on
one of them (``https://*.glitch.me``, or on a domain below one: ``https://*.app.github.dev``)
therefore lets any stranger's page read the responses. ``corsadmin.origins`` refuses such
a wildcard on a policy that allows credentials and warns about it elsewhere.

Platforms that the Public Suffix List names (``github.io``, ``vercel.app``, ``netlify.app``,
``pages.dev``, ``herokuapp.com``, ``web.app``, ``csb.app``, ``ngrok-free.app``...,
PRIVATE section) need no entry here: a wildcard on them is refused everywhere, as on
any public suffix.

Source: the platforms' own documentation of the host names they give to users' projects,
previews, tunnels and sandboxes, checked against https://publicsuffix.org/list/
(``public_suffix_list.dat`` shipped by the ``publicsuffixlist`` package). Keep it sorted; add a
platform when its users' projects get hosts below one shared domain and the PSL does not
list it (once the PSL lists it, the entry here is harmless and may be removed).
"""

from __future__ import annotations

SHARED_HOSTING_PLATFORMS = frozenset(
    {
        "000webhostapp.com",
        "cdpn.io",
        "codepen.io",
        "codesandbox.io",
        "devtunnels.ms",
        "epizy.com",
        "github.dev",
        "gitpod.io",
        "glitch.me",
        "gradio.app",
        "gradio.live",
        "infinityfreeapp.com",
        "jsbin.com",
        "jsfiddle.net",
        "jshell.net",
        "lhr.life",
        "loca.lt",
        "localhost.run",
        "localtunnel.me",
        "loclx.io",
        "neocities.org",
        "pagekite.me",
        "pinggy.link",
        "plnkr.co",
        "runkit.io",
        "serveo.net",
        "sourceforge.io",
        "stackblitz.io",
        "tumblr.com",
        "webcontainer-api.io",
        "webcontainer.io",
        "weebly.com",
    }
)


def shared_hosting_platform(base: str) -> str | None:
    """The platform whose users' hosts a wildcard on ``base`` reaches: ``base`` itself or a
    domain above it in the list (``app.github.dev`` -> ``github.dev``); None otherwise."""
    labels = base.split(".")
    for start in range(len(labels) - 1):
        candidate = ".".join(labels[start:])
        if candidate in SHARED_HOSTING_PLATFORMS:
            return candidate
    return None
