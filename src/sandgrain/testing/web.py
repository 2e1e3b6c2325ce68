"""The app on a loopback port and Debian's chromium, for browser tests and the screenshot script.

    with live_server(create_app(settings)) as url:       # http://127.0.0.1:PORT
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

Nothing here listens beyond 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

#: The browser: Debian's chromium (``make sysdeps``), or ``SANDGRAIN_CHROMIUM``.
CHROMIUM = os.environ.get("SANDGRAIN_CHROMIUM", "/usr/bin/chromium")
#: Headless in a container, and nothing fetched from outside (no updates, no sync, no QUIC).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def live_server(app: Any, name: str = "uvicorn-test", timeout_s: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread on 127.0.0.1; yields its base URL and
    stops it (lifespan shutdown included) on exit."""
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=15)
