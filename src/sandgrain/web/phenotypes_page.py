"""The page that codes a clinical note: ``/phenotypes``.

Type or paste a note (an example is filled in), optionally a patient status and a vaccination
status; the page (``/static/phenotypes.js``, no library, nothing from outside the app) asks the
routes of :mod:`sandgrain.web.phenotypes` and :mod:`sandgrain.web.phenotypes_fhir` and shows

- the note with each HPO term found highlighted where it was read (``POST
  /api/v1/phenotypes/code``), present, negated, uncertain, family and history findings each in
  its own style — not by colour alone: negated ones struck through, uncertain ones underlined
  with dots, family ones boxed with dashes, history ones underlined with dashes;
- the terms in a list with their id, label, context and one path from the ontology's root
  (``GET /api/v1/phenotypes/terms/{id}``); a term can be removed (×) and one added by
  autocomplete (``GET /api/v1/phenotypes/terms?q=``), present or absent;
- the status on the WHO clinical progression scale and the vaccines with their CVX codes
  (``POST /api/v1/phenotypes/outcome``);
- two downloads, the FHIR R4 Bundle and the GA4GH Phenopacket, built from the edited term list
  (``POST /api/v1/phenotypes/fhir`` and ``/phenopacket`` with ``"terms"``), so what is
  downloaded is what the list shows.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from .. import __version__
from .pages import TEMPLATES, _page_data

__all__ = ["EXAMPLE_NOTE", "EXAMPLE_STATUS", "EXAMPLE_VACCINATION", "pages"]

pages = APIRouter(include_in_schema=False)

#: The note the page starts with: a triage note in the usual shorthand (an abbreviation, a
#: temperature, a lay phrase, a negation, a question mark and a relative).
EXAMPLE_NOTE = (
    "62M presenting with SOB and productive cough, febrile to 39.2C. Lost his sense of smell "
    "3 days ago. Denies chest pain. ? pneumonia. Mother has seizures."
)
#: What the optional patient status and vaccination fields start with (a user clears them).
EXAMPLE_STATUS = "Hospitalized, on oxygen"
EXAMPLE_VACCINATION = "2 doses Pfizer"
#: Patient id the form starts with (the FHIR Patient's identifier, the Phenopacket's subject).
DEFAULT_PATIENT = "patient-1"


@pages.get("/phenotypes", response_class=HTMLResponse)
def phenotypes_page(request: Request):
    """Code a clinical note into HPO terms, edit them, download FHIR or a Phenopacket."""
    from ..phenotypes.coder import MAX_TEXT
    from ..phenotypes.export import MAX_FIELD

    context = {
        "page": "phenotypes",
        "version": __version__,
        "store": request.app.state.store.url,
        "note": EXAMPLE_NOTE,
        "status_example": EXAMPLE_STATUS,
        "vaccination_example": EXAMPLE_VACCINATION,
        "patient": DEFAULT_PATIENT,
        "max_text": MAX_TEXT,
        "max_field": MAX_FIELD,
        "page_data": _page_data(max_text=MAX_TEXT, max_field=MAX_FIELD),
    }
    return TEMPLATES.TemplateResponse(request, "phenotypes.html", context)
