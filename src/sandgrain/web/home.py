"""The home page (``/``): a card for every page the registered domains offer, and the API docs.

Each card says what the tool does and which real example it opens with (:class:`sandgrain.
registry.Page`, declared by the domain), and links to the page with that example loaded. Nothing
here names a domain: the cards are the app's ``app.state.pages``, made from the registry.

A page that lived at ``/`` before (``Page.moved_from``: the guide design form did) keeps its old
links working: ``/`` with a query string (``/?genome=yeast&gene=ADE2``, a result page's "new
design" link) is redirected there with its query, so it still opens the form filled in.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from .. import __version__
from .pages import TEMPLATES, _page_data

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home_page(request: Request):
    """Every tool of this server, each with the example it opens with."""
    pages = request.app.state.pages
    moved = next((p for p in pages if p.moved_from == "/"), None)
    if request.url.query and moved is not None:
        return RedirectResponse(f"{moved.path}?{request.url.query}", status_code=307)
    context = {
        "page": "home",
        "version": __version__,
        "store": request.app.state.store.url,
        "pages": pages,
        "page_data": _page_data(pages=[p.path for p in pages]),
    }
    return TEMPLATES.TemplateResponse(request, "home.html", context)
