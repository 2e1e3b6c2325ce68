"""Records of the Beacon v2 default model, and the ontology vocabulary they are written in.

``genomicVariations`` records from the query engine's variant rows (VRS 1.3 locations on RefSeq
accessions, frequencies, molecular attributes, zygosity of each carrier), ``individuals``,
``datasets`` and beacon-defined ``cohorts``; the terms they use: Genotype Ontology zygosity
(GENO), NCIt sex, Sequence Ontology consequence terms (SO) for SnpEff/VEP effect names.

References: GA4GH Beacon v2 default model v2.1.1 (2023); VRS 1.3 (``SequenceLocation``); HGVS
nomenclature (den Dunnen et al. 2016, Hum Mutat 37:564); Genotype Ontology (GENO); Sequence
Ontology (Eilbeck et al. 2005, Genome Biol 6:R44).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ..genome.assemblies import canonical_chrom, refseq_accession, sequence_id
from .responses import curie_prefix, drop_none, iso_timestamp
from .variants import aa_short

#: Zygosity terms (Genotype Ontology).
HETEROZYGOUS = {"id": "GENO:0000135", "label": "heterozygous"}
HOMOZYGOUS = {"id": "GENO:0000136", "label": "homozygous"}
HEMIZYGOUS = {"id": "GENO:0000134", "label": "hemizygous"}
HEMIZYGOUS_X = {"id": "GENO:0000604", "label": "hemizygous X-linked"}

#: Sequence Ontology ids of the consequence terms SnpEff and VEP write.
SO_TERMS: dict[str, str] = {
    "transcript_ablation": "SO:0001893",
    "splice_acceptor_variant": "SO:0001574",
    "splice_donor_variant": "SO:0001575",
    "stop_gained": "SO:0001587",
    "frameshift_variant": "SO:0001589",
    "stop_lost": "SO:0001578",
    "start_lost": "SO:0002012",
    "transcript_amplification": "SO:0001889",
    "feature_elongation": "SO:0001907",
    "feature_truncation": "SO:0001906",
    "inframe_insertion": "SO:0001821",
    "inframe_deletion": "SO:0001822",
    "conservative_inframe_insertion": "SO:0001823",
    "disruptive_inframe_insertion": "SO:0001824",
    "conservative_inframe_deletion": "SO:0001825",
    "disruptive_inframe_deletion": "SO:0001826",
    "missense_variant": "SO:0001583",
    "protein_altering_variant": "SO:0001818",
    "splice_region_variant": "SO:0001630",
    "incomplete_terminal_codon_variant": "SO:0001626",
    "initiator_codon_variant": "SO:0001582",
    "start_retained_variant": "SO:0002019",
    "stop_retained_variant": "SO:0001567",
    "synonymous_variant": "SO:0001819",
    "coding_sequence_variant": "SO:0001580",
    "mature_miRNA_variant": "SO:0001620",
    "5_prime_UTR_variant": "SO:0001623",
    "3_prime_UTR_variant": "SO:0001624",
    "5_prime_UTR_premature_start_codon_gain_variant": "SO:0001988",
    "non_coding_transcript_exon_variant": "SO:0001792",
    "non_coding_exon_variant": "SO:0001792",
    "exon_variant": "SO:0001791",
    "exon_loss_variant": "SO:0001572",
    "intron_variant": "SO:0001627",
    "NMD_transcript_variant": "SO:0001621",
    "non_coding_transcript_variant": "SO:0001619",
    "upstream_gene_variant": "SO:0001631",
    "downstream_gene_variant": "SO:0001632",
    "TF_binding_site_variant": "SO:0001782",
    "regulatory_region_variant": "SO:0001566",
    "intragenic_variant": "SO:0002011",
    "intergenic_variant": "SO:0001628",
    "intergenic_region": "SO:0000605",
    "gene_fusion": "SO:0001565",
    "bidirectional_gene_fusion": "SO:0002086",
    "rare_amino_acid_variant": "SO:0002008",
    "structural_interaction_variant": "SO:0002093",
    "sequence_feature": "SO:0000110",
}

_BASES_RE = re.compile(r"^[ACGTUNRYSWKMBDHV\-.]*$")


def molecular_effect(term: str) -> dict:
    """An ontology term for a consequence name (``missense_variant`` → ``SO:0001583``).

    Unknown names get a ``CUSTOM:`` CURIE, as the framework suggests where no ontology applies.
    """
    if ":" in term and curie_prefix(term):
        return {"id": term}
    so = SO_TERMS.get(term)
    return {"id": so, "label": term} if so else {"id": f"CUSTOM:{term}", "label": term}


def _unique(items: Iterable[str]) -> list[str]:
    return [i for i in dict.fromkeys(i for i in items if i)]


def _zygosity(dosage: int, chrom: str, haploid: bool) -> dict:
    if dosage >= 2:
        return dict(HOMOZYGOUS)
    if haploid or chrom in ("Y", "MT"):
        return dict(HEMIZYGOUS_X if chrom == "X" else HEMIZYGOUS)
    return dict(HETEROZYGOUS)


def _alternate_ids(ids: Iterable[str]) -> list[dict]:
    out = []
    for raw in _unique(i.strip() for i in ids if i and i != "."):
        if re.fullmatch(r"rs\d+", raw):
            out.append(
                {
                    "id": f"dbSNP:{raw}",
                    "reference": f"https://www.ncbi.nlm.nih.gov/snp/{raw}",
                    "notes": "dbSNP id",
                }
            )
        else:
            out.append({"id": raw, "notes": "VCF ID"})
    return out


def _hgvs_g(accession: str | None, start0: int, end0: int, ref: str, alt: str, kind: str):
    # Only the forms that need no 3' normalisation against the reference (HGVS 2016 rules).
    if not accession or not _BASES_RE.match(ref + alt):
        return None
    if kind == "SNP" and len(ref) == len(alt) == 1:
        return f"{accession}:g.{start0 + 1}{ref}>{alt}"
    if kind == "MNP" and len(ref) == len(alt) > 1:
        return f"{accession}:g.{start0 + 1}_{end0}delins{alt}"
    return None


def variant_record(
    row: Mapping,
    *,
    case_level: bool = True,
    haploid_ids: Iterable[str] = (),
    population: str = "ALL",
    source: str | None = None,
    source_reference: str | None = None,
) -> dict:
    """A ``genomicVariations`` default-model record from a query-engine variant row.

    Location is a VRS 1.3 ``SequenceLocation`` on the RefSeq accession with 0-based interbase
    ``start``/``end`` (the row's ``start0``/``end0``); alleles are the row's VCF-style alleles, a
    symbolic ALT (``<DEL>``, breakends) becoming ``N`` with the VCF allele kept in ``info``.
    Frequencies carry the dataset's ``AC``/``AN`` and homozygote count beside the required
    frequency (``alleleCount``/``alleleNumber``/``alleleCountHomozygous``, as Beacon networks use).
    With *case_level* and carrier ids in the row, each carrier becomes a ``caseLevelData`` item
    with its zygosity; *haploid_ids* are carriers with one copy of this chromosome (males on X).
    """
    assembly = row.get("assembly")
    chrom = canonical_chrom(str(row["chrom"]), assembly)
    accession = refseq_accession(assembly, chrom)
    ref = str(row["ref"]).upper()
    alt = str(row["alt"])
    kind = str(row.get("variant_type") or "")
    start0, end0 = int(row["start0"]), int(row["end0"])
    info: dict[str, Any] = {}
    if not _BASES_RE.match(ref):
        info["vcfReferenceAllele"] = ref
        ref = "N"
    alt_bases = alt.upper()
    if not _BASES_RE.match(alt_bases):
        info["vcfAlternateAllele"] = alt
        alt_bases = "N"
    record: dict[str, Any] = {
        "variantInternalId": str(row["variant_id"]),
        "variation": {
            "variantType": kind or "SNP",
            "referenceBases": ref,
            "alternateBases": alt_bases,
            "location": {
                "type": "SequenceLocation",
                "sequence_id": sequence_id(assembly, chrom),
                "interval": {
                    "type": "SequenceInterval",
                    "start": {"type": "Number", "value": start0},
                    "end": {"type": "Number", "value": max(end0, start0 + 1)},
                },
            },
        },
    }
    identifiers: dict[str, Any] = {}
    alternative = _alternate_ids(row.get("ids") or ())
    if alternative:
        identifiers["variantAlternativeIds"] = alternative
    hgvs = _hgvs_g(accession, start0, end0, ref, alt_bases, kind)
    if hgvs:
        identifiers["genomicHGVSId"] = hgvs
    if identifiers:
        record["identifiers"] = identifiers

    af = row.get("af")
    if af is None and row.get("an"):
        af = row.get("ac", 0) / row["an"]
    if af is not None:
        frequency: dict[str, Any] = {"population": population, "alleleFrequency": float(af)}
        for key, name in (("ac", "alleleCount"), ("an", "alleleNumber")):
            if row.get(key) is not None:
                frequency[name] = int(row[key])
        if row.get("hom") is not None:
            frequency["alleleCountHomozygous"] = int(row["hom"])
        dataset = row.get("dataset", "")
        record["frequencyInPopulations"] = [
            {
                "source": source or f"sandgrain Beacon dataset {dataset}".strip(),
                "sourceReference": source_reference or f"dataset:{dataset}",
                "frequencies": [frequency],
            }
        ]

    molecular: dict[str, Any] = {}
    genes = _unique(row.get("genes") or ())
    if genes:
        molecular["geneIds"] = genes
    changes = _unique(aa_short(c) for c in row.get("aa_changes") or ())
    if changes:
        molecular["aminoacidChanges"] = changes
    effects = _unique(e for raw in row.get("effects") or () for e in str(raw).split("&"))
    if effects:
        molecular["molecularEffects"] = [molecular_effect(e) for e in effects]
    if molecular:
        record["molecularAttributes"] = molecular

    carriers = row.get("carrier_ids")
    if case_level and carriers:
        dosages = row.get("carrier_dosage") or [1] * len(carriers)
        haploid = set(haploid_ids)
        record["caseLevelData"] = [
            {
                "biosampleId": str(sample),
                "individualId": str(sample),
                "zygosity": _zygosity(int(d), chrom, sample in haploid),
            }
            for sample, d in zip(carriers, dosages, strict=True)
        ]
    if info:
        record["info"] = info
    return record


UNKNOWN_SEX = {"id": "NCIT:C17998", "label": "unknown"}


def _term(term: Mapping | None) -> dict | None:
    if not term or not term.get("id"):
        return None
    out = {"id": str(term["id"])}
    if term.get("label"):
        out["label"] = str(term["label"])
    return out


def individual_record(row: Mapping) -> dict:
    """An ``individuals`` default-model record; an unknown sex is ``NCIT:C17998`` (required)."""
    record: dict[str, Any] = {"id": str(row["id"]), "sex": _term(row.get("sex")) or UNKNOWN_SEX}
    for key, name in (("ethnicity", "ethnicity"), ("geographic_origin", "geographicOrigin")):
        term = _term(row.get(key))
        if term:
            record[name] = term
    diseases = [t for t in map(_term, row.get("diseases") or ()) if t]
    if diseases:
        record["diseases"] = [{"diseaseCode": t} for t in diseases]
    features = [
        {"featureType": t, **({"excluded": True} if f.get("excluded") else {})}
        for f in row.get("phenotypic_features") or ()
        if (t := _term(f))
    ]
    if features:  # excluded: looked for and found absent (Phenopackets v2 PhenotypicFeature)
        record["phenotypicFeatures"] = features
    if row.get("age"):  # the model has no age of an individual: kept in info (Beacon ``Age``)
        record["info"] = {"ageAtCollection": dict(row["age"])}
    return record


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def dataset_record(ds: Any) -> dict:
    """A ``datasets`` default-model record from a dataset manifest (mapping or object)."""
    record: dict[str, Any] = {
        "id": str(_get(ds, "id")),
        "name": str(_get(ds, "name") or _get(ds, "id")),
    }
    for key, name in (("description", "description"), ("version", "version")):
        value = _get(ds, key)
        if value not in (None, ""):
            record[name] = str(value)
    for key, name in (("created", "createDateTime"), ("updated", "updateDateTime")):
        stamp = iso_timestamp(_get(ds, key))
        if stamp:
            record[name] = stamp
    url = _get(ds, "external_url")
    if url:
        record["externalUrl"] = str(url)
    info = drop_none(
        {
            "assemblyId": _get(ds, "assembly"),
            "accessLevel": str(_get(ds, "access")).upper() if _get(ds, "access") else None,
            "variantCount": _get(ds, "n_variants"),
            "individualCount": _get(ds, "n_individuals"),
        }
    )
    if info:
        record["info"] = info
    return record


_GENOTYPING = {"id": "OBI:0000070", "label": "genotyping assay"}
_CLINICAL = {"id": "OGMS:0000015", "label": "clinical history"}


def _distribution(name: str, values: list[list[dict]]) -> dict:
    # Aggregate only (a count per category): members are never listed (Beacon cohort model).
    counts: Counter[str] = Counter()
    with_data = 0
    for terms in values:
        if terms:
            with_data += 1
        for t in {(t.get("label") or t["id"]) for t in terms}:
            counts[t] += 1
    out: dict[str, Any] = {"availability": with_data > 0, "availabilityCount": with_data}
    if counts:
        out["distribution"] = {name: dict(sorted(counts.items()))}
    return out


def cohort_record(ds: Any, individuals: Iterable[Mapping] | None = None) -> dict:
    """The beacon-defined cohort of a dataset: all its individuals, with aggregate
    sex/ethnicity/origin/disease/phenotype distributions when *individuals* are given."""
    ds_id = str(_get(ds, "id"))
    name = _get(ds, "name") or ds_id
    rows = None if individuals is None else list(individuals)
    size = len(rows) if rows is not None else _get(ds, "n_individuals")
    record: dict[str, Any] = {
        "id": ds_id,
        "name": f"All individuals of dataset {name}",
        "cohortType": "beacon-defined",
        "cohortDataTypes": [dict(_GENOTYPING)],
    }
    if size is not None:
        record["cohortSize"] = int(size)
    if rows:
        if any(r.get("diseases") or r.get("phenotypic_features") for r in rows):
            record["cohortDataTypes"].append(dict(_CLINICAL))

        def terms(r: Mapping, key: str) -> list[dict]:
            value = r.get(key)
            items = value if isinstance(value, list) else [value]
            # an excluded phenotype (looked for, absent) is not a phenotype of the cohort
            items = [i for i in items if not (isinstance(i, Mapping) and i.get("excluded"))]
            return [t for t in map(_term, items) if t]

        n = len(rows)
        record["collectionEvents"] = [
            {
                "eventNum": 1,
                "eventSize": n,
                "eventGenders": _distribution("genders", [terms(r, "sex") for r in rows]),
                "eventEthnicities": _distribution(
                    "ethnicities", [terms(r, "ethnicity") for r in rows]
                ),
                "eventLocations": _distribution(
                    "locations", [terms(r, "geographic_origin") for r in rows]
                ),
                "eventDiseases": _distribution("diseases", [terms(r, "diseases") for r in rows]),
                "eventPhenotypes": _distribution(
                    "phenotypes", [terms(r, "phenotypic_features") for r in rows]
                ),
            }
        ]
    return record


# -- biosamples, runs, analyses (one each per VCF sample, see :mod:`sandgrain.beacon.entries`) ----
#: What a required term is when nothing says it (the model requires biosampleStatus and
#: sampleOriginType; "unknown" is what the data tell).
UNKNOWN_TERM = {"id": "NCIT:C17998", "label": "Unknown"}


def biosample_record(row: Mapping, *, dataset: str) -> dict:
    """A ``biosamples`` record of the VCF sample ``row["id"]`` (its individual has the same id):
    status and origin from the sample metadata (``row["biosample"]``), else unknown."""
    sample = row.get("biosample") or {}
    given = [k for k in ("biosample_status", "sample_origin_type") if sample.get(k)]
    record: dict[str, Any] = {
        "id": str(row["id"]),
        "individualId": str(row["id"]),
        "biosampleStatus": _term(sample.get("biosample_status")) or dict(UNKNOWN_TERM),
        "sampleOriginType": _term(sample.get("sample_origin_type")) or dict(UNKNOWN_TERM),
        "info": {
            "dataset": dataset,
            "derivedFrom": "VCF sample " + str(row["id"]),
            "fromMetadata": given + (["collection_date"] if sample.get("collection_date") else []),
        },
    }
    if sample.get("collection_date"):
        record["collectionDate"] = sample["collection_date"]
    return record


def run_record(row: Mapping, run_id: str, *, dataset: str) -> dict:
    """A ``runs`` record from the sample metadata's run fields (``runDate`` required)."""
    run = row.get("run") or {}
    record: dict[str, Any] = {
        "id": run_id,
        "biosampleId": str(row["id"]),
        "individualId": str(row["id"]),
        "runDate": run["run_date"],
        "info": {"dataset": dataset, "derivedFrom": "sample metadata"},
    }
    for key, name in (
        ("platform", "platform"), ("library_strategy", "libraryStrategy"),
        ("library_selection", "librarySelection"), ("library_layout", "libraryLayout"),
    ):  # fmt: skip
        if run.get(key):
            record[name] = run[key]
    return record


def analysis_record(
    row: Mapping, analysis_id: str, *, dataset: str, run_id: str | None, facts: Mapping
) -> dict:
    """An ``analyses`` record: the analysis that gave the sample's genotypes as the Beacon
    holds them. Each field from the sample metadata, else the VCF header, else the Beacon
    ingest; ``info.sources`` says which (``facts``: see :func:`sandgrain.beacon.entries.facts`).
    """
    given = row.get("analysis") or {}
    sources: dict[str, str] = {}

    def pick(name: str, *options: tuple[str, Any]) -> Any:
        for source, value in options:
            if value:
                sources[name] = source
                return value
        return None

    record: dict[str, Any] = {
        "id": analysis_id,
        "biosampleId": str(row["id"]),
        "individualId": str(row["id"]),
        "analysisDate": pick(
            "analysisDate",
            ("metadata", given.get("analysis_date")),
            ("vcf ##fileDate", facts.get("fileDateIso")),
            ("beacon ingest", facts.get("ingested")),
        ),  # fmt: skip
        "pipelineName": pick(
            "pipelineName",
            ("metadata", given.get("pipeline_name")),
            ("vcf ##source", facts.get("source")),
            ("beacon ingest", facts.get("pipeline")),
        ),  # fmt: skip
    }
    caller = pick(
        "variantCaller", ("metadata", given.get("variant_caller")),
        ("vcf ##source", facts.get("source")),
    )  # fmt: skip
    if caller:
        record["variantCaller"] = caller
    if given.get("aligner"):
        record["aligner"] = given["aligner"]
        sources["aligner"] = "metadata"
    if run_id:
        record["runId"] = run_id
    record["info"] = drop_none(
        {
            "dataset": dataset,
            "sources": sources,
            "vcfReference": facts.get("reference"),
            "beaconIngest": facts.get("pipeline"),
            "ingested": facts.get("ingested"),
        }  # fmt: skip
    )
    return record


def study_cohort_record(
    cohort_id: str, name: str, dataset_name: str, members: list[Mapping] | None, size: int
) -> dict:
    """A study-defined cohort (named in the sample metadata's ``cohorts`` column), with the
    aggregate distributions of :func:`cohort_record` when ``members`` are given."""
    record = cohort_record({"id": cohort_id, "name": name, "n_individuals": size}, members)
    record["name"] = f"Cohort {name} of dataset {dataset_name}"
    record["cohortType"] = "study-defined"
    record["cohortSize"] = int(size)
    return record
