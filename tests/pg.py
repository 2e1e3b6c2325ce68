"""A real PostgreSQL server for the tests, started in a temporary directory and stopped after.

Uses Debian's ``postgresql`` package (``make sysdeps`` installs it): ``initdb`` makes a cluster
in a temporary folder, ``pg_ctl`` starts it listening on 127.0.0.1 on a free port (its unix
socket inside the folder too, never in /var/run), with durability off since nothing in it needs
to survive. PostgreSQL refuses to run as root, so when the tests run as root (as in CI) the
cluster belongs to the ``postgres`` system user the package creates, and the server commands run
through ``runuser -u postgres --``.

Each test gets a fresh schema (:meth:`LocalPostgres.fresh_url`): creating one is far cheaper than
creating a database, and the URL's ``options=-c search_path=…`` makes it the only one the test's
connections see.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

DATABASE = "sandgrain"


def find_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with initdb and pg_ctl, if any."""
    found = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        folder = Path(initdb).parent
        version = folder.parent.name
        if (folder / "pg_ctl").exists() and version.split(".")[0].isdigit():
            found.append((int(version.split(".")[0]), folder))
    return max(found)[1] if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPostgres:
    """``with LocalPostgres() as pg: pg.url`` -- a throwaway server with one database."""

    def __init__(self, bindir: Path, *, durable: bool = False):
        """``durable``: keep PostgreSQL's crash safety (fsync, synchronous commit, full page
        writes) on, as a production server has it; the tests turn it off for speed."""
        self.bindir = bindir
        self.durable = durable
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="sandgrain-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.user = "postgres"
        self.url = f"postgresql://{self.user}@127.0.0.1:{self.port}/{DATABASE}"
        self._as_root = os.geteuid() == 0
        self._started = False

    def _run(self, *args: str) -> None:
        command = [str(a) for a in args]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}\n{log}"
            )

    def start(self) -> LocalPostgres:
        if self._as_root:
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
        self._run(
            self.bindir / "initdb", "-D", self.data, "-U", self.user, "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.folder}",
                "-c listen_addresses=127.0.0.1",
                *(
                    f"-c {name}={'on' if self.durable else 'off'}"
                    for name in ("fsync", "synchronous_commit", "full_page_writes")
                ),
                "-c max_connections=200",
            ]
        )
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-l", self.log, "-o", options,
                  "-w", "-t", "60", "start")  # fmt: skip
        self._started = True
        import psycopg

        admin = f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        return self

    def stop(self) -> None:
        try:
            if self._started:
                self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
                self._started = False
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fresh_url(self) -> tuple[str, str]:
        """(URL, schema): a new empty schema and a URL whose connections use only it."""
        import psycopg

        schema = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        return f"{self.url}?options={quote(f'-c search_path={schema}')}", schema

    def drop(self, schema: str) -> None:
        import psycopg

        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute("SET lock_timeout = '5s'")
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        except psycopg.Error:
            pass  # a connection a test left open holds it; the server goes away at the end
