"""Biosamples, runs and analyses of a dataset, and its cohorts: derived from what was ingested,
never invented.

A dataset holds one VCF and, optionally, a sample metadata file
(:mod:`sandgrain.beacon.individuals`). Each VCF sample is one individual, and:

biosample ``<sample>``
    the sample the genotypes were called from (the id ``caseLevelData.biosampleId`` of a
    variant record already gives). ``biosampleStatus`` and ``sampleOriginType`` — required by
    the model — come from the metadata columns of those names; without them they are
    ``NCIT:C17998`` *Unknown*, which is what the data say. ``collectionDate`` from metadata.
run ``<sample>-run``
    the sequencing run, only where the metadata gives its ``runDate`` (required by the model;
    a VCF does not say it), with ``platform``, ``libraryStrategy``, ``librarySelection``,
    ``libraryLayout`` when given.
analysis ``<sample>-analysis``
    the analysis that gave the genotypes the Beacon serves. ``analysisDate``: metadata, else the
    VCF's ``##fileDate``, else the ingest date; ``pipelineName``: metadata, else the VCF's
    ``##source``, else the Beacon ingest (``sandgrain beacon ingest <version>``);
    ``variantCaller``: metadata, else ``##source``. ``info.sources`` names where each came from.

A dataset's cohorts: its beacon-defined cohort (id = the dataset id, all its individuals) and
one study-defined cohort ``<dataset>:<name>`` per name of the metadata's ``cohorts`` column.
Members of a study-defined cohort are selected by the filter ``cohort=<name>``
(:mod:`sandgrain.beacon.filters`), so its queries go through the same access, group-size and
differencing checks as any filtered query.

Every entry type answers through its individuals (:func:`answer_entries`), so filters, revoked
consent, rare-allele rules and count protection apply to them exactly as to individuals, and
one biosample, run or analysis (like one individual) needs record-level access.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import records
from .query import DatasetAnswer, answer_individuals
from .store import BeaconCatalog, BeaconDataset

#: Entry types answered per sample, and the suffix of their ids.
SUFFIX = {"individual": "", "biosample": "", "run": "-run", "analysis": "-analysis"}
#: Entry types of this module (the per-sample ones but individuals, which are the rows).
SAMPLE_ENTRIES = ("biosample", "run", "analysis")


def sample_of(entry: str, entry_id: str) -> str | None:
    """The VCF sample an entry id stands for (``NA12878-run`` → ``NA12878``); None when the id
    cannot be one of ``entry``."""
    suffix = SUFFIX[entry]
    if not suffix:
        return entry_id
    return entry_id[: -len(suffix)] if entry_id.endswith(suffix) and entry_id != suffix else None


def has_entry(entry: str, row: Mapping) -> bool:
    """Whether the individual ``row`` has an entry of this type (a run needs its date)."""
    if entry == "run":
        return bool((row.get("run") or {}).get("run_date"))
    return True


def facts(ds: BeaconDataset) -> dict:
    """What the dataset's VCF header and ingest say about how its genotypes were made."""
    from .. import __version__

    header = dict(ds.meta.get("vcf_header") or {})
    prov = ds.dataset.manifest.get("provenance", {})
    created = str(ds.dataset.manifest.get("created") or prov.get("time") or "")[:10] or None
    version = prov.get("version") or __version__
    return {**header, "ingested": created, "pipeline": f"sandgrain beacon ingest {version}"}


def entry_record(entry: str, row: Mapping, ds_facts: Mapping) -> dict:
    """The record of ``entry`` for individual ``row`` (a query row: metadata + ``dataset``)."""
    sample, dataset = str(row["id"]), str(row.get("dataset", ""))
    if entry == "individual":
        return records.individual_record(row)
    if entry == "biosample":
        return records.biosample_record(row, dataset=dataset)
    run_id = sample + SUFFIX["run"] if has_entry("run", row) else None
    if entry == "run":
        return records.run_record(row, run_id or "", dataset=dataset)
    return records.analysis_record(
        row, sample + SUFFIX["analysis"], dataset=dataset, run_id=run_id, facts=ds_facts
    )


def answer_entries(
    ds: BeaconDataset,
    entry: str,
    *,
    filters: list[str] = (),
    sample: str | None = None,
    variant_id: str | None = None,
    catalog: BeaconCatalog | None = None,
    skip: int = 0,
    limit: int = 10,
    rare: dict | None = None,
) -> DatasetAnswer:
    """The ``entry`` records (biosample, run, analysis) of ``ds``'s individuals that the
    filters select (one ``sample``'s, or its carriers of ``variant_id``): their number, and the
    records ``[skip, skip + limit)`` (``skip`` and ``limit`` in records)."""
    everyone = answer_individuals(
        ds, filters=filters, individual_id=sample, variant_id=variant_id, catalog=catalog,
        skip=0, limit=max(1, len(ds.samples)), rare=rare,
    )  # fmt: skip
    rows = [r for r in everyone.rows if has_entry(entry, r)]
    about = facts(ds) if entry == "analysis" else {}
    answer = DatasetAnswer(ds.id, len(rows), warnings=list(everyone.warnings))
    answer.add_stats(everyone.hidden, everyone.rarest)
    answer.rows = [entry_record(entry, r, about) for r in rows[skip : skip + limit]]
    return answer


# -- cohorts ---------------------------------------------------------------------------------------
def study_cohorts(people: list[dict]) -> dict[str, list[dict]]:
    """Study-defined cohort name → its members (of ``people``), in first-seen order."""
    out: dict[str, list[dict]] = {}
    for person in people:
        for name in person.get("cohorts") or ():
            out.setdefault(name, []).append(person)
    return out


def cohort_docs(ds: BeaconDataset, people: list[dict], *, aggregates: bool) -> list[dict]:
    """The study-defined cohort records of ``ds`` (``people``: its consenting individuals);
    ``aggregates`` adds their sex/ethnicity/disease/phenotype distributions."""
    name = ds.meta.get("name") or ds.id
    return [
        records.study_cohort_record(
            f"{ds.id}:{cohort}", cohort, name, members if aggregates else None, len(members)
        )
        for cohort, members in study_cohorts(people).items()
    ]


def split_cohort_id(cohort_id: str) -> tuple[str, str | None]:
    """``dataset:name`` → (dataset, name); a dataset id (its beacon-defined cohort) → (id, None)."""
    dataset, sep, name = cohort_id.partition(":")
    return (dataset, name) if sep and name else (cohort_id, None)
