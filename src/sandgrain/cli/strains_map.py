"""``sandgrain strains map|drift|simulate``: the k-mer map, drift over time, synthetic collections.

``map`` is a command group of its own (``sandgrain strains map --collection C`` builds or updates
the map, ``sandgrain strains map export …`` writes its coordinates), so it is the Typer sub-app
:data:`app`, mounted by the strains CLI with ``app.add_typer(map_app, name="map")``; ``drift``
and ``simulate`` are plain commands the strains domain adds through ``cli_extensions``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import typer

from ..errors import InputError, NotFoundError

app = typer.Typer(
    help="The k-mer map of a collection: build it, project new genomes, refit, export.",
    no_args_is_help=False,
)


def _store(ctx: typer.Context):
    from ..storage import Store

    return Store.from_settings(ctx.obj)


def open_collection(ctx: typer.Context, name: str) -> Any:
    """The strains collection ``name`` (the one place the map commands name the collection
    API: ``Collection.open(store, name)``)."""
    from ..strains.collection import Collection

    return Collection.open(_store(ctx), name)


@app.callback(invoke_without_command=True)
def map_cmd(
    ctx: typer.Context,
    collection: str = typer.Option(None, "--collection", "-c", help="The collection's name."),
    refit: bool = typer.Option(
        False, "--refit", help="Fit the map anew and align it to the previous one (Procrustes)."
    ),
    components: int = typer.Option(
        None, "--components", min=2, help="Axes of the map (n-D); 10, or the previous map's."
    ),
    panel: int = typer.Option(
        20_000, "--panel", min=3, help="Genomes the PCA is fitted on (a hash-chosen sample)."
    ),
    k: int = typer.Option(10, "-k", min=1, max=31, help="K-mer length (first build or refit)."),
    canonical: bool = typer.Option(
        False, "--canonical", help="Count canonical k-mers (first build or refit)."
    ),
    second: str = typer.Option(
        None,
        "--second",
        help="Also compute a second embedding for display: tsne or mds.",
        metavar="[tsne|mds]",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the panel choice and the solvers."),
    batch: int = typer.Option(2000, "--batch", min=1, help="Genomes read at a time."),
    as_json: bool = typer.Option(False, "--json", help="Print the map's summary as JSON."),
) -> None:
    """Build the map of a collection, or project its new genomes onto the existing map.

    Existing coordinates never move; ``--refit`` fits a new map, aligned to the previous one.
    """
    if ctx.invoked_subcommand is not None:
        return
    if not collection:
        raise InputError("--collection is required (or a subcommand: export)")
    from ..strains.embed import update_map

    coll = open_collection(ctx, collection)
    ds = update_map(
        _store(ctx), coll, refit=refit, n_components=components, panel_size=panel, k=k,
        canonical=canonical, batch=batch, seed=seed, second=second,
    )  # fmt: skip
    meta = ds.meta
    if as_json:
        typer.echo(json.dumps({"version": ds.manifest["version"], **meta}, indent=1))
        return
    ratio = meta["explained_variance_ratio"]
    update = meta.get("update")
    what = (
        f"projected {update['projected']:,} new genomes (kept {update['kept']:,})"
        if update
        else f"fitted on {meta['n_panel']:,} genomes"
    )
    typer.echo(
        f"map of {collection}: {meta['genomes']:,} genomes, {what}; explained variance "
        f"x {ratio[0]:.1%}, y {ratio[1]:.1%}, {len(ratio)} axes {sum(ratio):.1%}",
        err=True,
    )
    if "refit" in meta and not update:
        r = meta["refit"]
        typer.echo(
            f"aligned to the previous map on {r['genomes']:,} genomes: RMSD "
            f"{r['rmsd_before']:.3g} → {r['rmsd_after']:.3g}",
            err=True,
        )


@contextlib.contextmanager
def _output(path: str):
    """A text file written atomically, or stdout for ``-``."""
    if path == "-":
        yield sys.stdout
        return
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "w") as fh:
            yield fh
        os.replace(tmp, target)
    except FileNotFoundError:
        raise InputError(f"cannot write {path}: no such folder") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value).replace("\t", " ").replace("\n", " ")


def write_tsv(table, path: str) -> None:
    """A pyarrow table as tab-separated text with a header line."""
    with _output(path) as fh:
        fh.write("\t".join(table.column_names) + "\n")
        for chunk in table.to_batches(max_chunksize=10_000):
            columns = [col.to_pylist() for col in chunk.columns]
            for row in zip(*columns, strict=True):
                fh.write("\t".join(_cell(v) for v in row) + "\n")


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    collection: str = typer.Option(..., "--collection", "-c", help="The collection's name."),
    output: str = typer.Option(
        "-", "--output", "-o", help="TSV file to write; - for stdout.", metavar="FILE"
    ),
) -> None:
    """Write the map: strain, x, y, date and every metadata column (TSV)."""
    from ..strains.embed import export_table

    coll = open_collection(ctx, collection)
    table = export_table(_store(ctx), collection, coll.metadata())
    write_tsv(table, output)
    if output != "-":
        typer.echo(f"wrote {table.num_rows:,} genomes to {output}", err=True)


def drift_cmd(
    ctx: typer.Context,
    collection: str = typer.Option(..., "--collection", "-c", help="The collection's name."),
    root: str = typer.Option(
        "reference",
        "--root",
        help="reference, or earliest (the consensus of the first genomes).",
        metavar="[reference|earliest]",
    ),
    metric: str = typer.Option(
        "substitutions",
        "--metric",
        help="substitutions, or kmers (k-mer count distance).",
        metavar="[substitutions|kmers]",
    ),
    root_days: int = typer.Option(14, "--root-days", min=0, help="Days counted as earliest."),
    window_days: int = typer.Option(30, "--window-days", min=1, help="Width of a rate window."),
    min_per_window: int = typer.Option(10, "--min-per-window", min=3),
    plot: Path = typer.Option(None, "--plot", help="Write a PNG plot here."),
    qc: str = typer.Option(
        "good,mediocre",
        "--qc",
        help="QC statuses of the genomes counted (comma-separated), or all. Bad genomes' missing "
        "data and frame shifts would bias the distances.",
        metavar="STATUSES",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the whole result as JSON."),
) -> None:
    """Drift from the root against collection date: the rate per year with its 95 % CI,
    per-window rates and a test for acceleration (genomes that fail QC left out by default)."""
    from ..provenance import provenance
    from ..strains.drift import collection_drift, plot_drift

    coll = open_collection(ctx, collection)
    got = collection_drift(
        coll, root=root, metric=metric, root_days=root_days, window_days=window_days,
        min_per_window=min_per_window, qc=qc,
    )  # fmt: skip
    found, fit, qc_left_out = got["found"], got["fit"], got["qc_left_out"]
    if plot is not None:
        plot_drift(found["years"], found["distance"], fit, plot, title=f"Drift of {collection}")
    params = {"collection": collection, "root": root, "metric": metric, "root_days": root_days,
              "window_days": window_days, "min_per_window": min_per_window, "qc": qc}  # fmt: skip
    if as_json:
        out = fit.to_dict()
        out.update(
            root_substitutions=found["root_substitutions"],
            undated=found["undated"],
            qc_left_out=qc_left_out,
            provenance=provenance("strains drift", params, []),
        )
        typer.echo(json.dumps(out, indent=1))
        return
    lo, hi = fit.rate_ci
    typer.echo(
        f"genomes\t{fit.n}\t(left out: {found['undated']} undated, {qc_left_out} by QC {qc})"
    )
    typer.echo(f"rate\t{fit.rate:.2f} {metric}/year\t95% CI {lo:.2f} to {hi:.2f}")
    if fit.rate_per_site is not None:
        typer.echo(
            f"per site\t{fit.rate_per_site:.2e}/site/year\t{fit.published_ratio:.2f}× the "
            "published SARS-CoV-2 clock (8e-4)"
        )
    acc = fit.acceleration
    verdict = (
        "accelerating" if acc["accelerating"] else "decelerating" if acc["decelerating"] else "no"
    )
    typer.echo(
        f"acceleration\t{verdict}\trate change {acc['rate_change_per_year']:.2f}/year/year, "
        f"p = {acc['p_value']:.3g}"
    )
    typer.echo("window\tgenomes\trate\t95% CI")
    for w in fit.windows:
        rate = f"{w['rate']:.2f}\t{w['ci'][0]:.2f} to {w['ci'][1]:.2f}" if "rate" in w else "\t"
        typer.echo(f"{w['start']}..{w['end']}\t{w['n']}\t{rate}")
    if plot is not None:
        typer.echo(f"wrote {plot}", err=True)


def _read_fasta_sequence(path: Path) -> str:
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    records = 0
    seq: list[str] = []
    with opener(path, "rt") as fh:
        for line in fh:
            if line.startswith(">"):
                records += 1
                if records > 1:
                    raise InputError(f"{path}: the reference must be a single sequence")
            else:
                seq.append(line.strip())
    if not records:
        raise InputError(f"{path}: not a FASTA file")
    return "".join(seq)


def reference_sequence(ctx: typer.Context, reference: str) -> tuple[str, str]:
    """A reference as (sequence, where from): a FASTA file, or a one-sequence genome of the
    store by name, alias, or the assembly or accession it is (``MN908947`` finds the store's
    SARS-CoV-2 genome whatever it is named)."""
    sequence, source, _genome = _reference(ctx, reference)
    return sequence, source


def _reference(ctx: typer.Context, reference: str):
    """(sequence, where from, the store's genome or ``None`` for a FASTA file)."""
    path = Path(reference)
    if path.is_file():
        return _read_fasta_sequence(path), str(path), None
    from ..genome.store import open_reference_genome

    try:
        genome = open_reference_genome(_store(ctx), reference)
    except NotFoundError as e:
        raise NotFoundError(f"--reference {reference}: no such FASTA file; {e}") from None
    if len(genome.chromosomes) != 1:
        raise InputError(f"genome {genome.name} has {len(genome.chromosomes)} sequences, not one")
    chrom = genome.chromosomes[0]["name"]
    return genome.sequence(chrom, 0, genome.length(chrom)), f"genome {genome.name}", genome


def simulate_cmd(
    ctx: typer.Context,
    n: int = typer.Option(..., "-n", min=1, help="Genomes to generate."),
    out: Path = typer.Option(
        ..., "--output", "-o", help="Folder for the FASTA, TSVs and JSON.", metavar="DIR"
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same collection)."),
    reference: str = typer.Option(
        "MN908947",
        "--reference",
        help="A FASTA file, or a genome of the store by name, alias, assembly or accession "
        "(MN908947: the store's SARS-CoV-2 genome, whatever its name).",
        metavar="FASTA|NAME",
    ),
    start: str = typer.Option(
        "2019-12-26", "--start", help="Date of the root (YYYY-MM-DD).", metavar="DATE"
    ),
    span_days: int = typer.Option(730, "--span-days", min=1, help="Days of sampling."),
    rate: float = typer.Option(24.0, "--rate", help="Substitutions per genome per year."),
    rate_growth: float = typer.Option(
        0.0, "--rate-growth", help="Relative increase of the rate per year (acceleration)."
    ),
    bad_fraction: float = typer.Option(0.03, "--bad-fraction", help="Share of bad genomes."),
    compress: bool = typer.Option(False, "--gzip", help="Write sequences.fasta.gz."),
) -> None:
    """Generate a synthetic collection evolved from the reference along a random dated tree,
    with the true mutations of every genome (truth.tsv). With a stored genome's genes, no
    mutation makes a premature stop codon (purifying selection), as in real lineages;
    bad genomes (--bad-fraction) carry one planted defect each."""
    from ..strains.mutations import coding_sequences
    from ..strains.simulate import SimulationParams, write_collection

    sequence, source, genome = _reference(ctx, reference)
    # a stored genome's genes let the simulation keep premature stop codons out
    genes = list(genome.genes) if genome is not None and genome.has_genes else []
    coding = coding_sequences(genes, len(sequence))
    params = SimulationParams(
        n=n, seed=seed, start=start, span_days=span_days, rate=rate, rate_growth=rate_growth,
        bad_fraction=bad_fraction,
    )  # fmt: skip
    summary = write_collection(
        sequence, params, out, compress=compress, reference_source=source, coding=coding
    )
    typer.echo(
        f"wrote {summary['genomes']:,} genomes ({summary['bad_genomes']:,} bad, "
        f"{summary['clades']} clades) to {out}",
        err=True,
    )
