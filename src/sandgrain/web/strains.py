"""The strains domain in the web app: its REST routes under ``/api/v1/strains`` and the map page.

Routes
------
``GET /api/v1/strains/collections``
    every collection: genomes, QC statuses, reference, whether it has a map.
``GET /api/v1/strains/{collection}/map?offset=&limit=``
    the map's points, a page at a time, as **columns** (one array per field, not one object per
    point): ``strain``, ``x``, ``y`` (the map's first two axes, rounded to 5 decimals), ``day``
    (the collection date as days since 1970-01-01; ``null`` for an incomplete date such as
    ``2020-03``), and ``country``, ``region``, ``qc`` as indices into the response's
    ``categories`` lists (dictionary encoding: a country's name is sent once, not once per
    genome). Every page carries the whole map's ``total``, ``bounds`` and ``categories``, so a
    client draws the first page at once and adds later pages where they belong. The 418 demo
    genomes are one page of 23 kB (55 bytes a genome, 6.6 kB gzipped); a million genomes are
    five pages of the default 200,000, 56 MB in all, made in 2 s.
``GET /api/v1/strains/{collection}/genomes/{strain}``
    one genome's calls (substitutions, deletions, insertions, missing ranges, amino-acid
    changes, …), its QC and its metadata. Strain names hold slashes (``Wuhan/Hu-1/2019``): the
    path takes them as they are, or %2F-encoded.
``GET /api/v1/strains/{collection}/drift?root=&metric=&window_days=&min_per_window=``
    the root-to-tip regression of :mod:`sandgrain.strains.drift`: rate, its 95 % CI, the
    per-window rates, the acceleration test, the published clock for comparison, and the points
    (strain, date, years, distance; at most ``max_points``, 5,000 by default, evenly spread
    over the dated genomes in their order: the fit uses them all, ``points_total`` says how many).

Errors are problem details like the rest of ``/api/v1``: an unknown collection, genome or map is
404, a bad parameter 400 (or 422 when it does not match the schema).

The page ``/strains`` (``/strains/{collection}``) draws the map from these routes with
``/static/strains.js``: no library, nothing loaded from outside the app.

The map table of a collection (coordinates joined with metadata and QC status) is made once per
pair of stored versions (collection, map) and kept on ``app.state`` (a few recent ones), as is
each drift fit; a new version of either is picked up at the next request.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from .. import __version__
from ..errors import NotFoundError
from ..provenance import provenance
from ..strains.collection import Collection, list_collections
from ..strains.drift import DRIFT_QC, PUBLISHED_CLOCK, collection_drift
from ..strains.embed import KIND as MAP_KIND
from ..strains.embed import load_map
from .common import API_PREFIX, PROBLEM_RESPONSES
from .models import NAME_PATTERN
from .pages import TEMPLATES, _page_data

__all__ = ["DEFAULT_MAP_PAGE", "MAX_MAP_PAGE", "MapTable", "map_table", "pages", "router"]

#: Default and largest number of points in one page of ``/map``.
DEFAULT_MAP_PAGE = 200_000
MAX_MAP_PAGE = 1_000_000
#: Decimals kept of a coordinate (the map spans tens of units; 1e-5 is far below a pixel).
COORD_DECIMALS = 5
#: Points of the drift plot sent by default (an even spread when there are more genomes).
DEFAULT_DRIFT_POINTS = 5000
#: Map tables and drift fits kept per app.
CACHE_SIZE = 4
EPOCH = dt.date(1970, 1, 1)
QC_STATUSES = ("good", "mediocre", "bad", "unknown")

router = APIRouter(prefix=f"{API_PREFIX}/strains", tags=["strains"], responses=PROBLEM_RESPONSES)
pages = APIRouter(include_in_schema=False)

CollectionPath = Path(..., pattern=NAME_PATTERN, description="The collection's name.")


def _day(text: str | None) -> int | None:
    """Days since 1970-01-01 of a complete ``YYYY-MM-DD`` date, else ``None``."""
    if not text or len(text) != 10:
        return None
    try:
        return (dt.date.fromisoformat(text) - EPOCH).days
    except ValueError:
        return None


def _codes(values: list[str | None]) -> tuple[list[str], np.ndarray]:
    """Dictionary encoding: the distinct values, most frequent first, and each value's index."""
    clean = [v if v not in (None, "", "?") else "unknown" for v in values]
    names, inverse, counts = np.unique(np.array(clean, dtype=object), return_inverse=True,
                                       return_counts=True)  # fmt: skip
    order = np.argsort(-counts, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return [str(names[i]) for i in order], rank[inverse].astype(np.int32)


@dataclass
class MapTable:
    """Every point of a collection's map, as columns (see the module docstring)."""

    collection: str
    version: str
    map_version: str
    strains: list[str]
    x: np.ndarray
    y: np.ndarray
    day: list[int | None]
    categories: dict[str, list[str]]
    codes: dict[str, np.ndarray]
    axes: list[dict[str, Any]]

    def page(self, offset: int, limit: int) -> dict[str, Any]:
        end = min(offset + limit, len(self.strains))
        rows = slice(offset, end)
        finite = np.isfinite(self.x) & np.isfinite(self.y)
        bounds = {"x": [0.0, 1.0], "y": [0.0, 1.0]}
        if finite.any():
            for axis, values in (("x", self.x[finite]), ("y", self.y[finite])):
                bounds[axis] = [float(values.min()), float(values.max())]
        days = [d for d in self.day if d is not None]
        return {
            "collection": self.collection,
            "version": self.version,
            "map_version": self.map_version,
            "total": len(self.strains),
            "offset": offset,
            "count": max(0, end - offset),
            "next_offset": end if end < len(self.strains) else None,
            "axes": self.axes,
            "bounds": bounds,
            "days": [min(days), max(days)] if days else None,
            "date_origin": EPOCH.isoformat(),
            "categories": self.categories,
            "columns": {
                "strain": self.strains[rows],
                "x": np.round(self.x[rows], COORD_DECIMALS).tolist(),
                "y": np.round(self.y[rows], COORD_DECIMALS).tolist(),
                "day": self.day[rows],
                **{name: codes[rows].tolist() for name, codes in self.codes.items()},
            },
        }


def map_table(store, name: str) -> MapTable:
    """A collection's map joined with its metadata (date, country, region) and QC status."""
    coll = Collection.open(store, name)
    build = load_map(store, name)
    meta = coll.metadata()
    columns = meta.column_names
    index = {s: i for i, s in enumerate(meta.column("strain").to_pylist())}
    rows = [index.get(s) for s in build.strains]

    def column(field: str) -> list[str | None]:
        if field not in columns:
            return [None] * len(rows)
        values = meta.column(field).to_pylist()
        return [values[i] if i is not None else None for i in rows]

    qc = coll.qc_table()
    status = dict(zip(qc.column("strain").to_pylist(), qc.column("status").to_pylist(),
                      strict=True))  # fmt: skip
    qc_codes = np.array(
        [QC_STATUSES.index(status.get(s) or "unknown") for s in build.strains], np.int32
    )
    country, country_codes = _codes(column("country"))
    region, region_codes = _codes(column("region"))
    ratio = load_map_meta(store, name).get("explained_variance_ratio", [])
    axes = [
        {"name": f"PC{i + 1}", "explained_variance_ratio": ratio[i] if i < len(ratio) else None}
        for i in range(2)
    ]
    coords = build.coords
    return MapTable(
        collection=name,
        version=str(coll.dataset.manifest["version"]),
        map_version=str(build.info.get("version")),
        strains=list(build.strains),
        x=np.asarray(coords[:, 0], np.float64),
        y=np.asarray(coords[:, 1] if coords.shape[1] > 1 else np.zeros(len(coords)), np.float64),
        day=[_day(d) for d in column("date")],
        categories={"country": country, "region": region, "qc": list(QC_STATUSES)},
        codes={"country": country_codes, "region": region_codes, "qc": qc_codes},
        axes=axes,
    )


def load_map_meta(store, name: str) -> dict:
    return store.open_dataset(MAP_KIND, name).meta


class _Cache:
    """The latest few values by key, built once each even when asked for at once."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[tuple, threading.Lock] = {}

    def get(self, key: tuple, make) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            value = make()
            with self._lock:
                self._items[key] = value
                self._building.pop(key, None)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
            return value


def _cache(request: Request) -> _Cache:
    cache = getattr(request.app.state, "strains_cache", None)
    if cache is None:
        cache = request.app.state.strains_cache = _Cache()
    return cache


def _versions(store, name: str) -> tuple[str, str]:
    coll = Collection.open(store, name)
    if not store.has_dataset(MAP_KIND, name):
        raise NotFoundError(
            f"collection {name!r} has no map yet: run `sandgrain strains map --collection {name}`"
        )
    return (
        str(coll.dataset.manifest["version"]),
        str(store.open_dataset(MAP_KIND, name).manifest["version"]),
    )


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: ``None`` in their place, all the way down."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _summary(store, coll: Collection) -> dict[str, Any]:
    out = coll.summary()
    out["has_map"] = store.has_dataset(MAP_KIND, coll.name)
    return out


def _readable(request: Request, name: str) -> None:
    """Refuse a collection whose genomes the caller may not see (its tier, :mod:`sandgrain.
    strains.access`): 401 for an anonymous caller (a token may help), 403 otherwise."""
    from ..strains.access import access_of, level
    from .strains_paths import Forbidden, Unauthorized, caller_of

    store = request.app.state.store
    caller = caller_of(request)
    if level(access_of(store, name), caller, name) != "full":
        if not caller.authenticated:
            raise Unauthorized(f"collection {name!r} is not public: send a bearer token")
        raise Forbidden(f"you have no access to the genomes of collection {name!r}")


@router.get("/collections")
def collections(request: Request) -> list[dict[str, Any]]:
    """Every strains collection in the store: genomes, QC statuses, reference, map or not."""
    store = request.app.state.store
    return [_summary(store, c) for c in list_collections(store)]


@router.get("/{collection}/map")
def map_points(
    request: Request,
    collection: str = CollectionPath,
    offset: int = Query(0, ge=0, le=1_000_000_000, description="First point of the page."),
    limit: int = Query(DEFAULT_MAP_PAGE, ge=1, le=MAX_MAP_PAGE, description="Points per page."),
) -> dict[str, Any]:
    """A page of the map's points as columns (strain, x, y, day, country, region, qc)."""
    _readable(request, collection)
    store = request.app.state.store
    key = ("map", collection, *_versions(store, collection))
    table = _cache(request).get(key, lambda: map_table(store, collection))
    return _finite(table.page(offset, limit))


@router.get("/{collection}/genomes/{strain:path}")
def genome(
    request: Request, collection: str = CollectionPath, strain: str = Path(..., max_length=500)
) -> dict[str, Any]:
    """One genome: its mutation calls, its QC and its metadata."""
    coll = Collection.open(request.app.state.store, collection)
    _readable(request, collection)
    calls = coll.calls(strain).to_dict()
    import pyarrow.compute as pc

    meta = coll.metadata()
    rows = meta.filter(pc.equal(meta.column("strain"), strain)).to_pylist()
    row = rows[0] if rows else {}
    row.pop("strain", None)
    calls["metadata"] = row
    calls["collection"] = collection
    calls["version"] = coll.dataset.manifest["version"]
    return _finite(calls)


def _drift(
    store, name: str, root: str, metric: str, window_days: int, min_per_window: int,
    max_points: int, qc: str,
):  # fmt: skip
    coll = Collection.open(store, name)
    got = collection_drift(
        coll, root=root, metric=metric, window_days=window_days, min_per_window=min_per_window,
        qc=qc,
    )  # fmt: skip
    found, fit = got["found"], got["fit"]
    params = {"collection": name, "root": root, "metric": metric, "window_days": window_days,
              "min_per_window": min_per_window, "qc": qc}  # fmt: skip
    inputs = [{"source": f"strains collection {name}",
               "version": coll.dataset.manifest["version"]}]  # fmt: skip
    out = fit.to_dict()
    # the points drawn: all of them, or an even spread of max_points (the fit used them all)
    total = len(found["strain"])
    keep = np.arange(total)
    if total > max_points:
        keep = np.unique(np.linspace(0, total - 1, max_points).round().astype(np.int64))
    out.update(
        collection=name,
        root=root,
        metric=metric,
        root_substitutions=found["root_substitutions"],
        undated=found["undated"],
        qc=qc,
        qc_left_out=got["qc_left_out"],
        published_clock=PUBLISHED_CLOCK,
        points_total=len(found["strain"]),
        points={
            "strain": [found["strain"][i] for i in keep],
            "date": [found["date"][i] for i in keep],
            "years": np.round(found["years"][keep], 6).tolist(),
            "distance": found["distance"][keep].tolist(),
        },
        provenance=provenance("strains drift", params, inputs),
    )
    return _finite(out)


@router.get("/{collection}/drift")
def drift(
    request: Request,
    collection: str = CollectionPath,
    root: Literal["reference", "earliest"] = Query("reference"),
    metric: Literal["substitutions", "kmers"] = Query("substitutions"),
    window_days: int = Query(30, ge=1, le=3650),
    min_per_window: int = Query(10, ge=3, le=1_000_000),
    max_points: int = Query(
        DEFAULT_DRIFT_POINTS, ge=0, le=MAX_MAP_PAGE, description="Most points returned."
    ),
    qc: str = Query(
        DRIFT_QC, max_length=64,
        description="QC statuses counted (comma-separated), or all; bad genomes are left out by "
        "default.",
    ),
) -> dict[str, Any]:
    """Distance from the root against date: rate per year with its 95 % CI, per-window rates,
    the acceleration test and the points."""
    store = request.app.state.store
    version = str(Collection.open(store, collection).dataset.manifest["version"])
    _readable(request, collection)
    key = ("drift", collection, version, root, metric, window_days, min_per_window, max_points,
           qc)  # fmt: skip
    return _cache(request).get(
        key,
        lambda: _drift(
            store, collection, root, metric, window_days, min_per_window, max_points, qc
        ),
    )


# -- the page -------------------------------------------------------------------------------------


def _page(request: Request, collection: str | None) -> HTMLResponse:
    store = request.app.state.store
    known = [_summary(store, c) for c in list_collections(store)]
    names = [c["collection"] for c in known]
    status = 200
    missing = None
    if collection is None:
        with_map = [c["collection"] for c in known if c["has_map"]]
        collection = (with_map or names or [None])[0]
    elif collection not in names:
        status, missing = 404, f"no collection {collection!r} in this store"
    data = _page_data(
        collection=collection, collections=known, page_size=DEFAULT_MAP_PAGE, missing=missing
    )
    context = {
        "page": "strains",
        "version": __version__,
        "store": store.url,
        "collection": collection,
        "collections": known,
        "missing": missing,
        "page_data": data,
    }
    return TEMPLATES.TemplateResponse(request, "strains.html", context, status_code=status)


@pages.get("/strains", response_class=HTMLResponse)
def strains_page(request: Request):
    """The map of the first collection that has one."""
    return _page(request, None)


@pages.get("/strains/{collection}", response_class=HTMLResponse)
def collection_page(request: Request, collection: str):
    """One collection's map, drift plot and genomes."""
    return _page(request, collection)
