"""Association: which variants go with a trait.

Genotypes from VCF/BCF (:mod:`.genotypes`, stored 2 bits per call), traits and covariates by
sample id (:mod:`.phenotypes_table`), classical per-variant tests (:mod:`.tests_classical`),
Manhattan and QQ plots (:mod:`.plots`) and a wide random forest (:mod:`.forest`).
"""
