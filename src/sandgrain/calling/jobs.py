"""The calling domain's job kind: ``calling.joint`` — a stored read set (:mod:`.readsets`) called
jointly, reads to one multi-sample VCF, by :func:`~.pipeline.call_samples` on the server's
executor.

The job copies the read set's reference into a scratch folder and indexes it there (samtools
``.fai``, minimap2 ``.mmi``), runs the pipeline on the read set's FASTQ and writes under
``results/calling/<job id>/``: ``calls.vcf.gz`` with its ``.tbi``, and ``result.json`` — the
read set, the run's figures, the VCF's records (up to :data:`MAX_RECORDS`, each with every
sample's genotype and depth) and the provenance — whose key is the job's result.
"""

from __future__ import annotations

import contextlib
import gzip
import shutil
from pathlib import Path
from typing import Any

from ..errors import InputError, NotFoundError
from ..jobs import JobContext
from ..registry import Services
from ..storage import check_name, scratch_dir

__all__ = ["JOINT", "MAX_RECORDS", "joint_job", "joint_params", "result_prefix"]

JOINT = "calling.joint"
#: Records kept in ``result.json`` (the VCF has them all).
MAX_RECORDS = 1000
VCF = "calls.vcf.gz"
#: The pipeline's stages and the share of the job's progress each takes.
_STAGES = {"read": (0.0, 0.1), "align": (0.1, 0.5), "mark duplicates": (0.5, 0.6),
           "call": (0.6, 1.0)}  # fmt: skip


def result_prefix(job_id: str) -> str:
    """Where a calling job writes its files in the store."""
    return f"results/calling/{job_id}"


def joint_params(store, doc: Any) -> dict:
    """A job's parameters from a request body: ``{"readset": NAME}`` naming a stored read set
    (400 for anything else, 404 for an unknown read set)."""
    from .readsets import KIND

    if not isinstance(doc, dict):
        raise InputError("the body is a JSON object: {\"readset\": NAME}")
    extra = set(doc) - {"readset"}
    if extra:
        raise InputError(f"unknown field(s): {', '.join(sorted(extra))}; give readset")
    name = doc.get("readset")
    if not isinstance(name, str) or not name:
        raise InputError("readset: the name of a stored read set")
    check_name(name, "read set name")
    if not store.has_dataset(KIND, name):
        known = ", ".join(store.dataset_names(KIND)) or "none (sandgrain demo stores one)"
        raise NotFoundError(f"no read set {name!r}; known: {known}")
    return {"readset": name}


def _records(vcf: Path) -> tuple[list[str], list[dict], int]:
    """The VCF's samples, its first :data:`MAX_RECORDS` records and how many it has."""
    samples: list[str] = []
    records: list[dict] = []
    total = 0
    with gzip.open(vcf, "rt") as fh:
        for line in fh:
            if line.startswith("##"):
                continue
            cols = line.rstrip("\n").split("\t")
            if line.startswith("#"):
                samples = cols[9:]
                continue
            total += 1
            if len(records) >= MAX_RECORDS:
                continue
            keys = cols[8].split(":") if len(cols) > 8 else []
            calls = []
            for value in cols[9:]:
                fields = dict(zip(keys, value.split(":"), strict=False))
                calls.append({"gt": fields.get("GT", "."), "dp": fields.get("DP")})
            info = dict(f.split("=", 1) if "=" in f else (f, True) for f in cols[7].split(";"))
            records.append({
                "chrom": cols[0], "pos": int(cols[1]), "ref": cols[3], "alt": cols[4],
                "qual": None if cols[5] == "." else float(cols[5]),
                "type": "indel" if "INDEL" in info else "snv", "depth": info.get("DP"),
                "calls": calls,
            })  # fmt: skip
    return samples, records, total


def run_joint(store, settings, params: dict, job_id: str, ctx: JobContext | None = None) -> str:
    """Call a read set jointly; returns the key of ``result.json``."""
    from .pipeline import call_samples
    from .readsets import open_readset
    from .reference import index_reference

    readset = open_readset(store, params["readset"])

    @contextlib.contextmanager
    def progress(stage: str, unit: str | None):
        lo, hi = next((v for k, v in _STAGES.items() if stage.startswith(k)), (0.0, 1.0))
        if ctx is not None:
            ctx.check_cancelled()
            ctx.progress(lo, stage)

        def update(done: float, total: float, done_work=None, total_work=None) -> None:
            # a fan-out callback: tasks done of total, and the work they weigh when known
            if done_work is not None and total_work:
                done, total = done_work, total_work
            if ctx is not None:
                ctx.check_cancelled()
                ctx.progress(lo + (hi - lo) * (done / total if total else 0.0), stage)

        yield update

    with scratch_dir("sandgrain-calling-job-") as tmp:
        fasta = tmp / "reference.fa"
        shutil.copyfile(readset.reference(), fasta)
        reference = index_reference(fasta)
        out = tmp / VCF
        report = call_samples(
            reference, readset.samples(), out, executor=settings.executor,
            retries=settings.retries, progress=progress,
            command=f"sandgrain web: calling job on read set {readset.name}",
        )  # fmt: skip
        samples, records, total = _records(out)
        prefix = result_prefix(job_id)
        store.put_file(out, f"{prefix}/{VCF}")
        store.put_file(out.with_name(VCF + ".tbi"), f"{prefix}/{VCF}.tbi")
        figures = report.as_dict()
        figures.pop("out", None)
        figures.pop("bam", None)
        doc = {
            "readset": readset.summary(),
            "samples": samples,
            "total": total,
            "records": records,
            "truncated": total > len(records),
            "report": figures,
            "files": {"vcf": f"{prefix}/{VCF}", "tbi": f"{prefix}/{VCF}.tbi"},
        }
    key = f"{prefix}/result.json"
    store.write_json(key, doc)
    return key


def joint_job(services: Services):
    """Handler for ``calling.joint`` jobs (see the module docstring)."""
    store, settings = services.store, services.settings

    def handle(ctx: JobContext) -> str:
        params = joint_params(store, dict(ctx.params))
        return run_joint(store, settings, params, ctx.id, ctx)

    return handle
