"""Per-guide sequence features: GC warnings, self-complementarity, restriction sites at the
cut, and cloning oligos.

Pure functions on strings; each says which published tool or protocol it follows.

GC content
    :func:`gc_flags` follows CHOPCHOP (Labun et al. 2016, Nucleic Acids Res 44:W272; Labun et al.
    2019, Nucleic Acids Res 47:W171): its command-line tool penalises a guide whose protospacer GC
    content lies outside :data:`GC_LOW`–:data:`GC_HIGH` percent (``GC_LOW = 40``,
    ``GC_HIGH = 70``, strict inequalities, the PAM left out).
Self-complementarity
    :func:`self_complementarity` is CHOPCHOP's count (Labun et al. 2016, "self-complementarity";
    ``STEM_LEN = 4``) — see the function for the exact rule.
Restriction sites
    :func:`restriction_sites` lists the enzymes of :data:`COMMON_ENZYMES` whose recognition site
    spans the cut, i.e. sites an indel at the cut destroys: the RFLP screen CRISPOR offers
    (Haeussler et al. 2016, Genome Biol 17:148).
Cloning oligos
    :func:`cloning_oligos` gives the annealed-oligo pair for the U6 sgRNA vectors of the Zhang
    lab (Ran et al. 2013, Nat Protoc 8:2281; Sanjana, Shalem & Zhang 2014, Nat Methods 11:783).
"""

from __future__ import annotations

import functools

from ..errors import InputError
from ..genome.regions import reverse_complement
from .iupac import check_pattern, compile_regex, reverse_complement_pattern

__all__ = [
    "CHOPCHOP_BACKBONE",
    "CLONING_SYSTEMS",
    "COMMON_ENZYMES",
    "GC_HIGH",
    "GC_LOW",
    "SELF_COMPLEMENTARITY_MAX",
    "STEM_LEN",
    "cloning_oligos",
    "feature_flags",
    "gc_flags",
    "gc_percent",
    "restriction_sites",
    "restriction_sites_anywhere",
    "self_complementarity",
]

#: GC percent of the protospacer below which a guide is flagged ``gc_low`` (CHOPCHOP's
#: ``GC_LOW``).
GC_LOW = 40.0
#: GC percent above which a guide is flagged ``gc_high`` (CHOPCHOP's ``GC_HIGH``).
GC_HIGH = 70.0

#: Length of a self-complementary stretch (CHOPCHOP's ``STEM_LEN``).
STEM_LEN = 4
#: The part of the SpCas9 sgRNA backbone CHOPCHOP checks for pairing with the guide by default
#: (the web server's ``--backbone AGGCTAGTCCGT``: the stem of the nexus, bases 33–44 of the
#: scaffold ``GTTTTAGAGCTAGAAATAGCAAGTTAAAATAAGGCTAGTCCGTTATCA…``), given on the guide's strand.
CHOPCHOP_BACKBONE = "AGGCTAGTCCGT"
#: A guide is flagged ``self_complementary`` when :func:`self_complementarity` exceeds this.
#: CHOPCHOP sets no threshold by default: it shows the count and adds one ranking penalty point
#: per stretch (``--filterSelfCompMax``, a hard filter, is off unless asked). Any stretch at all
#: is common (about 45 % of random 20-mers with the default backbone, 17 % have 2 or more, 5 %
#: more than 2), so this flag — our choice, not CHOPCHOP's — marks only guides with more than
#: 2 stretches, where pairing within the guide or with the backbone (Thyme et al. 2016, Nat
#: Commun 7:11750) is most likely.
SELF_COMPLEMENTARITY_MAX = 2

#: Commercially common Type II restriction enzymes and their recognition sequences (5'→3',
#: IUPAC codes), from REBASE (Roberts et al. 2023, Nucleic Acids Res 51:D629) and the NEB
#: catalogue. Type IIS enzymes (BbsI, BsaI, BsmBI) cut outside their site, but an indel in the
#: site still destroys it.
COMMON_ENZYMES: dict[str, str] = {
    "AatII": "GACGTC",
    "AgeI": "ACCGGT",
    "AluI": "AGCT",
    "ApaI": "GGGCCC",
    "AscI": "GGCGCGCC",
    "AvaI": "CYCGRG",
    "AvrII": "CCTAGG",
    "BamHI": "GGATCC",
    "BbsI": "GAAGAC",
    "BglII": "AGATCT",
    "BsaI": "GGTCTC",
    "BsmBI": "CGTCTC",
    "BsrGI": "TGTACA",
    "BstBI": "TTCGAA",
    "BstNI": "CCWGG",
    "ClaI": "ATCGAT",
    "DdeI": "CTNAG",
    "DpnII": "GATC",
    "EcoRI": "GAATTC",
    "EcoRV": "GATATC",
    "HaeIII": "GGCC",
    "HhaI": "GCGC",
    "HindIII": "AAGCTT",
    "HinfI": "GANTC",
    "HpaI": "GTTAAC",
    "KpnI": "GGTACC",
    "MfeI": "CAATTG",
    "MluI": "ACGCGT",
    "MseI": "TTAA",
    "MspI": "CCGG",
    "NcoI": "CCATGG",
    "NdeI": "CATATG",
    "NheI": "GCTAGC",
    "NlaIII": "CATG",
    "NotI": "GCGGCCGC",
    "NsiI": "ATGCAT",
    "PstI": "CTGCAG",
    "PvuI": "CGATCG",
    "PvuII": "CAGCTG",
    "RsaI": "GTAC",
    "SacI": "GAGCTC",
    "SalI": "GTCGAC",
    "Sau96I": "GGNCC",
    "ScaI": "AGTACT",
    "SmaI": "CCCGGG",
    "SpeI": "ACTAGT",
    "SphI": "GCATGC",
    "StuI": "AGGCCT",
    "TaqI": "TCGA",
    "XbaI": "TCTAGA",
    "XhoI": "CTCGAG",
}

#: U6 sgRNA cloning systems: the Type IIS enzyme that opens the vector, the overhangs the
#: annealed oligos carry (forward 5' ``CACC``, reverse 5' ``AAAC``) and the vectors. Ran et al.
#: 2013 (Nat Protoc 8:2281, Box 1/Step 5) for pX330/pX458/pX459 (BbsI); the Zhang lab's
#: lentiCRISPRv2/lentiGuide-Puro protocol (Sanjana et al. 2014) for BsmBI. Both use the same
#: overhangs.
CLONING_SYSTEMS: dict[str, dict] = {
    "U6-BsmBI": {
        "enzyme": "BsmBI",
        "vectors": ["lentiCRISPRv2", "lentiGuide-Puro"],
        "forward_overhang": "CACC",
        "reverse_overhang": "AAAC",
    },
    "U6-BbsI": {
        "enzyme": "BbsI",
        "vectors": ["pX330", "pX458", "pX459"],
        "forward_overhang": "CACC",
        "reverse_overhang": "AAAC",
    },
}


def _check_dna(seq: str, what: str = "protospacer") -> str:
    if not isinstance(seq, str):
        raise InputError(f"{what} must be text of A, C, G, T, not {seq!r}")
    text = seq.strip().upper()
    if not text:
        raise InputError(f"{what} is empty")
    bad = set(text) - set("ACGT")
    if bad:
        raise InputError(
            f"{what} {seq.strip()!r} contains {''.join(sorted(bad))!r}; only A, C, G, T allowed"
        )
    return text


def gc_percent(protospacer: str) -> float:
    """GC content of the protospacer (PAM excluded), in percent."""
    text = _check_dna(protospacer)
    return 100.0 * (text.count("G") + text.count("C")) / len(text)


def gc_flags(protospacer: str) -> list[str]:
    """``["gc_low"]`` when the protospacer's GC percent is below :data:`GC_LOW`,
    ``["gc_high"]`` when above :data:`GC_HIGH`, else ``[]`` (CHOPCHOP's rule, see the module).

    >>> gc_flags("ATATATATATATATATGCAT")
    ['gc_low']
    >>> gc_flags("GACGCATAAAGATGAGACGC")
    []
    """
    gc = gc_percent(protospacer)
    if gc < GC_LOW:
        return ["gc_low"]
    if gc > GC_HIGH:
        return ["gc_high"]
    return []


def self_complementarity(protospacer: str, scaffold: str | None = CHOPCHOP_BACKBONE) -> int:
    """CHOPCHOP's self-complementarity count of a guide (Labun et al. 2016, 2019).

    The number of 4-base stretches (:data:`STEM_LEN`) of the protospacer, at least half G/C,
    that can pair with a later part of the guide or with the sgRNA backbone. With ``s`` the
    protospacer (PAM excluded), ``n = len(s)`` and ``w_i = s[i:i+4]``, stretch ``i`` counts for
    ``0 <= i < n - 4`` (CHOPCHOP's loop leaves out the last stretch) when ``GC(w_i) >= 50 %`` and

    * the reverse complement of ``w_i`` occurs in ``s`` starting at ``p >= i + 5`` (a stem of 4
      with a loop of at least one base: CHOPCHOP searches ``w_i`` in the first ``n - 5 - i``
      bases of the reverse complement of ``s``), or
    * ``w_i`` occurs in the reverse complement of ``scaffold`` (the backbone as written on the
      guide's strand; ``None`` or ``""`` for none), i.e. the stretch can pair with the backbone.

    A stretch counts once even when it pairs in several places.

    >>> self_complementarity("GGGGAAAACCCCAAAAAAAA", scaffold=None)
    1
    """
    s = _check_dna(protospacer)
    backbone = reverse_complement(_check_dna(scaffold, "scaffold")) if scaffold else ""
    n = len(s)
    count = 0
    for i in range(n - STEM_LEN):
        w = s[i : i + STEM_LEN]
        if (w.count("G") + w.count("C")) * 2 < STEM_LEN:
            continue
        rc = reverse_complement(w)
        pairs_guide = s.find(rc, i + STEM_LEN + 1) >= 0
        if pairs_guide or w in backbone:
            count += 1
    return count


def _enzyme_patterns(enzymes: dict[str, str]):
    """Each enzyme's site compiled for both strands; the default table's once per process."""
    if enzymes is COMMON_ENZYMES:
        return _common_patterns()
    return _compile_enzymes(tuple(enzymes.items()))


@functools.cache
def _common_patterns():
    return _compile_enzymes(tuple(COMMON_ENZYMES.items()))


def _compile_enzymes(items: tuple[tuple[str, str], ...]):
    compiled = []
    for name, site in items:
        site = check_pattern(site, f"recognition site of {name}")
        rxs = {compile_regex(site), compile_regex(reverse_complement_pattern(site))}
        compiled.append((name, len(site), tuple(rxs)))
    return compiled


def restriction_sites(window: str, cut: int, enzymes: dict[str, str] | None = None) -> list[str]:
    """Enzymes whose recognition site, on either strand, spans the cut in ``window``.

    ``cut`` is a boundary: the cut lies between ``window[cut - 1]`` and ``window[cut]``. A site
    at ``window[s : s + len]`` spans it when ``s < cut < s + len``; an indel at the cut then
    destroys the site, which an RFLP assay (digest of the PCR product) detects. Genome ``N``
    matches no site; case is ignored. Returns enzyme names in alphabetical order. ``enzymes``
    maps names to IUPAC recognition sequences (default :data:`COMMON_ENZYMES`).

    Sites that an edit would *create* depend on the edit and are not listed.

    >>> restriction_sites("TTTGAATTCTTT", 6)
    ['EcoRI']
    """
    if not isinstance(window, str):
        raise InputError("window must be a DNA sequence")
    if isinstance(cut, bool) or not isinstance(cut, int) or not 0 < cut < len(window):
        raise InputError(f"cut {cut!r} must lie inside the window (1–{len(window) - 1})")
    text = window.upper()
    found = []
    for name, length, rxs in _enzyme_patterns(enzymes or COMMON_ENZYMES):
        lo = max(0, cut - length + 1)
        hi = min(len(text) - length, cut - 1)
        if any(rx.match(text, s) for rx in rxs for s in range(lo, hi + 1)):
            found.append(name)
    return sorted(found, key=str.lower)


def cloning_oligos(protospacer: str, system: str = "U6-BsmBI") -> dict:
    """The annealed-oligo pair that clones a SpCas9 guide into a U6 sgRNA vector.

    Following Ran et al. 2013 (Nat Protoc 8:2281) and the Zhang lab's lentiCRISPRv2 protocol:

    * forward ``5'-CACC[G]N20-3'``, reverse ``5'-AAAC N20' [C]-3'`` (``N20'`` the reverse
      complement of the protospacer), so that the annealed pair has the overhangs of the vector
      opened with the system's Type IIS enzyme (:data:`CLONING_SYSTEMS`);
    * the U6 promoter starts transcription at a G: when the protospacer does not start with G,
      a G is added after ``CACC`` (and the matching C at the reverse oligo's 3' end), and
      ``note`` says so.

    Returns ``{"system", "enzyme", "vectors", "forward", "reverse", "added_g", "note"}``;
    ``note`` also warns when the protospacer holds a site of the cloning enzyme (the oligos
    would be cut during a one-pot Golden Gate reaction) or ``TTTT`` (ends U6 transcription).
    """
    if system not in CLONING_SYSTEMS:
        raise InputError(
            f"unknown cloning system {system!r}; choose one of {', '.join(CLONING_SYSTEMS)}"
        )
    spec = CLONING_SYSTEMS[system]
    s = _check_dna(protospacer)
    added_g = not s.startswith("G")
    insert = ("G" if added_g else "") + s
    forward = spec["forward_overhang"] + insert
    reverse = spec["reverse_overhang"] + reverse_complement(insert)
    notes = []
    if added_g:
        notes.append(
            "a G was added at the 5' end of the guide for transcription from the U6 promoter "
            "(the guide does not start with G)"
        )
    enzyme = spec["enzyme"]
    if restriction_sites_anywhere(insert, {enzyme: COMMON_ENZYMES[enzyme]}):
        notes.append(
            f"the guide contains a {enzyme} site: cut the vector first and ligate without "
            f"{enzyme}, or choose another guide"
        )
    if "TTTT" in s:
        notes.append("the guide contains TTTT, which ends transcription from the U6 promoter")
    return {
        "system": system,
        "enzyme": enzyme,
        "vectors": list(spec["vectors"]),
        "forward": forward,
        "reverse": reverse,
        "added_g": added_g,
        "note": "; ".join(notes) or None,
    }


def restriction_sites_anywhere(seq: str, enzymes: dict[str, str] | None = None) -> list[str]:
    """Enzymes of ``enzymes`` (default :data:`COMMON_ENZYMES`) with a site anywhere in ``seq``,
    either strand, in alphabetical order."""
    text = seq.upper()
    return sorted(
        (
            name
            for name, _, rxs in _enzyme_patterns(enzymes or COMMON_ENZYMES)
            if any(rx.search(text) for rx in rxs)
        ),
        key=str.lower,
    )


def feature_flags(protospacer: str, scaffold: str | None = CHOPCHOP_BACKBONE) -> list[str]:
    """The sequence flags of a guide from this module: :func:`gc_flags` and
    ``"self_complementary"`` when :func:`self_complementarity` exceeds
    :data:`SELF_COMPLEMENTARITY_MAX`."""
    flags = gc_flags(protospacer)
    if self_complementarity(protospacer, scaffold) > SELF_COMPLEMENTARITY_MAX:
        flags.append("self_complementary")
    return flags
