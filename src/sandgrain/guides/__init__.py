"""CRISPR guide design: nucleases, candidate sites, scores and genome-wide off-target search."""
