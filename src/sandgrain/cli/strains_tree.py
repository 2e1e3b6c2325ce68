"""``sandgrain strains tree|place``: a collection's tree, and placing genomes on it.

Both are plain commands the strains domain adds through ``cli_extensions``; the work is done by
:mod:`sandgrain.strains.tree` and :mod:`sandgrain.strains.placement`.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path

import typer

from ..errors import InputError


def _store(ctx: typer.Context):
    from ..storage import Store

    return Store.from_settings(ctx.obj)


def _write_text(path: Path, text: str) -> None:
    """A text file written atomically."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except FileNotFoundError:
        raise InputError(f"cannot write {path}: no such folder") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def tree_cmd(
    ctx: typer.Context,
    collection: str = typer.Option(..., "--collection", "-c", help="The collection's name."),
    sample: int = typer.Option(
        500, "--sample", min=3, help="Genomes (passing QC, hash-chosen) FastTree builds on."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample and of FastTree."),
    newick: Path = typer.Option(
        None, "--newick", help="Use this tree (leaves: genomes of the collection), not FastTree."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the tree's summary as JSON."),
) -> None:
    """Build and store a collection's starting tree: FastTree on a sample, or a Newick given.

    Ancestral substitutions are solved by parsimony; genomes are then added with
    ``strains place --add``.
    """
    from ..strains.collection import Collection
    from ..strains.tree import build_tree

    store = _store(ctx)
    coll = Collection.open(store, collection)
    ds = build_tree(store, coll, sample=sample, seed=seed, newick=newick)
    meta = ds.meta
    if as_json:
        typer.echo(json.dumps({"version": ds.manifest["version"], **meta}, indent=1))
        return
    tool = meta.get("tool") or {}
    how = f"FastTree {tool.get('version')}" if meta["method"] == "fasttree" else "the Newick given"
    typer.echo(
        f"tree of {collection}: {meta['leaves']:,} genomes from {how}, {meta['sites']:,} "
        f"variable sites, parsimony {meta['parsimony']:,} mutations",
        err=True,
    )


def place_cmd(
    ctx: typer.Context,
    collection: str = typer.Option(..., "--collection", "-c", help="The collection's name."),
    fasta: Path = typer.Option(None, "--fasta", help="Query genomes (FASTA, plain or gzip)."),
    mutations: str = typer.Option(
        None, "--mutations", help="A query as a mutation list: C241T,A23403G,…", metavar="MUTATIONS"
    ),
    name: str = typer.Option("query", "--name", help="The name of a --mutations query."),
    nearest: int = typer.Option(20, "--nearest", min=1, help="Genomes in the local tree."),
    fmt: str = typer.Option(
        "json", "--format", help="json (one line per query) or newick.", metavar="[json|newick]"
    ),
    svg: Path = typer.Option(None, "--svg", help="Draw the (first) query's local tree here."),
    add: bool = typer.Option(False, "--add", help="Add the queries to the stored tree."),
) -> None:
    """Place genomes on a collection's tree by maximum parsimony (as UShER does).

    Prints, per query, its branch, parsimony score, ties, private mutations, nearest genomes
    and local tree; ``--add`` puts them on the stored tree (a new version).
    """
    from ..provenance import provenance, sha256_file
    from ..strains.collection import Collection
    from ..strains.placement import add_to_tree, place_calls, subtree_svg
    from ..strains.query import calls_from_fasta, calls_from_mutations
    from ..strains.tree import load_tree

    if fmt not in ("json", "newick"):
        raise InputError(f"--format is json or newick, not {fmt!r}")
    if (fasta is None) == (mutations is None):
        raise InputError("give the query as one of --fasta or --mutations")
    store = _store(ctx)
    coll = Collection.open(store, collection)
    stored = load_tree(store, collection)
    if fasta is not None:
        queries = calls_from_fasta(coll, fasta)
        inputs = [{"source": fasta.name, "sha256": sha256_file(fasta)}]
    else:
        queries = [calls_from_mutations(mutations, stored.reference, name=name)]
        inputs = [{"source": "--mutations", "text": mutations}]
    parameters = {"collection": collection, "nearest": nearest, "add": add}
    prov = provenance(
        "strains place",
        parameters,
        [{"source": f"straintrees/{collection}", "version": stored.version,
          "sha256": stored.sha256}, *inputs],
    )  # fmt: skip
    for k, calls in enumerate(queries):
        placement, answer, local = place_calls(stored, calls, nearest=nearest)
        if k == 0 and svg is not None:
            title = f"{calls.strain} placed on the tree of {collection}"
            _write_text(svg, subtree_svg(local, placement.query, title=title))
        if fmt == "newick":
            typer.echo(answer["subtree_newick"])
        else:
            typer.echo(json.dumps({**answer, "provenance": prov}))
    if add:
        ds, placements = add_to_tree(store, stored, queries, inputs=inputs)
        typer.echo(
            f"added {len(placements):,} genomes to the tree of {collection} "
            f"(version {ds.manifest['version']}, parsimony {ds.meta['parsimony']:,})",
            err=True,
        )
