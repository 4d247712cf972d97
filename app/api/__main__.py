"""`python -m app.api`: validate the environment, then serve with granian (1 worker).

Bad configuration exits with status 2 and one line naming the variable, before
any socket is opened. Listens on GEOHA_API_LISTEN (host:port, default 127.0.0.1:8080).
"""

from __future__ import annotations

import os
import sys

from granian import Granian
from granian.constants import Interfaces

from app.api.config import ConfigError, load_settings, parse_listen

DEFAULT_LISTEN = "127.0.0.1:8080"


def main() -> int:
    try:
        load_settings(os.environ)
        host, port = parse_listen(os.environ.get("GEOHA_API_LISTEN") or DEFAULT_LISTEN)
    except ConfigError as exc:
        print(f"geoha-api: {exc}", file=sys.stderr, flush=True)
        return 2
    server = Granian(
        "app.api.main:app",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        websockets=False,
    )
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
