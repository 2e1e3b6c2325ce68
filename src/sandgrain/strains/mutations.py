"""Mutation calls of an aligned genome, in Nextclade's notation and 1-based reference coordinates.

Nucleotides (Nextclade's "mutation calling", docs.nextstrain.org/projects/nextclade, algorithm
section 5): ``substitutions`` ``C241T`` (A/C/G/T only); ``deletions`` ``del:11288-11296``
(inclusive ranges of deleted reference bases); ``insertions`` ``ins:22204:GAGCCAGAA`` (bases after
reference position 22204); ``missing`` ``1-54`` (inclusive ranges that are N in the genome or
that it does not reach: its trimmed ends); ``mixed`` ``C241Y`` (IUPAC ambiguity codes other than
N, Nextclade's "non-ACGTN" sites; never substitutions). Indels are left-aligned
(:mod:`sandgrain.strains.align`).

Amino acids, per coding sequence of the reference's annotation (GenBank CDS, parts joined in
order, so the −1 ribosomal slippage of a ``join(266..13468,13468..21555)`` ORF1ab reads the
shared base twice): ``aa_substitutions`` ``S:D614G``, ``aa_deletions`` ``ORF1a:S3675-``,
``frame_shifts`` ``ORF3a:257-276`` (codon range of the reference protein read out of frame,
from the first frame-shifting indel to the one that restores the frame, or to the end of the
gene), ``stop_codons`` ``ORF8:Q27*`` (premature stops, the gene's last codon excepted).
A codon with N or an ambiguity code reads as X and is not called. Codons touched by an in-frame
indel are translated together and placed against the reference protein to maximise identical
amino acids, deletions as far left as ties allow (Nextclade's S:H69-/V70- and S:Y144- come out
this way). Amino-acid insertions are not listed (the nucleotide insertion is).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import cached_property

import numpy as np

from .align import CODE2, LETTER, Alignment, Reference
from .align_kernels import OP_DEL, OP_INS, OP_MATCH, OP_QRY_OVERHANG, OP_REF_OVERHANG

__all__ = ["CALL_FIELDS", "Calls", "CodingSequence", "call_mutations", "coding_sequences"]

_CODON_TABLE = "KNKNTTTTRSRSIIMIQHQHPPPPRRRRLLLLEDEDAAAAGGGGVVVV*Y*YSSSS*CWCLFLF"
#: 2-bit codon index (first base × 16 + second × 4 + third, A=0 C=1 G=2 T=3) → amino acid
AA = np.frombuffer(_CODON_TABLE.encode(), dtype=np.uint8)
#: complement of a base mask (A↔T, C↔G)
_COMPLEMENT = np.array(
    [((m & 1) << 3) | ((m & 2) << 1) | ((m & 4) >> 1) | ((m & 8) >> 3) for m in range(16)],
    dtype=np.uint8,
)
#: The list fields of :class:`Calls`, in the order they are shown.
LIST_FIELDS = (
    "substitutions",
    "deletions",
    "insertions",
    "missing",
    "mixed",
    "aa_substitutions",
    "aa_deletions",
    "frame_shifts",
    "stop_codons",
)


@dataclass
class Calls:
    """What one genome differs from the reference by (module docstring for the notation)."""

    strain: str
    substitutions: list[str] = field(default_factory=list)
    deletions: list[str] = field(default_factory=list)
    insertions: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mixed: list[str] = field(default_factory=list)
    aa_substitutions: list[str] = field(default_factory=list)
    aa_deletions: list[str] = field(default_factory=list)
    frame_shifts: list[str] = field(default_factory=list)
    stop_codons: list[str] = field(default_factory=list)
    length: int = 0  #: bases of the genome as read (gaps dropped)
    n_count: int = 0  #: N in the genome
    #: the longest run of N inside the genome: runs at its ends are unsequenced ends, the same
    #: missing data whether a lab writes them as N or cuts them (both count in ``missing``)
    longest_n_run: int = 0
    alignment_start: int = 0  #: first and last reference position reached (1-based; 0 if none)
    alignment_end: int = 0
    alignment_score: int = 0
    error: str = ""  #: why the genome could not be aligned (then nothing else is called)
    qc: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


#: Every field of :class:`Calls`, in order (the columns of a collection's calls table).
CALL_FIELDS = tuple(Calls.__dataclass_fields__)


@dataclass(frozen=True)
class CodingSequence:
    """One CDS of the reference: its name and the 0-based reference positions of its bases in
    reading order (several parts joined; minus-strand genes read backwards and complemented)."""

    name: str
    positions: np.ndarray
    strand: str = "+"

    @property
    def codons(self) -> int:
        return self.positions.size // 3

    @cached_property
    def span(self) -> tuple[int, int]:
        """The first and last reference position the CDS reads (0-based, inclusive)."""
        return int(self.positions.min()), int(self.positions.max())


def coding_sequences(genes: Iterable, length: int) -> list[CodingSequence]:
    """The coding sequences of a gene table (:class:`~sandgrain.genome.annotation.genes.Gene`
    objects with ``cds`` parts), in order of start; parts are joined as listed (sorted by start,
    overlaps kept: a ribosomal slippage reads its base twice)."""
    out = []
    for gene in sorted(genes, key=lambda g: (g.start0, g.symbol)):
        if not gene.cds:
            continue
        pos = np.concatenate([np.arange(s, e, dtype=np.int64) for s, e in gene.cds])
        if pos.size < 3 or pos.max() >= length:
            continue
        pos = pos[: pos.size - pos.size % 3]
        if gene.strand == "-":
            pos = pos[::-1].copy()
        out.append(CodingSequence(gene.symbol or gene.gene_id, pos, gene.strand))
    return out


def _ranges(positions: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive 0-based positions as (first, last) inclusive pairs."""
    if not positions.size:
        return []
    brk = np.flatnonzero(np.diff(positions) != 1) + 1
    starts = np.concatenate(([0], brk))
    ends = np.concatenate((brk, [positions.size])) - 1
    return list(zip(positions[starts].tolist(), positions[ends].tolist(), strict=True))


def call_mutations(
    ref: Reference, cds: list[CodingSequence], alignment: Alignment, strain: str
) -> Calls:
    """Call every nucleotide and amino-acid difference of one aligned genome."""
    ops, q, rm = alignment.ops, alignment.query, ref.masks
    n = rm.size
    uses_r = (ops == OP_MATCH) | (ops == OP_DEL) | (ops == OP_REF_OVERHANG)
    uses_q = (ops == OP_MATCH) | (ops == OP_INS) | (ops == OP_QRY_OVERHANG)
    r_at = np.cumsum(uses_r) - 1  # reference index each op uses (valid where it uses one)
    q_at = np.cumsum(uses_q) - 1
    is_m = ops == OP_MATCH
    m_r, m_q = r_at[is_m], q[q_at[is_m]]
    # the genome in reference coordinates: its base mask, 0 where deleted, 15 where not reached
    qref = np.full(n, 15, dtype=np.uint8)
    qref[m_r] = m_q
    qref[r_at[ops == OP_DEL]] = 0
    single = CODE2[m_q] != 4
    sub = single & (m_q != rm[m_r])
    letters = LETTER
    calls = Calls(strain=strain, length=int(q.size), alignment_score=alignment.score)
    calls.substitutions = [
        f"{chr(letters[rm[p]])}{p + 1}{chr(letters[b])}"
        for p, b in zip(m_r[sub].tolist(), m_q[sub].tolist(), strict=True)
    ]
    mixed = ~single & (m_q != 15)
    calls.mixed = [
        f"{chr(letters[rm[p]])}{p + 1}{chr(letters[b])}"
        for p, b in zip(m_r[mixed].tolist(), m_q[mixed].tolist(), strict=True)
    ]
    missing = np.flatnonzero(qref == 15)
    calls.missing = [f"{a + 1}-{b + 1}" for a, b in _ranges(missing)]
    deleted = np.flatnonzero(qref == 0)
    calls.deletions = [f"del:{a + 1}-{b + 1}" for a, b in _ranges(deleted)]
    insertions: dict[int, str] = {}  # after reference position (1-based, 0 = before the first)
    ins_ops = np.flatnonzero(ops == OP_INS)
    if ins_ops.size:
        r_before = np.cumsum(uses_r) - uses_r  # reference bases before each op
        brk = np.flatnonzero(np.diff(ins_ops) != 1) + 1
        for run in np.split(ins_ops, brk):
            after = int(r_before[run[0]])
            insertions[after] = LETTER[q[q_at[run]]].tobytes().decode()
    calls.insertions = [f"ins:{p}:{s}" for p, s in insertions.items()]
    reached = np.flatnonzero(r_at[is_m | (ops == OP_DEL)] >= 0)
    if reached.size:
        covered = r_at[is_m | (ops == OP_DEL)]
        calls.alignment_start, calls.alignment_end = int(covered[0]) + 1, int(covered[-1]) + 1
    is_n = (q == 15).astype(np.int8)
    calls.n_count = int(is_n.sum())
    if calls.n_count:
        edges = np.diff(np.concatenate(([0], is_n, [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        inside = (starts > 0) & (ends < is_n.size)
        calls.longest_n_run = int((ends - starts)[inside].max(initial=0))
    # differing bases before each reference position: a CDS over which the genome reads as the
    # reference (most of them, in a genome with a few dozen differences) has nothing to call
    differs = np.concatenate(([0], np.cumsum(qref != rm)))
    for c in cds:
        lo, hi = c.span
        if differs[hi + 1] == differs[lo] and not insertions:
            continue
        _call_cds(c, rm, qref, insertions, calls)
    return calls


def _translate(masks: np.ndarray) -> np.ndarray:
    """Amino acids (ASCII) of codons given as an (n, 3) array of base masks; X where a codon
    has N, an ambiguity code or a gap."""
    c2 = CODE2[masks].astype(np.int64)
    good = (c2 < 4).all(axis=1)
    idx = np.where(good, c2[:, 0] * 16 + c2[:, 1] * 4 + c2[:, 2], 0)
    return np.where(good, AA[idx], ord("X")).astype(np.uint8)


def _call_cds(c: CodingSequence, rm, qref, insertions: dict[int, str], calls: Calls) -> None:
    rc = rm[c.positions]
    qc = qref[c.positions]
    if c.strand == "-":
        rc, qc = _COMPLEMENT[rc], np.where(qc == 0, 0, _COMPLEMENT[qc]).astype(np.uint8)
    ncod = c.codons
    # Only codons whose bases differ from the reference's can read as another amino acid, so
    # only those are translated (a genome differs in a few dozen places; the CDS has thousands).
    changed = np.flatnonzero((qc != rc).reshape(-1, 3).any(axis=1))
    events = _cds_events(c, qc, insertions) if changed.size or insertions else []
    if not changed.size and not events:
        return
    ref_codons = rc.reshape(-1, 3)
    blocked = np.zeros(ncod, dtype=bool)  # codons called by the indel logic below instead
    subs: list[tuple[int, str]] = []
    dels: list[tuple[int, str]] = []
    stops: list[tuple[int, str]] = []
    shifts: list[tuple[int, str]] = []
    for group, net in _event_groups(events):
        first = min(_touched(e)[0] for e in group)
        last = max(_touched(e)[1] for e in group)
        if net % 3 or len(group) > 1 and _shifts_frame(group):
            end = ncod - 1 if net % 3 else last
            blocked[first : end + 1] = True
            shifts.append((first, f"{c.name}:{first + 1}-{end + 1}"))
            continue
        if last < first:  # an in-frame insertion between two codons: no codon changes
            continue
        blocked[first : last + 1] = True
        seq = _query_bases(c, qc, insertions, first, last, group)
        q_aa = _translate_text(seq)
        r_aa = _translate(ref_codons[first : last + 1]).tobytes().decode()
        for kind, pos, r, a in _place(r_aa, q_aa):
            codon = first + pos
            if kind == "del":
                dels.append((codon, f"{c.name}:{r}{codon + 1}-"))
            elif a != "X" and a != r:
                subs.append((codon, f"{c.name}:{r}{codon + 1}{a}"))
                if a == "*" and codon < ncod - 1:
                    stops.append((codon, f"{c.name}:{r}{codon + 1}*"))
    # codons untouched by indels: compare one to one
    todo = changed[~blocked[changed]]
    ref_aa = _translate(ref_codons[todo])
    qry_aa = _translate(qc.reshape(-1, 3)[todo])
    keep = (qry_aa != ref_aa) & (qry_aa != ord("X"))
    for k, r, a in zip(
        todo[keep].tolist(),
        ref_aa[keep].tobytes().decode(),
        qry_aa[keep].tobytes().decode(),
        strict=True,
    ):
        subs.append((k, f"{c.name}:{r}{k + 1}{a}"))
        if a == "*" and k < ncod - 1:
            stops.append((k, f"{c.name}:{r}{k + 1}*"))
    calls.aa_substitutions.extend(s for _, s in sorted(subs))
    calls.aa_deletions.extend(s for _, s in sorted(dels))
    calls.stop_codons.extend(s for _, s in sorted(stops))
    calls.frame_shifts.extend(s for _, s in sorted(shifts))


def _cds_events(c: CodingSequence, qc: np.ndarray, insertions: dict[int, str]) -> list[tuple]:
    """Indels inside one CDS, in reading order: ``("del", t0, t1)`` (CDS bases t0..t1-1
    deleted) and ``("ins", t, text)`` (bases inserted after CDS base t)."""
    events: list[tuple] = []
    for a, b in _ranges(np.flatnonzero(qc == 0)):
        events.append(("del", a, b + 1))
    if insertions and c.strand == "+":
        pos = c.positions
        for after, text in insertions.items():
            p = after - 1  # 0-based reference base before the insertion
            t = np.flatnonzero(pos[:-1] == p)
            t = t[pos[t + 1] == p + 1] if t.size else t
            if t.size:
                events.append(("ins", int(t[0]), text))
    events.sort(key=lambda e: (e[1], e[0]))
    return events


def _touched(e: tuple) -> tuple[int, int]:
    """First and last codon an indel changes (last < first: none, an insertion between two)."""
    if e[0] == "del":
        return e[1] // 3, (e[2] - 1) // 3
    t = e[1]
    if (t + 1) % 3 == 0:
        return (t + 1) // 3, t // 3
    return t // 3, t // 3


def _net(e: tuple) -> int:
    return -(e[2] - e[1]) if e[0] == "del" else len(e[2])


def _event_groups(events: list[tuple]) -> list[tuple[list[tuple], int]]:
    """Indels grouped: a group runs from an indel taken in frame until the frame is restored,
    and groups of in-frame indels that change a common codon are joined."""
    groups: list[tuple[list[tuple], int]] = []
    current: list[tuple] = []
    offset = 0
    for e in events:
        current.append(e)
        offset += _net(e)
        if offset % 3 == 0:
            if groups and not _shifts_frame(current) and not _shifts_frame(groups[-1][0]):
                prev_last = max(_touched(x)[1] for x in groups[-1][0])
                if min(_touched(x)[0] for x in current) <= prev_last:
                    groups[-1] = (groups[-1][0] + current, groups[-1][1] + sum(map(_net, current)))
                    current, offset = [], 0
                    continue
            groups.append((current, sum(map(_net, current))))
            current, offset = [], 0
    if current:
        groups.append((current, sum(map(_net, current))))
    return groups


def _shifts_frame(group: list[tuple]) -> bool:
    """Whether the reading frame is off between the indels of a group."""
    offset = 0
    for e in group[:-1]:
        offset += _net(e)
        if offset % 3:
            return True
    return False


def _query_bases(c, qc, insertions, first: int, last: int, group: list[tuple]) -> str:
    """The genome's bases over codons ``first..last`` of a CDS, insertions included."""
    ins_after = {e[1]: e[2] for e in group if e[0] == "ins"}
    out = []
    for t in range(3 * first, 3 * last + 3):
        if qc[t]:
            out.append(chr(LETTER[qc[t]]))
        if t in ins_after:
            text = ins_after[t]
            if c.strand == "-":
                text = text[::-1].translate(str.maketrans("ACGTRYKMBVDH", "TGCAYRMKVBHD"))
            out.append(text)
    return "".join(out)


def _translate_text(seq: str) -> str:
    from .align import encode

    masks = encode(seq)
    masks = masks[: masks.size - masks.size % 3]
    return _translate(masks.reshape(-1, 3)).tobytes().decode()


def _place(r: str, q: str) -> list[tuple[str, int, str, str]]:
    """Reference amino acids ``r`` against the genome's ``q`` (one of them longer, by whole
    amino acids): the placement with the most identical pairs, gaps as far left as ties allow.
    Returns ``(kind, index in r, ref aa, genome aa)`` for pairs (``"pair"``) and for reference
    amino acids without a partner (``"del"``); genome amino acids without one are insertions."""
    n, m = len(r), len(q)
    # f[i][j]: most identities placing r[:i] against q[:j] (gaps only on the longer side)
    f = np.full((n + 1, m + 1), -1, dtype=np.int64)
    f[0, 0] = 0
    for i in range(n + 1):
        for j in range(m + 1):
            if i and j and f[i - 1, j - 1] >= 0:
                same = int(r[i - 1] == q[j - 1] and q[j - 1] != "X")
                f[i, j] = max(f[i, j], f[i - 1, j - 1] + same)
            if n > m and i and f[i - 1, j] >= 0:
                f[i, j] = max(f[i, j], f[i - 1, j])
            if m > n and j and f[i, j - 1] >= 0:
                f[i, j] = max(f[i, j], f[i, j - 1])
    out = []
    i, j = n, m
    while i or j:  # from the end, pairs first: gaps end up leftmost among equals
        if i and j:
            same = int(r[i - 1] == q[j - 1] and q[j - 1] != "X")
            if f[i - 1, j - 1] >= 0 and f[i, j] == f[i - 1, j - 1] + same:
                out.append(("pair", i - 1, r[i - 1], q[j - 1]))
                i, j = i - 1, j - 1
                continue
        if n > m and i:
            out.append(("del", i - 1, r[i - 1], "-"))
            i -= 1
        else:
            j -= 1
    return out[::-1]
