"""Helpers for tests and benchmarks: a real S3-protocol server on loopback.

:class:`LoopbackS3` starts moto's standalone server (``moto[server]``, a dev dependency) as a
separate process listening on 127.0.0.1, so the S3 code path is exercised over real HTTP —
ranged GETs, multipart uploads — not through an in-process mock.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackS3:
    """``with LoopbackS3() as s3: s3.endpoint`` — an S3 server on 127.0.0.1 for tests.

    Sets the dummy credentials the AWS clients need (moto accepts any) for this process; pass
    :meth:`env` to child processes.
    """

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def start(self) -> LoopbackS3:
        try:
            import moto.server  # noqa: F401
        except ImportError as exc:  # pragma: no cover - dev extra missing
            raise RuntimeError("moto[server] is needed: pip install -e '.[dev]'") from exc
        os.environ.update(self.env())
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError("the moto S3 server exited at start")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1).close()
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the moto S3 server did not start within 30 s")

    def create_bucket(self, name: str) -> str:
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1").create_bucket(
            Bucket=name
        )
        return f"s3://{name}"

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(10)
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc = None

    def __enter__(self) -> LoopbackS3:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
