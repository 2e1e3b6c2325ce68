"""Request and response models of the REST API (pydantic), declared once for validation and for
the OpenAPI schema at ``/openapi.json``.

Requests forbid unknown fields and bound every string, so a malformed request is refused with
``422`` before any work starts. The rules of a guide request live in the guides domain
(:mod:`sandgrain.guides.request`): a model here bounds its fields for the schema and turns
itself into the domain's request (``to_request()``), which checks the rest. Response models
describe what the routes return; the large guide documents are sent as they are stored (the
models document them, they do not re-validate them).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from ..guides import request as guides_request
from ..guides.candidates import MAX_TARGET_BP
from ..guides.nucleases import NUCLEASES
from ..guides.request import check_one_target
from ..guides.search import MAX_MISMATCHES

__all__ = [
    "DesignRequest",
    "GeneDetail",
    "GeneHit",
    "GenomeDetail",
    "GuideCount",
    "GuideOverview",
    "GuidePage",
    "GuideRow",
    "GuideTrack",
    "GenomeSummary",
    "Guide",
    "GuideDocument",
    "Interval",
    "JobCreated",
    "JobInfo",
    "NucleaseInfo",
    "OffTarget",
    "OffTargetPage",
    "Problem",
    "ScoreRequest",
]

#: Most guides one synchronous score request may hold.
MAX_SCORE_GUIDES = 50
#: Longest gene name or region text accepted.
MAX_NAME_CHARS = 200
#: Longest raw sequence accepted (the design's own target limit).
MAX_SEQUENCE_CHARS = MAX_TARGET_BP
#: Longest guide string accepted (a protospacer, possibly padded with N for the PAM).
MAX_GUIDE_CHARS = 64
#: What a genome name looks like (documented; the store checks it, 400 otherwise).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
#: What a pasted sequence looks like (documented; checked with a message naming the bad
#: letter, 400 otherwise): IUPAC letters (RNA's U read as T), whitespace ignored, optionally
#: FASTA (``>name`` header lines).
_LETTERS = "ACGTURYSWKMBDHVNacgturyswkmbdhvn"
SEQUENCE_PATTERN = rf"^\s*(>[^\n]*\n\s*)?[{_LETTERS}][{_LETTERS}\s]*(>[^\n]*\n[{_LETTERS}\s]*)*$"
#: What a guide looks like (documented; checked with its length, 400 otherwise).
GUIDE_PATTERN = r"^\s*[ACGTacgt]+\s*$"
#: Default and largest number of off-targets listed per guide in a response.
DEFAULT_OFFTARGETS_LIMIT = 20
MAX_OFFTARGETS_LIMIT = 1000

GenomeName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        description="A genome's name or alias, as listed by `GET /api/v1/genomes`.",
        examples=["yeast"],
        json_schema_extra={"pattern": NAME_PATTERN},
    ),
]
NucleaseName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="A shipped nuclease (case-insensitive): " + ", ".join(NUCLEASES) + " "
        "(`GET /api/v1/nucleases`); 404 for another name.",
        examples=["SpCas9"],
    ),
]


def _whole_number(value: Any) -> Any:
    """JSON numbers only (``4`` or ``4.0``), not ``true`` or ``"4"``: what JSON Schema's
    ``integer`` means. Fractions are refused by the ``int`` validation that follows."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number")
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]

MaxMismatches = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_MISMATCHES,
        description=f"Off-targets with up to this many mismatches (0–{MAX_MISMATCHES}) are "
        "searched.",
    ),
    BeforeValidator(_whole_number),
]


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


class Problem(BaseModel):
    """An RFC 9457 problem details object (media type ``application/problem+json``)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field("about:blank", description="A URI naming the problem type.")
    title: str = Field(description="A short summary of the problem type.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong, in words a user can act on.")
    instance: str | None = Field(None, description="The path of the request.")
    candidates: list[str] | None = Field(
        None, description="For an ambiguous name (409): what it could mean."
    )
    errors: list[dict[str, Any]] | None = Field(
        None, description="For invalid input (422): each error's location and message."
    )


# --------------------------------------------------------------------------------------------
# genomes and genes
# --------------------------------------------------------------------------------------------


class GenomeSummary(BaseModel):
    name: str
    aliases: list[str]
    assembly: str | None
    sequences: int
    total_length: int
    genes: int
    created: str | None
    indexed_nucleases: list[str] = Field(
        description="Shipped nucleases whose site index exists for this genome (guide design "
        "and scoring need it)."
    )


class GenomeDetail(GenomeSummary):
    chromosomes: list[dict[str, Any]]
    provenance: dict[str, Any] | None


class GeneHit(BaseModel):
    """A gene as the autocomplete lists it (1-based inclusive coordinates)."""

    symbol: str
    gene_id: str
    chrom: str
    start: int
    end: int
    strand: str
    biotype: str


class Interval(BaseModel):
    """A part of a gene, 1-based inclusive."""

    start: int
    end: int


class GeneDetail(GeneHit):
    aliases: list[str]
    ids: list[str]
    location: str = Field(description="`chrom:start-end`, 1-based inclusive.")
    exons: list[Interval]
    cds: list[Interval]
    description: str


# --------------------------------------------------------------------------------------------
# nucleases
# --------------------------------------------------------------------------------------------


class OfftargetPam(BaseModel):
    pam: str
    weight: float


class NucleaseInfo(BaseModel):
    name: str
    pam: str
    pam_side: Literal["3", "5"]
    guide_length: int
    cut_offset: int
    offtarget_pams: list[OfftargetPam]
    default_offtarget_pams: list[str]
    description: str


# --------------------------------------------------------------------------------------------
# guide design and scoring
# --------------------------------------------------------------------------------------------


class DesignRequest(BaseModel):
    """Design guides for one target of a genome: exactly one of ``gene``, ``region`` and
    ``sequence``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"genome": "yeast", "gene": "ADE2", "nuclease": "SpCas9", "max_mismatches": 4}
            ],
            # exactly one target given (and not null)
            "oneOf": [
                {"required": [key], "properties": {key: {"type": "string"}}}
                for key in ("gene", "region", "sequence")
            ],
        },
    )

    genome: GenomeName
    gene: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_NAME_CHARS,
        description="A gene symbol, alias or ID (case-insensitive), e.g. `ADE2`.",
        json_schema_extra={"pattern": r"\S"},
    )
    region: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_NAME_CHARS,
        description="`chrom:start-end`, 1-based inclusive, e.g. `XV:564476-566191`.",
        json_schema_extra={"pattern": r"\S"},
    )
    sequence: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_SEQUENCE_CHARS,
        description="A DNA or RNA sequence (A, C, G, T or U, N and IUPAC codes; whitespace "
        "ignored), raw or as FASTA text (`>name` header lines, one record each). Guides' "
        "positions refer to it (to its records by name); their off-targets to the genome. "
        "400 when no record is as long as one site of the nuclease.",
        json_schema_extra={"pattern": SEQUENCE_PATTERN},
    )
    nuclease: NucleaseName = "SpCas9"
    max_mismatches: MaxMismatches = 4
    within: Literal["exons", "cds", "gene"] = Field(
        "exons",
        description="For a gene: design in its exons, its coding parts, or its whole span.",
    )

    @model_validator(mode="after")
    def _one_target(self) -> DesignRequest:
        # the domain's rule, run here so that a body without exactly one target is refused
        # like any other malformed body (422); its InputError is a ValueError
        check_one_target(**self.target_fields)
        return self

    @property
    def target_fields(self) -> dict[str, str | None]:
        """``{"gene": …, "region": …, "sequence": …}`` as given (``None``: not given)."""
        return {"gene": self.gene, "region": self.region, "sequence": self.sequence}

    @property
    def target(self) -> dict[str, str]:
        """``{"gene": …}``, ``{"region": …}`` or ``{"sequence": …}``."""
        return {k: v for k, v in self.target_fields.items() if v is not None}

    def to_request(self) -> guides_request.DesignRequest:
        """The guides domain's request (checked there: 400 or 404 when invalid)."""
        return guides_request.DesignRequest(
            **self.target,
            nuclease=self.nuclease,
            max_mismatches=self.max_mismatches,
            within=self.within,
            max_offtargets_listed=None,  # every off-target: the API pages through them
        )


class ScoreRequest(BaseModel):
    """Score up to 50 given guides (protospacers without PAM) against a genome."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"genome": "yeast", "guides": ["CTGCTCATAGAACTCCACAT"]}],
        },
    )

    genome: GenomeName
    guides: list[
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_GUIDE_CHARS,
                json_schema_extra={"pattern": GUIDE_PATTERN},
            ),
        ]
    ] = Field(
        description=f"1 to {MAX_SCORE_GUIDES} protospacers without PAM (A, C, G, T), each as "
        "long as the nuclease's.",
        json_schema_extra={"minItems": 1, "maxItems": MAX_SCORE_GUIDES},
    )
    nuclease: NucleaseName = "SpCas9"
    max_mismatches: MaxMismatches = 4
    offtargets_limit: WholeNumber = Field(
        DEFAULT_OFFTARGETS_LIMIT,
        ge=0,
        le=MAX_OFFTARGETS_LIMIT,
        description="List at most this many off-targets per guide (most dangerous first); "
        "counts stay exact.",
    )

    def to_request(self) -> guides_request.ScoreRequest:
        """The guides domain's request (checked there: 400 or 404 when invalid)."""
        return guides_request.ScoreRequest(
            self.guides,
            nuclease=self.nuclease,
            max_mismatches=self.max_mismatches,
            max_offtargets_listed=self.offtargets_limit,
        )

    @field_validator("guides")
    @classmethod
    def _count(cls, guides: list[str]) -> list[str]:
        if not guides:
            raise ValueError("give at least one guide")
        if len(guides) > MAX_SCORE_GUIDES:
            raise ValueError(
                f"{len(guides)} guides given; at most {MAX_SCORE_GUIDES} are scored per request "
                "(split the list, or use `sandgrain guides score` on the command line)"
            )
        return guides


class OffTargetAnnotation(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    class_: Literal["exon", "intron", "intergenic"] = Field(alias="class")
    genes: list[str]


class OffTarget(BaseModel):
    """One off-target site (1-based inclusive protospacer coordinates, forward strand)."""

    model_config = ConfigDict(extra="allow")

    chrom: str
    start: int
    end: int
    strand: Literal["+", "-"]
    sequence: str
    pam: str
    pam_pattern: str
    mismatches: int
    mismatch_positions: list[int]
    mit: float | None
    cfd: float | None
    annotation: OffTargetAnnotation


class SiteRef(BaseModel):
    chrom: str
    start: int
    end: int
    strand: Literal["+", "-"]


class Guide(BaseModel):
    """One guide of a design or score document (see ``docs/guides.md`` for each field)."""

    model_config = ConfigDict(extra="allow")

    rank: int
    tier: int = Field(description="1: no flag; 2: soft flags only; 3: a hard flag.")
    flags: list[str] = Field(description="What the ranking holds against the guide.")
    sequence: str
    pam: str | None
    chrom: str | None
    start: int | None
    end: int | None
    strand: Literal["+", "-"] | None
    cut: int | None
    gene: str | None = None
    exon: int | None = None
    exon_count: int | None = None
    cds_percent: float | None = None
    efficiency: float | None = Field(None, description="The score ranking uses (Rule Set 3).")
    rs3: float | None = None
    ruleset1: float | None
    crisprscan: float | None = None
    out_of_frame: float | None = None
    mit_specificity: float | None
    cfd_specificity: float | None
    score: float = Field(description="The specificity: CFD's, or the count specificity.")
    gc: float
    tttt: bool
    self_complementarity: int | None = None
    masked: int | None
    context30: str | None
    restriction_sites: list[str] | None = None
    oligos: dict[str, Any] | None = None
    primers: dict[str, Any] | None = None
    variants: list[dict[str, Any]] | None = None
    offtarget_counts: list[int]
    offtargets_total: int
    offtargets_exon: int
    offtargets_intron: int
    offtargets_intergenic: int
    offtargets_listed_truncated: bool
    on_target: SiteRef | None
    offtargets: list[OffTarget] | None


class GuideDocument(BaseModel):
    """The document of ``sandgrain guides design --format json`` (or ``guides score``)."""

    model_config = ConfigDict(extra="allow")

    provenance: dict[str, Any]
    genome: str
    target: dict[str, Any]
    nuclease: dict[str, Any]
    max_mismatches: int
    guides: list[Guide]


class OffTargetPage(BaseModel):
    """A page of one guide's off-targets, most dangerous first."""

    rank: int
    sequence: str
    total: int = Field(description="How many off-targets the guide has.")
    offset: int
    limit: int
    offtargets: list[OffTarget]


class GuideRow(Guide):
    """A guide as the result pages list it: its record without the off-target list (page through
    those with ``/api/v1/jobs/{id}/guides/{rank}/offtargets``)."""

    offtargets: list[OffTarget] | None = Field(None, description="Not listed here.")


class GuidePage(BaseModel):
    """A page of a design's guides, sorted and filtered on the server."""

    total: int = Field(description="How many guides the design has.")
    matched: int = Field(description="How many of them pass the filters.")
    offset: int
    limit: int
    sort: str
    order: Literal["ascending", "descending"]
    guides: list[GuideRow]


class GuideCount(BaseModel):
    """How many guides a design would have (its candidate sites), counted without searching."""

    genome: str
    target: dict[str, Any] = Field(description="The target's type, name and length (bp).")
    nuclease: str
    guides: int = Field(description="Candidate sites of the nuclease in the target.")
    large: bool = Field(description="More guides than ``large_above``: the page warns first.")
    large_above: int


class ScoreBin(BaseModel):
    min: float | None = Field(description="Lowest value in the bin (None: the lowest bin).")
    label: str
    colour: str


class GuideExtent(BaseModel):
    chrom: str
    start: int
    end: int
    guides: int


class GuideOverview(BaseModel):
    """A design without its guides: what the result page shows above the table, the colour
    bins of the scores (``legend``) and the downloads."""

    model_config = ConfigDict(extra="allow")

    provenance: dict[str, Any]
    genome: str
    target: dict[str, Any]
    nuclease: dict[str, Any]
    max_mismatches: int
    ranking: dict[str, Any] | None = None
    guide_count: int
    flag_counts: dict[str, int]
    extent: list[GuideExtent]
    legend: dict[str, list[ScoreBin]]
    downloads: dict[str, dict[str, str]]


class DensityBins(BaseModel):
    """Guides counted in equal bins of the drawn range, per strand and tier (1, 2, 3, none)."""

    width: float = Field(description="Bases per bin.")
    plus: list[list[int]]
    minus: list[list[int]]


class GuideTrack(BaseModel):
    """The guides to draw over ``chrom:start-end``: each one (``marks``) when they are few
    enough, else their density (``bins``)."""

    chrom: str
    start: int
    end: int
    matched: int
    marks: list[GuideRow] | None
    bins: DensityBins | None


# --------------------------------------------------------------------------------------------
# jobs
# --------------------------------------------------------------------------------------------


class JobCreated(BaseModel):
    id: str


class JobInfo(BaseModel):
    """A job: poll it until ``status`` is ``done``, ``failed`` or ``cancelled``."""

    id: str
    kind: str
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float = Field(ge=0, le=1)
    message: str | None
    error: str | None
    created: str
    started: str | None
    finished: str | None
    params: dict[str, Any]
    cancel_requested: bool
    result_url: str | None = Field(description="Where the result is, once the job is done.")


class CompositionDocument(BaseModel):
    """The result of a ``genome.composition`` job: base counts per chromosome."""

    model_config = ConfigDict(extra="allow")

    provenance: dict[str, Any]
    genome: str
    chromosomes: list[dict[str, Any]]
