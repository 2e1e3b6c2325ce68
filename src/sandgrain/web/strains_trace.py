"""The page that traces a new sample: ``/strains/trace`` (and ``/strains/{collection}/trace``).

Paste or upload a FASTA (or type a mutation list), choose the collections and ``k``; the page
(``/static/strains_trace.js``, no library, nothing from outside the app) asks the Path Beacon's
routes of :mod:`sandgrain.web.strains_paths` and shows

- the nearest strains (``POST /api/v1/strains/nearest``) in a table, the query's own and the
  strain's own mutations highlighted;
- the query projected on the collection's k-mer map among its genomes
  (``POST /api/v1/strains/project`` and ``GET /api/v1/strains/{c}/map``), neighbours ringed;
- the query's local tree (``POST /api/v1/strains/place``), or how to build a tree when the
  collection has none;
- the profile search of an expression (``POST /api/v1/strains/profile``; by default the query's
  mutations most shared by its neighbours) as bar charts by month and by country.

The router is registered before the map page's ``/strains/{collection}``, which would otherwise
take ``/strains/trace`` for a collection named "trace".
"""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from .. import __version__
from ..strains.collection import list_collections
from ..strains.embed import KIND as MAP_KIND
from ..strains.tree import KIND as TREE_KIND
from .models import NAME_PATTERN
from .pages import TEMPLATES, _page_data

__all__ = ["DEFAULT_K", "EXAMPLE_MUTATIONS", "pages"]

pages = APIRouter(include_in_schema=False)

#: Neighbours asked for by default.
DEFAULT_K = 10
#: The mutations the form starts with (a pasted FASTA takes their place): those that define
#: SARS-CoV-2 lineage B.1 against NC_045512.2 (5' UTR C241T, ORF1a C3037T, the RdRp's P323L
#: C14408T and spike D614G A23403G); 252 of the demo's 418 genomes carry all four (`sandgrain
#: strains profile "C241T & C3037T & C14408T & A23403G"`), 158 of them from North America.
EXAMPLE_MUTATIONS = "C241T,C3037T,C14408T,A23403G"


def _trace_page(request: Request, collection: str | None) -> HTMLResponse:
    store = request.app.state.store
    known = []
    for c in list_collections(store):
        known.append(
            {**c.summary(), "has_map": store.has_dataset(MAP_KIND, c.name),
             "has_tree": store.has_dataset(TREE_KIND, c.name)}
        )  # fmt: skip
    names = [c["collection"] for c in known]
    status, missing = 200, None
    if collection is None:  # the first that has a map, as the map page
        with_map = [c["collection"] for c in known if c["has_map"]]
        collection = (with_map or names or [None])[0]
    elif collection not in names:
        status, missing = 404, f"no collection {collection!r} in this store"
    data = _page_data(collection=collection, collections=known, k=DEFAULT_K, missing=missing)
    context = {
        "page": "strains-trace",
        "version": __version__,
        "store": store.url,
        "collection": collection,
        "collections": known,
        "missing": missing,
        "k": DEFAULT_K,
        "mutations": EXAMPLE_MUTATIONS,
        "page_data": data,
    }
    return TEMPLATES.TemplateResponse(request, "strains_trace.html", context, status_code=status)


@pages.get("/strains/trace", response_class=HTMLResponse)
def trace_page(request: Request):
    """Trace a new sample over every collection of the store."""
    return _trace_page(request, None)


@pages.get("/strains/{collection}/trace", response_class=HTMLResponse)
def collection_trace_page(
    request: Request, collection: str = Path(..., pattern=NAME_PATTERN, max_length=200)
):
    """Trace a new sample, that collection chosen first."""
    return _trace_page(request, collection)
