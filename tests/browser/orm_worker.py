"""A long-lived process that runs ORM code for the browser tests: one JSON line in, one out.

The site's own settings and database, but a process separate from gunicorn's workers, like
``manage.py shell -c`` — without paying Django's start-up for every change.
"""

import contextlib
import io
import json
import sys
import traceback


def main() -> None:
    import django

    django.setup()
    from django.db import connections

    namespace: dict = {}
    exec("from corsadmin.models import AllowedOrigin, Policy", namespace)
    protocol = sys.stdout
    sys.stdout = sys.stderr  # only replies on the protocol stream
    protocol.write(json.dumps({"ok": True, "output": "ready"}) + "\n")
    protocol.flush()
    for line in sys.stdin:
        code = json.loads(line)["code"]
        output = io.StringIO()
        try:
            with contextlib.redirect_stdout(output):
                exec(code, namespace)
            reply = {"ok": True, "output": output.getvalue()}
        except BaseException:
            reply = {"ok": False, "output": output.getvalue() + traceback.format_exc()}
        finally:
            connections.close_all()  # hold no SQLite lock between commands
        protocol.write(json.dumps(reply) + "\n")
        protocol.flush()


if __name__ == "__main__":
    main()
