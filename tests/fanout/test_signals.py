"""A coordinator stopped by a signal takes its whole process tree with it and publishes nothing.

Each test starts a real ``sandgrain`` command line in its own session: a small command that
opens a new dataset, a scratch folder, and fans slow tasks out on ``local:2``. Once the workers
run, the coordinator alone gets SIGTERM (what ``scancel``, Kubernetes and systemd send), SIGINT
or SIGKILL. Every process it started (forkserver, workers, resource tracker), listed before the
signal, must be gone a few seconds later.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from sandgrain.storage import Store

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

#: The command: ``sandgrain slow run MARKERS``, mounted next to the built-in domains.
SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import typer

    from sandgrain import cli, registry
    from sandgrain.fanout import Task, run_plan
    from sandgrain.storage import Store, scratch_dir

    slow = typer.Typer()


    @slow.command("run")
    def run(ctx: typer.Context, markers: str) -> None:
        store = Store.from_settings(ctx.obj)
        with scratch_dir() as scratch, store.new_dataset(
            "things", "slow", format="test", format_version=1
        ) as ds:
            ds.write_bytes("first.bin", b"written before the fan-out")
            Path(markers, "scratch").write_text(str(scratch))
            tasks = [
                Task("sandgrain.testing.fanout_tasks:slow", {"seconds": 60, "value": i})
                for i in range(4)
            ]
            run_plan(tasks, ctx.obj.executor)


    if __name__ == "__main__":
        domain = registry.Domain(name="slow", summary="Slow tasks.", cli="__main__:slow")
        cli.app = cli.build_app([domain])
        cli.main()
    """
)


@pytest.fixture
def coordinator(tmp_path):
    """Start the command; returns (process, its descendants once the workers run, store)."""
    script = tmp_path / "slow_command.py"
    script.write_text(SCRIPT)
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {
        **os.environ,
        "SANDGRAIN_HOME": str(tmp_path / "home"),
        "SANDGRAIN_EXECUTOR": "local:2",
    }
    env.pop("SANDGRAIN_STORE", None)
    started = []

    def start():
        proc = subprocess.Popen(
            [sys.executable, str(script), "slow", "run", str(markers)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        started.append(proc)
        tree = psutil.Process(proc.pid)
        deadline = time.monotonic() + 60
        # forkserver, resource tracker and two workers, all with the task in hand
        while time.monotonic() < deadline:
            family = tree.children(recursive=True)
            if (markers / "scratch").exists() and len(family) >= 4:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        else:
            pytest.fail("the workers did not start within 60 s")
        time.sleep(0.5)  # the tasks are submitted with the first batch; let the workers take them
        family = tree.children(recursive=True)
        return proc, family, Store(str(tmp_path / "home" / "store")), markers

    yield start
    for proc in started:  # a failed test leaves nothing behind either: the whole session goes
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has ended; returns those still running after ``timeout``.
    A process that ended but was not reaped (its parent gone, a zombie) counts as ended."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for p in processes:
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.1)


def _leftovers(alive: list[psutil.Process]) -> str:
    rows = []
    for p in alive:
        try:
            rows.append(f"{p.pid} (parent {p.ppid()}): {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            rows.append(str(p.pid))
    return "still running: " + "; ".join(rows)


@pytest.mark.parametrize(
    ("signum", "how"),
    [(signal.SIGTERM, "terminated (SIGTERM)"), (signal.SIGINT, "interrupted")],
)
def test_a_stop_signal_cleans_up_and_says_so(coordinator, signum, how):
    proc, family, store, markers = coordinator()
    scratch = (markers / "scratch").read_text()
    assert os.path.isdir(scratch)
    os.kill(proc.pid, signum)  # the coordinator alone, as Kubernetes does
    out, err = proc.communicate(timeout=30)
    alive = _gone(family, timeout=5)
    assert not alive, _leftovers(alive)
    # it ends by the signal once clean: a shell reports 128 + N (130, 143)
    assert proc.returncode == -signum, err
    assert err.strip().splitlines() == [
        f"sandgrain: {how}: `slow run` stopped; nothing was published"
    ]
    assert out == ""
    # nothing published, nothing left: no manifest, no partial version, no scratch folder
    assert not store.has_dataset("things", "slow")
    assert store.list("things") == []
    assert not os.path.exists(scratch)


def test_sigkill_of_the_coordinator_ends_its_workers(coordinator):
    proc, family, store, _ = coordinator()
    assert len(family) >= 4
    proc.kill()
    proc.wait(timeout=10)
    alive = _gone(family, timeout=5)
    assert not alive, _leftovers(alive)
    # The killed run could not clean up: its partial version is there, unpublished, for
    # `sandgrain store gc` to find.
    assert not store.has_dataset("things", "slow")
    report = store.gc(older_than_s=0)
    assert [(item.dataset, item.what) for item in report.items] == [
        ("things/slow", "partial version")
    ]


def test_a_signal_after_the_manifest_is_written_keeps_the_published_version(tmp_path, monkeypatch):
    """Ctrl-C or SIGTERM while a publish removes old versions: the new one is already the
    dataset, so the unwinding writer must not remove it."""
    store = Store(str(tmp_path / "store"))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    writer = store.new_dataset("things", "x", format="t", format_version=1)
    writer.write_bytes("f", b"data")
    monkeypatch.setattr(Store, "list", interrupted)  # the listing of old versions, after
    with pytest.raises(KeyboardInterrupt):
        writer.__exit__(None, None, None)  # the end of a `with` block: publish
    monkeypatch.undo()
    assert store.open_dataset("things", "x").read_bytes("f") == b"data"


WATCHED = """
import os, sys, time
from sandgrain.fanout import lifeline
if sys.argv[2] == "poll" and hasattr(os, "pidfd_open"):
    del os.pidfd_open  # the fallback of systems without pidfds
lifeline.watch(int(sys.argv[1]))
print("watching", flush=True)
time.sleep(60)
"""

COORDINATOR = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid()), sys.argv[2]])
print(child.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("mode", ["pidfd", "poll"])
def test_the_watchdog_ends_a_process_whose_coordinator_died(mode):
    """What a pool made by another thread than the main one relies on (its forkserver cannot
    die with the coordinator), and what other systems than Linux rely on."""
    coordinator = subprocess.Popen(
        [sys.executable, "-c", "import os\n" + COORDINATOR, WATCHED, mode],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        watched = psutil.Process(int(coordinator.stdout.readline()))
        assert coordinator.stdout.readline().strip() == "watching"  # its stdout is this pipe
        coordinator.kill()
        coordinator.wait()
        alive = _gone([watched], timeout=5)
        assert not alive, _leftovers(alive)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(coordinator.pid, signal.SIGKILL)
        coordinator.wait()
