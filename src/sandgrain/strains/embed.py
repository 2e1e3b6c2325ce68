"""The k-mer map: a PCA of k-mer profiles, fitted once on a panel, onto which genomes are projected.

CSIRO put SARS-CoV-2 genomes on a 2-D map by a PCA of their 10-mer profiles, refitted on every
update, so that "there are not fixed x-y coordinates for each isolate". Here the map is a stored
model instead:

**Fit.** A panel of genomes (all of them up to ``panel_size``, else the ``panel_size`` whose
salted SHA-256 of the strain name is smallest: a sample that does not depend on the order of the
collection and keeps most of its members as the collection grows) is fitted by PCA. Profiles are
never dense: a genome's profile is the reference's plus a small delta (:mod:`.kmers`), and since
every panel row contains the reference's profile, centring removes it exactly,
``X − 1μᵀ = D − 1μ_Dᵀ`` for the deltas ``D`` and their mean ``μ_D``. The columns are therefore
only the k-mers some panel delta touches (tens of thousands, not 4^10). Centring a sparse matrix
explicitly would make it dense, and a truncated SVD of the *uncentred* matrix (scikit-learn's
``TruncatedSVD``, latent semantic analysis) is not a PCA: its first axis points at the mean. So
the centred matrix is only ever applied, as a :class:`scipy.sparse.linalg.LinearOperator`
``v ↦ D v − 1 (μ_D·v)`` and its transpose, and its leading singular vectors come from ARPACK
(``svds``, the same implicit centring scikit-learn's ``PCA`` uses for sparse input with the
``arpack`` solver, checked against it and against a dense SVD in the tests). Each component's
sign is fixed so that its largest loading is positive.

**Explained variance.** Eigenvalues ``σᵢ² / (n − 1)`` over the panel's total variance
``(‖D‖²_F − n‖μ_D‖²) / (n − 1)``, reported per axis.

**Projection.** A genome's coordinates are ``(d − μ_D) Vᵀ + t``: a function of its own profile
and the stored map only, so they never move when other genomes are added (a map update copies
the existing coordinates and projects only the new genomes).

**Refit.** An explicit ``--refit`` fits a new panel and is then aligned to the previous map by
orthogonal Procrustes with translation (Schönemann 1966), over the genomes both maps hold: the
rotation ``R`` and shift ``t`` minimising ``‖(Y_new − ȳ_new) R − (Y_old − ȳ_old)‖`` are folded
into the stored components (``V ← Rᵀ V``, still orthonormal), so users keep their bearings and
projection stays one formula. A rigid motion keeps every distance; the per-axis explained
variance is then that of the rotated axes (``diag(Rᵀ Λ R)``), and the total is unchanged.

**Second embedding.** PCA is a linear map fitted for variance and ranks last among embeddings
in published comparisons of how well lineages separate; t-SNE (van der Maaten & Hinton 2008) of
the n-D PCA coordinates, or metric MDS (SMACOF) of the k-mer count distances between profiles,
resolve lineages better. Neither can project a new genome, so they are recomputed with each
map, clearly labelled, and never used for the stable coordinates.

References
----------
.. [1] Schönemann PH. "A generalized solution of the orthogonal Procrustes problem."
   Psychometrika 31:1-10, 1966.
.. [2] Lehoucq RB, Sorensen DC, Yang C. "ARPACK Users' Guide." SIAM, 1998.
.. [3] van der Maaten L, Hinton G. "Visualizing data using t-SNE." JMLR 9:2579-2605, 2008.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, NotFoundError
from ..provenance import provenance
from .kmers import DEFAULT_K, KmerSpace, Profile, ProfileBatch

__all__ = [
    "KIND",
    "KmerMap",
    "MapBuild",
    "align_map",
    "build_map",
    "export_table",
    "fit_map",
    "load_map",
    "map_space",
    "panel_strains",
    "project_calls",
    "publish_map",
    "reader_from_calls",
    "reader_from_profiles",
    "second_embedding",
    "update_map",
]

#: The store's dataset kind for maps; one map per collection, named as the collection.
KIND = "strainmaps"
FORMAT = "sandgrain.strainmap"
FORMAT_VERSION = 1
DEFAULT_COMPONENTS = 10
DEFAULT_PANEL = 20_000
#: QC statuses of the genomes a map's PCA is fitted on (all genomes are projected).
PANEL_QC = ("good", "mediocre")
#: How a new map reads genomes' missing ranges (:class:`~sandgrain.strains.kmers.KmerSpace`):
#: as the reference, so an N run does not move a genome; maps made before keep ``"drop"``.
MAP_MISSING = "reference"
#: The second embeddings offered, and the most genomes each is computed for.
SECOND_EMBEDDINGS = {"tsne": 20_000, "mds": 2_000}

#: ``read(only)``: the deltas of the genomes named in ``only`` (every genome when ``None``).
Reader = Callable[[Sequence[str] | None], Iterable[ProfileBatch]]


@dataclass
class KmerMap:
    """A fitted map: what projection needs, and how well it explains the panel."""

    base: str  #: :attr:`KmerSpace.fingerprint` of the profiles it was fitted on
    vocabulary: np.ndarray  #: sorted k-mer codes of the columns (uint64)
    mean_delta: np.ndarray  #: panel mean of the deltas per column
    components: np.ndarray  #: (n_components, columns), orthonormal rows
    offset: np.ndarray  #: added to every projection (0 unless aligned)
    eigenvalues: np.ndarray  #: PCA explained variance of each fitted component
    axis_variance: np.ndarray  #: panel variance along each stored axis (= eigenvalues if unaligned)
    total_variance: float
    n_panel: int
    rotation: np.ndarray | None = None  #: Procrustes rotation applied at a refit
    _mean_proj: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._mean_proj = self.components @ self.mean_delta

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    @property
    def explained_variance_ratio(self) -> np.ndarray:
        return (
            self.axis_variance / self.total_variance if self.total_variance else self.axis_variance
        )

    def project(self, batch: ProfileBatch) -> np.ndarray:
        """Coordinates of each genome of ``batch`` (rows in order), shape (n, n_components)."""
        if batch.base != self.base:
            raise InputError(
                f"profiles against {batch.base} cannot be projected on a map of {self.base} "
                "(another reference, k or strand convention): refit the map"
            )
        if len(batch) == 0:
            return np.zeros((0, self.n_components))
        from scipy import sparse

        cols = np.searchsorted(self.vocabulary, batch.codes)
        cols[cols >= len(self.vocabulary)] = 0
        known = self.vocabulary[cols] == batch.codes  # other k-mers have no loading
        rows = np.repeat(np.arange(len(batch)), np.diff(batch.indptr))
        d = sparse.csr_matrix(
            (batch.counts[known].astype(np.float64), (rows[known], cols[known])),
            shape=(len(batch), len(self.vocabulary)),
        )
        return np.asarray(d @ self.components.T) - self._mean_proj + self.offset


def fit_map(panel: ProfileBatch, n_components: int = DEFAULT_COMPONENTS, seed: int = 0) -> KmerMap:
    """Fit a PCA on the deltas of a panel (see the module docstring for the centring).

    At most ``min(n_panel, columns) − 1`` components are kept (what ARPACK can give); a map
    needs at least two.
    """
    from scipy import sparse
    from scipy.sparse.linalg import LinearOperator, svds

    if n_components < 2:
        raise InputError("a map needs at least 2 components")
    vocabulary = np.unique(panel.codes)
    n, m = len(panel), len(vocabulary)
    nc = min(n_components, n - 1, m - 1)
    if nc < 2:
        raise InputError(
            f"a map needs at least 3 genomes that differ from the reference ({n} genomes, "
            f"{m} k-mers changed in the panel)"
        )
    cols = np.searchsorted(vocabulary, panel.codes)
    d = sparse.csr_matrix((panel.counts.astype(np.float64), cols, panel.indptr), shape=(n, m))
    mu = np.asarray(d.mean(axis=0)).ravel()
    dt = d.T.tocsr()

    def matvec(v):
        v = np.asarray(v).reshape(m, -1)
        return d @ v - np.outer(np.ones(n), mu @ v)

    def rmatvec(u):
        u = np.asarray(u).reshape(n, -1)
        return dt @ u - np.outer(mu, u.sum(axis=0))

    op = LinearOperator(
        (n, m), matvec=matvec, rmatvec=rmatvec, matmat=matvec, rmatmat=rmatvec, dtype=np.float64
    )
    v0 = np.random.default_rng(seed).standard_normal(min(n, m))
    _, s, vt = svds(op, k=nc, v0=v0, tol=0, solver="arpack")
    order = np.argsort(s)[::-1]
    s, vt = s[order], vt[order]
    biggest = np.argmax(np.abs(vt), axis=1)
    vt *= np.sign(vt[np.arange(nc), biggest])[:, None]
    eigen = s**2 / (n - 1)
    total = float((d.multiply(d).sum() - n * float(mu @ mu)) / (n - 1))
    return KmerMap(
        base=panel.base, vocabulary=vocabulary, mean_delta=mu,
        components=np.ascontiguousarray(vt), offset=np.zeros(nc), eigenvalues=eigen,
        axis_variance=eigen.copy(), total_variance=total, n_panel=n,
    )  # fmt: skip


def align_map(
    new: KmerMap, new_coords: np.ndarray, old_coords: np.ndarray
) -> tuple[KmerMap, dict[str, Any]]:
    """Fold the orthogonal Procrustes alignment of ``new_coords`` onto ``old_coords`` (the same
    genomes, row for row, on the new and the previous map) into ``new``.

    Returns the aligned map and a report: the rotation, the shift and the root-mean-square
    distance of the shared genomes before and after the alignment.
    """
    from scipy.linalg import orthogonal_procrustes

    if new_coords.shape != old_coords.shape:
        raise InputError(
            f"a refit keeps the number of axes: the previous map has {old_coords.shape[1]}, "
            f"the new one {new_coords.shape[1]}"
        )
    if len(new_coords) < new_coords.shape[1] + 1:
        raise InputError("too few genomes in both maps to align the refit to the previous map")
    mean_new, mean_old = new_coords.mean(axis=0), old_coords.mean(axis=0)
    rotation, _ = orthogonal_procrustes(new_coords - mean_new, old_coords - mean_old)
    shift = mean_old - mean_new @ rotation
    aligned = KmerMap(
        base=new.base, vocabulary=new.vocabulary,
        mean_delta=new.mean_delta, components=np.ascontiguousarray(rotation.T @ new.components),
        offset=new.offset @ rotation + shift, eigenvalues=new.eigenvalues,
        axis_variance=np.diag(rotation.T @ np.diag(new.axis_variance) @ rotation).copy(),
        total_variance=new.total_variance, n_panel=new.n_panel, rotation=rotation,
    )  # fmt: skip

    def rmsd(a):
        return float(np.sqrt(((a - old_coords) ** 2).sum(axis=1).mean()))

    report = {
        "genomes": int(len(new_coords)),
        "rmsd_before": rmsd(new_coords),
        "rmsd_after": rmsd(new_coords @ rotation + shift),
        "rotation": rotation.tolist(),
        "shift": shift.tolist(),
    }
    return aligned, report


def panel_strains(strains: Iterable[str], size: int, seed: int = 0) -> list[str]:
    """The ``size`` strains whose SHA-256 of ``"<seed>:<strain>"`` is smallest (all of them
    when there are fewer), sorted: a sample independent of the collection's order."""
    if size < 3:
        raise InputError("the panel needs at least 3 genomes")

    def key(s: str) -> bytes:
        return hashlib.sha256(f"{seed}:{s}".encode()).digest()[:12]

    return sorted(heapq.nsmallest(size, set(strains), key=key))


@dataclass
class MapBuild:
    """A map and the coordinates of every genome on it."""

    kmap: KmerMap
    strains: list[str]
    coords: np.ndarray
    panel: np.ndarray  #: bool per genome: was it in the panel of the current fit
    added: list[str]  #: per genome, the map version it was first projected in ("" = this one)
    info: dict[str, Any]


def _project_all(kmap: KmerMap, batches: Iterable[ProfileBatch]) -> tuple[list[str], np.ndarray]:
    strains: list[str] = []
    parts: list[np.ndarray] = []
    for b in batches:
        strains.extend(b.strains)
        parts.append(kmap.project(b))
    coords = np.concatenate(parts) if parts else np.zeros((0, kmap.n_components))
    return strains, coords


def build_map(
    read: Reader,
    strains: Sequence[str] | None,
    *,
    previous: MapBuild | None = None,
    refit: bool = False,
    n_components: int = DEFAULT_COMPONENTS,
    panel_size: int = DEFAULT_PANEL,
    seed: int = 0,
    space: KmerSpace | None = None,
    panel_from: Sequence[str] | None = None,
) -> MapBuild:
    """Build, update or refit a map over genomes given by ``read`` (the abstract input).

    - no ``previous``: fit on the panel, project every genome;
    - ``previous`` without ``refit``: keep every existing coordinate as it is and project only
      the genomes it lacks;
    - ``previous`` with ``refit``: fit a new panel, project everything, align to ``previous``.

    ``strains`` lists the genomes (for choosing the panel without reading the rest); ``None``
    reads them all once more to list them. ``panel_from``: the genomes the panel may be chosen
    from (e.g. those that pass QC; default all); every genome is projected either way.
    """
    if previous is not None and not refit:
        if space is not None and previous.kmap.base != space.fingerprint:
            raise InputError(
                "the map was built on another reference or k-mer setting: rebuild it with --refit"
            )
        known = set(previous.strains)
        if strains is None:
            strains = [s for b in read(None) for s in b.strains]
        new = [s for s in strains if s not in known]
        got, coords = _project_all(previous.kmap, read(new) if new else [])
        return MapBuild(
            previous.kmap,
            previous.strains + got,
            np.concatenate((previous.coords, coords)) if len(got) else previous.coords,
            np.concatenate((previous.panel, np.zeros(len(got), bool))),
            previous.added + [""] * len(got),
            {**previous.info, "update": {"projected": len(got), "kept": len(previous.strains)}},
        )
    if strains is None:
        strains = [s for b in read(None) for s in b.strains]
    eligible = strains
    if panel_from is not None:
        allowed = set(panel_from)
        eligible = [s for s in strains if s in allowed]
        if len(eligible) < 3:  # too few pass QC to fit axes: fit on every genome
            eligible = strains
    chosen = panel_strains(eligible, panel_size, seed)
    batches = [b for b in read(chosen) if len(b)]
    if not batches:
        raise InputError("no genomes to build a map from")
    panel = ProfileBatch.concat(batches)
    kmap = fit_map(panel, n_components, seed)
    del panel, batches
    names, coords = _project_all(kmap, read(None))
    in_panel = set(chosen)
    info: dict[str, Any] = {"fit": {"panel": kmap.n_panel, "panel_rule": "smallest sha256"}}
    added = [""] * len(names)
    if previous is not None:
        index = {s: i for i, s in enumerate(names)}
        shared = [(index[s], i) for i, s in enumerate(previous.strains) if s in index]
        if not shared:
            raise InputError("the refit shares no genome with the previous map to align it to")
        new_rows, old_rows = (np.array(x) for x in zip(*shared, strict=True))
        if previous.kmap.n_components != kmap.n_components:
            raise InputError(
                f"the previous map has {previous.kmap.n_components} axes and the refit "
                f"{kmap.n_components}: a refit keeps the number of axes"
            )
        kmap, report = align_map(kmap, coords[new_rows], previous.coords[old_rows])
        coords = coords @ kmap.rotation + np.array(report["shift"])
        first = dict(zip(previous.strains, previous.added, strict=True))
        added = [first.get(s, "") for s in names]
        info["refit"] = report
        info["previous_version"] = previous.info.get("version")
    return MapBuild(kmap, names, coords, np.array([s in in_panel for s in names]), added, info)


# -- abstract inputs ------------------------------------------------------------------------------


def reader_from_calls(
    iter_calls: Callable[[], Iterable[Sequence[Any]]], space: KmerSpace
) -> Reader:
    """A reader over calls (batches of Calls-like objects, as ``Collection.iter_calls``): the
    deltas are computed only for the genomes asked for."""

    def read(only: Sequence[str] | None) -> Iterator[ProfileBatch]:
        wanted = None if only is None else set(only)
        for batch in iter_calls():
            chosen = [c for c in batch if wanted is None or c.strain in wanted]
            if chosen:
                yield space.deltas(chosen)

    return read


def reader_from_profiles(
    items: Callable[[], Iterable[tuple[str, Profile]]],
    base: Profile,
    base_name: str,
    batch: int = 2000,
) -> Reader:
    """A reader over whole profiles: ``items()`` yields ``(strain, profile)``; each becomes its
    delta against ``base`` (the reference's profile)."""

    def read(only: Sequence[str] | None) -> Iterator[ProfileBatch]:
        wanted = None if only is None else set(only)
        chunk: list[tuple[str, Profile]] = []
        for strain, profile in items():
            if wanted is None or strain in wanted:
                chunk.append((strain, profile))
            if len(chunk) >= batch:
                yield ProfileBatch.from_profiles(chunk, base, base_name)
                chunk = []
        if chunk:
            yield ProfileBatch.from_profiles(chunk, base, base_name)

    return read


# -- second embedding -----------------------------------------------------------------------------


def second_embedding(
    method: str,
    *,
    coords: np.ndarray | None = None,
    profiles: ProfileBatch | None = None,
    seed: int = 0,
) -> np.ndarray:
    """A 2-D embedding that resolves lineages better than PCA, for display only.

    ``"tsne"``: t-SNE of the n-D PCA ``coords`` (Barnes-Hut, perplexity ≤ 30).
    ``"mds"``: metric MDS (SMACOF, classical-MDS start) of the L1 k-mer count distances between
    the deltas of ``profiles``.
    """
    if method == "tsne":
        from sklearn.manifold import TSNE

        if coords is None or len(coords) < 5:
            raise InputError("t-SNE needs the PCA coordinates of at least 5 genomes")
        perplexity = float(min(30.0, (len(coords) - 1) / 3))
        tsne = TSNE(2, perplexity=perplexity, init="pca", random_state=seed)
        return tsne.fit_transform(np.asarray(coords, dtype=np.float64))
    if method == "mds":
        from scipy import sparse
        from sklearn.manifold import MDS
        from sklearn.metrics import pairwise_distances

        if profiles is None or len(profiles) < 3:
            raise InputError("MDS needs the profiles of at least 3 genomes")
        vocab = np.unique(profiles.codes)
        d = sparse.csr_matrix(
            (profiles.counts.astype(np.float64), np.searchsorted(vocab, profiles.codes),
             profiles.indptr),
            shape=(len(profiles), len(vocab)),
        )  # fmt: skip
        dist = pairwise_distances(d, metric="manhattan")
        mds = MDS(2, metric_mds=True, metric="precomputed", init="classical_mds", random_state=seed)
        return mds.fit_transform(dist)
    raise InputError(
        f"the second embedding is one of {', '.join(SECOND_EMBEDDINGS)}, not {method!r}"
    )


SECOND_LABELS = {
    "tsne": "t-SNE of the PCA coordinates: recomputed at each map build, not a projection; "
    "local neighbourhoods are meaningful, distances between clusters are not",
    "mds": "metric MDS of the k-mer count (L1) distances: recomputed at each map build, not a "
    "projection",
}


# -- the store ------------------------------------------------------------------------------------


def _write_parquet(ds, file: str, table) -> None:
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="sandgrain-map-") as tmp:
        path = Path(tmp) / file
        pq.write_table(table, path, compression="zstd")
        ds.put_file(file, path)


def _axis_names(n: int) -> list[str]:
    return [f"pc{i + 1}" for i in range(n)]


def publish_map(
    store,
    name: str,
    build: MapBuild,
    *,
    space: KmerSpace,
    parameters: dict[str, Any],
    inputs: list[dict],
    second: tuple[str, list[str], np.ndarray] | None = None,
):
    """Publish a map as a new version of dataset ``strainmaps/<name>`` (atomically).

    Files: ``components.parquet`` (kmer, mean_delta, pc1…), ``mean.parquet`` (kmer, mean: the
    panel's mean profile), ``coords.parquet`` (strain, pc1…, panel, added), and with a second
    embedding ``second.parquet`` (strain, x, y). The meta holds the explained variance, the
    parameters and any refit alignment.
    """
    import pyarrow as pa

    kmap = build.kmap
    axes = _axis_names(kmap.n_components)
    with store.new_dataset(
        KIND, name, format=FORMAT, format_version=FORMAT_VERSION, replace=True
    ) as ds:
        comp = {"kmer": pa.array(kmap.vocabulary, pa.uint64()), "mean_delta": kmap.mean_delta}
        comp.update({a: kmap.components[i] for i, a in enumerate(axes)})
        _write_parquet(ds, "components.parquet", pa.table(comp))
        ref = dict(zip(space.profile.codes.tolist(), space.profile.counts.tolist(), strict=True))
        codes = np.union1d(space.profile.codes, kmap.vocabulary)
        mean = np.array([ref.get(c, 0) for c in codes.tolist()], np.float64)
        mean[np.searchsorted(codes, kmap.vocabulary)] += kmap.mean_delta
        _write_parquet(ds, "mean.parquet", pa.table({"kmer": pa.array(codes, pa.uint64()),
                                                     "mean": mean}))  # fmt: skip
        added = [a or ds.version for a in build.added]
        cols = {"strain": pa.array(build.strains, pa.string())}
        cols.update({a: build.coords[:, i] for i, a in enumerate(axes)})
        cols["panel"] = pa.array(build.panel, pa.bool_())
        cols["added"] = pa.array(added, pa.string())
        _write_parquet(ds, "coords.parquet", pa.table(cols))
        meta: dict[str, Any] = {
            "collection": name,
            "genomes": len(build.strains),
            "n_components": kmap.n_components,
            "explained_variance": kmap.axis_variance.tolist(),
            "explained_variance_ratio": kmap.explained_variance_ratio.tolist(),
            "pca_eigenvalues": kmap.eigenvalues.tolist(),
            "total_variance": kmap.total_variance,
            "offset": kmap.offset.tolist(),
            "n_panel": kmap.n_panel,
            "columns": len(kmap.vocabulary),
            "base": kmap.base,
            "profile": space.describe(),
            "method": "PCA (implicitly centred sparse ARPACK SVD) of k-mer count profiles",
            **{key: v for key, v in build.info.items() if key not in ("version", "profile")},
            "previous_version": build.info.get("version") or build.info.get("previous_version"),
        }
        if second is not None:
            method, strains, xy = second
            _write_parquet(
                ds, "second.parquet",
                pa.table({"strain": pa.array(strains, pa.string()), "x": xy[:, 0], "y": xy[:, 1]}),
            )  # fmt: skip
            meta["second_embedding"] = {
                "method": method, "label": SECOND_LABELS[method], "genomes": len(strains),
            }  # fmt: skip
        ds.meta = meta
        ds.provenance = provenance("strains map", parameters, inputs)
    return store.open_dataset(KIND, name)


def load_map(store, name: str) -> MapBuild:
    """The current map of collection ``name`` from the store."""
    import pyarrow.parquet as pq

    try:
        ds = store.open_dataset(KIND, name)
    except NotFoundError:
        raise NotFoundError(
            f"collection {name!r} has no map yet: run `sandgrain strains map --collection {name}`"
        ) from None
    meta = ds.meta
    comp = pq.read_table(ds.local_path("components.parquet"), use_threads=False)
    coords = pq.read_table(ds.local_path("coords.parquet"), use_threads=False)
    axes = _axis_names(int(meta["n_components"]))
    profile = meta["profile"]
    kmap = KmerMap(
        base=meta["base"],
        vocabulary=comp.column("kmer").to_numpy().astype(np.uint64),
        mean_delta=comp.column("mean_delta").to_numpy(),
        components=np.vstack([comp.column(a).to_numpy() for a in axes]),
        offset=np.array(meta["offset"], np.float64),
        eigenvalues=np.array(meta["pca_eigenvalues"], np.float64),
        axis_variance=np.array(meta["explained_variance"], np.float64),
        total_variance=float(meta["total_variance"]),
        n_panel=int(meta["n_panel"]),
        rotation=np.array(meta["refit"]["rotation"]) if "refit" in meta else None,
    )
    info = {key: meta[key] for key in ("fit", "refit") if key in meta}
    info["profile"] = profile
    info["version"] = ds.manifest["version"]
    return MapBuild(
        kmap,
        coords.column("strain").to_pylist(),
        np.column_stack([coords.column(a).to_numpy() for a in axes]),
        coords.column("panel").to_numpy(zero_copy_only=False).astype(bool),
        coords.column("added").to_pylist(),
        info,
    )


def _collection_input(collection) -> dict[str, Any]:
    """Provenance of a collection: its name, version and the SHA-256 of its manifest when it
    has one (a store dataset), else of its reference."""
    manifest = getattr(collection, "manifest", None)
    if manifest is None and getattr(collection, "dataset", None) is not None:
        manifest = getattr(collection.dataset, "manifest", None)
    if isinstance(manifest, dict):
        digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
        version = manifest.get("version")
    else:
        digest = hashlib.sha256(collection.reference().upper().encode()).hexdigest()
        version = getattr(collection, "version", None)
    return {"source": f"strains collection {collection.name}", "version": version,
            "sha256": digest}  # fmt: skip


def update_map(
    store,
    collection,
    *,
    refit: bool = False,
    n_components: int | None = None,
    panel_size: int = DEFAULT_PANEL,
    k: int = DEFAULT_K,
    canonical: bool = False,
    batch: int = 2000,
    seed: int = 0,
    second: str | None = None,
    panel_qc: Sequence[str] | None = PANEL_QC,
):
    """Build (first time), update (project new genomes) or refit the map of a collection and
    publish it; returns the published dataset.

    The PCA is fitted on genomes whose QC status is in ``panel_qc`` (default good and mediocre:
    a bad genome's missing data would pull the axes towards itself; ``None``: any genome);
    every genome, bad ones included, is projected and shown.

    ``collection`` is a strains collection: ``name``, ``reference()``, ``iter_calls(batch=…)``
    and ``metadata()`` (see :class:`sandgrain.strains.collection.Collection`).
    ``n_components`` defaults to 10, or to the previous map's number at a refit.
    """
    if second is not None and second not in SECOND_EMBEDDINGS:
        raise InputError(f"--second is one of {', '.join(SECOND_EMBEDDINGS)}, not {second!r}")
    previous = (
        load_map(store, collection.name) if store.has_dataset(KIND, collection.name) else None
    )
    missing = MAP_MISSING
    if previous is not None and not refit:  # the stored map's space: its points never move
        k, canonical = previous.info["profile"]["k"], previous.info["profile"]["canonical"]
        missing = previous.info["profile"].get("missing", "drop")  # maps made before the choice
    if n_components is None:  # a refit keeps the previous map's axes
        n_components = previous.kmap.n_components if previous else DEFAULT_COMPONENTS
    space = KmerSpace(collection.reference(), k, canonical, missing)
    read = reader_from_calls(lambda: collection.iter_calls(batch=batch), space)
    strains = collection.metadata().column("strain").to_pylist()
    panel_from = None
    if panel_qc is not None and hasattr(collection, "qc_table"):
        qc = collection.qc_table()
        wanted = set(panel_qc)
        panel_from = [
            s for s, st in zip(qc["strain"].to_pylist(), qc["status"].to_pylist(), strict=True)
            if st in wanted
        ]  # fmt: skip
    build = build_map(
        read, strains, previous=previous, refit=refit, n_components=n_components,
        panel_size=panel_size, seed=seed, space=space, panel_from=panel_from,
    )  # fmt: skip
    extra = None
    if second is not None:
        extra = _second_for(second, build, read, seed)
    parameters = {
        "collection": collection.name, "refit": refit, "n_components": n_components,
        "panel_size": panel_size, "k": space.k, "canonical": space.canonical, "seed": seed,
        "second": second, "panel_qc": list(panel_qc) if panel_qc is not None else None,
        "missing": space.missing,
    }  # fmt: skip
    return publish_map(
        store, collection.name, build, space=space, parameters=parameters,
        inputs=[_collection_input(collection)], second=extra,
    )  # fmt: skip


def map_space(info: dict, reference: str) -> KmerSpace:
    """The k-mer space a stored map (its ``info``) was built in: its k, strand convention and
    reading of missing data (``"drop"`` for maps made before that was a choice)."""
    profile = info["profile"]
    return KmerSpace(
        reference, int(profile["k"]), bool(profile["canonical"]), profile.get("missing", "drop")
    )


def project_calls(kmap: KmerMap, info: dict, reference: str, calls) -> np.ndarray:
    """Coordinates of genomes (their calls) on a stored map, which does not move."""
    return kmap.project(map_space(info, reference).deltas(calls))


def _second_for(method: str, build: MapBuild, read: Reader, seed: int):
    """The second embedding of at most :data:`SECOND_EMBEDDINGS` genomes (the panel rule picks
    them when there are more)."""
    limit = SECOND_EMBEDDINGS[method]
    chosen = panel_strains(build.strains, limit, seed + 1)
    index = {s: i for i, s in enumerate(build.strains)}
    rows = np.array([index[s] for s in chosen])
    if method == "tsne":
        return method, chosen, second_embedding("tsne", coords=build.coords[rows], seed=seed)
    batch = ProfileBatch.concat([b for b in read(chosen) if len(b)])
    return method, batch.strains, second_embedding("mds", profiles=batch, seed=seed)


def export_table(store, name: str, metadata=None):
    """The map as a table: strain, x, y (the first two axes), date and the other metadata
    columns, then the second embedding's x and y when the map has one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    build = load_map(store, name)
    table = pa.table({
        "strain": pa.array(build.strains, pa.string()),
        "x": build.coords[:, 0],
        "y": build.coords[:, 1],
        "_row": np.arange(len(build.strains)),
    })  # fmt: skip
    ds = store.open_dataset(KIND, name)
    if "second.parquet" in ds.manifest["files"]:
        second = pq.read_table(ds.local_path("second.parquet"), use_threads=False)
        method = ds.meta["second_embedding"]["method"]
        second = second.rename_columns(["strain", f"{method}_x", f"{method}_y"])
        table = table.join(second, "strain", join_type="left outer")
    if metadata is not None:
        extra = [c for c in metadata.column_names if c not in table.column_names or c == "strain"]
        table = table.join(metadata.select(extra), "strain", join_type="left outer")
        order = ["strain", "x", "y"] + (["date"] if "date" in extra else [])
        table = table.select(order + [c for c in table.column_names if c not in order])
    # joins do not keep the row order: back to the map's order, without the helper column
    table = table.sort_by("_row")
    return table.drop_columns(["_row"])
