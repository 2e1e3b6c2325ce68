"""The IUPAC nucleotide codes (Nomenclature Committee of the International Union of
Biochemistry, 1985): ``A C G T`` and the ambiguity codes ``R Y S W K M B D H V N``, each with the
bases it stands for. One table for every domain: the guides' PAM patterns
(:mod:`sandgrain.guides.iupac`) and the strains' alignment masks (:mod:`sandgrain.strains.align`).
"""

from __future__ import annotations

__all__ = ["CODES"]

#: Each IUPAC code and the concrete bases it stands for.
CODES: dict[str, str] = {
    "A": "A",
    "C": "C",
    "G": "G",
    "T": "T",
    "R": "AG",
    "Y": "CT",
    "S": "CG",
    "W": "AT",
    "K": "GT",
    "M": "AC",
    "B": "CGT",
    "D": "AGT",
    "H": "ACT",
    "V": "ACG",
    "N": "ACGT",
}
