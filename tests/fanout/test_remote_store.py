"""A Dask worker that cannot see the client's local store: refused before any task runs.

The worker is a real ``dask worker`` process connected to a real scheduler, started in its own
mount namespace (``unshare --mount``) with an empty tmpfs over the folder holding the client's
store: the same path, another file system, as on a cluster node without the shared disk.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest

from sandgrain import storage
from sandgrain.errors import StorageError, TaskFailedError
from sandgrain.fanout import DaskExecutor, Task, open_executor, run_plan
from sandgrain.genome import composition as comp
from sandgrain.genome.store import add_genome
from sandgrain.guides.siteindex import KIND as SITEINDEX
from sandgrain.guides.siteindex import SiteFamily, build_index
from sandgrain.storage import Store

pytestmark = pytest.mark.timeout(120)

SPCAS9 = SiteFamily(("NGG",), 20, "3")


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def hidden(tmp_path_factory):
    """The folder the worker cannot see (its mount namespace has an empty tmpfs over it)."""
    return tmp_path_factory.mktemp("hidden-from-worker")


@pytest.fixture(scope="module")
def cluster(hidden, s3_server):
    """A scheduler in this process and one worker process that cannot see ``hidden`` (started
    after the loopback S3 server, so it inherits the credentials it sets)."""
    if not _can_unshare():
        pytest.skip("needs `unshare --mount` (root, or a user namespace) to hide a folder")
    from distributed import LocalCluster

    scheduler = LocalCluster(n_workers=0, host="127.0.0.1", scheduler_kwargs={"dashboard": False})
    address = scheduler.scheduler_address
    worker = (
        f"mount -t tmpfs tmpfs {shlex.quote(str(hidden))} && exec {shlex.quote(sys.executable)}"
        f" -m distributed.cli.dask_worker {address} --nthreads 1 --no-nanny --no-dashboard"
    )
    proc = subprocess.Popen(
        ["unshare", "--mount", "sh", "-c", worker],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    executor = None
    try:
        executor = DaskExecutor(address)
        executor._client.wait_for_workers(1, timeout=60)
        yield executor
    finally:
        if executor is not None:
            executor.close()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        scheduler.close()


@pytest.fixture(scope="module")
def hidden_genome(hidden, tmp_path_factory):
    """A small genome in a local store the worker cannot see."""
    fasta = tmp_path_factory.mktemp("fasta") / "tiny.fa"
    bases = "ACGTTGCAAGGCTTAACCGG" * 150
    fasta.write_text(f">chrA\n{bases}\n>chrB\n{bases[::-1]}\n")
    return add_genome(Store(str(hidden / "store")), "tiny", str(fasta))


def test_a_local_store_the_workers_cannot_see_is_refused_at_once(cluster, hidden_genome):
    store = hidden_genome.dataset.store
    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        build_index(hidden_genome, SPCAS9, executor=cluster)
    message = str(info.value)
    assert message.startswith(f"workers of {cluster.name} cannot see the local store {store.url}")
    assert "the directory does not exist" in message
    assert "use an s3:// store, or a shared filesystem mounted at the same path" in message
    assert time.monotonic() - started < 20
    # nothing published, nothing left behind
    assert store.dataset_names(SITEINDEX) == []
    assert store.list(SITEINDEX) == [] and store.list("_probes") == []
    with pytest.raises(StorageError, match="cannot see the local store"):
        comp.composition(hidden_genome, executor=cluster)


def test_a_worker_never_creates_the_store(cluster, hidden_genome):
    """Without the probe, each task refuses the missing store (no empty store is made on the
    worker, which would make the genome look replaced or removed)."""
    chrom = hidden_genome.chromosomes[0]
    task = Task(
        comp.TASK,
        dict(genome=hidden_genome.reference(), chrom=chrom["name"], start0=0,
             end0=chrom["length"], max_size=4_000_000),
    )  # fmt: skip
    refused = r"the store .* does not exist on this worker \(host "
    with pytest.raises((TaskFailedError, StorageError), match=refused):
        run_plan([task], cluster, retries=0)
    root = hidden_genome.dataset.store.root
    assert list(cluster._client.run(os.path.exists, root).values()) == [False]


def test_stores_the_workers_see_pass_the_probe_once(cluster, tmp_path, s3_store, monkeypatch):
    visible = Store(str(tmp_path / "store"))
    for store in (visible, s3_store):
        store.probe(cluster)
        assert store.list("_probes") == []
    # checked once per executor and store in a process: no second probe task
    monkeypatch.setattr(cluster, "submit", lambda task: pytest.fail("probed twice"))
    visible.probe(cluster)
    assert (cluster.name, visible.url, "{}") in storage._PROBED


def test_what_the_probe_task_reports(tmp_path):
    store = Store(str(tmp_path / "store"))
    store.write_bytes("_probes/probe.tmp-abc", b"abc")
    assert storage.read_probe(store.reference(), "_probes/probe.tmp-abc")["token"] == "abc"
    other = storage.read_probe(store.reference(), "_probes/probe.tmp-xyz")
    assert other["token"] is None and "a different directory is at that path" in other["problem"]
    gone = storage.read_probe({"url": str(tmp_path / "nowhere")}, "_probes/probe.tmp-abc")
    assert gone["problem"] == "the directory does not exist"
    assert not (tmp_path / "nowhere").exists()


def test_executors_on_this_machine_are_not_probed(tmp_path, monkeypatch):
    store = Store(str(tmp_path / "store"))
    monkeypatch.setattr(store, "write_bytes", lambda *a: pytest.fail("probed a local executor"))
    for url in ("serial", "local:1"):
        with open_executor(url) as executor:
            assert not executor.remote
            store.probe(executor)


def test_beacon_ingest_hands_the_vcf_to_workers_through_the_store(cluster, hidden, s3_store):
    """The VCF is on the client's disk only (in the hidden folder); the workers get a staged copy
    through the S3 store, the dataset equals one ingested on this machine, and the staged copy
    is removed afterwards."""
    from conftest import DATA

    from sandgrain.beacon.ingest import KIND, ingest

    vcf = hidden / "c22.vcf"
    shutil.copy(DATA / "variants/1000g-chr22-20-21M-191samples.vcf", vcf)
    remote = ingest(s3_store, "c22", vcf, assembly="GRCh37", executor=cluster, check_ref=False,
                    window_bp=20_000)  # fmt: skip
    here = ingest(Store(str(hidden / "local-store")), "c22", vcf, assembly="GRCh37",
                  executor="serial", check_ref=False, window_bp=20_000)  # fmt: skip
    assert remote.meta["n_rows"] == here.meta["n_rows"] > 1000
    assert len(remote.meta["partitions"]) == len(here.meta["partitions"]) > 1
    files = {f: i["sha256"] for f, i in remote.manifest["files"].items()}
    assert files == {f: i["sha256"] for f, i in here.manifest["files"].items()}
    assert s3_store.list("scratch") == [] and s3_store.dataset_names(KIND) == ["c22"]
