"""Who may see what of a collection: access tiers as the Beacon has them.

A collection is ``public`` (anyone sees its genomes), ``registered`` (signed-in callers see its
genomes; anonymous ones only counts) or ``controlled`` (only the subjects it names, or callers
whose GA4GH visas grant the collection, see its genomes; everyone else only counts). A caller
who may only count gets, from such a collection, the number of genomes at each distance (the
searches) or the number of matching genomes (profiles) — never an id, a date, a place or a
mutation list — and a count under :data:`MIN_COUNT` is shown as ``"<5"`` whatever it is, zero
included, so that two queries cannot be compared to single out one genome (the same floor as
the Beacon's ``min_count``).

The tier is stored beside the collection as a small dataset of kind :data:`KIND` (same name),
published atomically; a collection without one is public. The command line reads stores
directly, so its user is the store's owner and sees everything; tiers apply to the web API.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InputError
from ..provenance import provenance
from ..storage import Store, check_name

__all__ = [
    "KIND",
    "MIN_COUNT",
    "TIERS",
    "Access",
    "Caller",
    "access_of",
    "floor",
    "level",
    "set_access",
]

KIND = "strainaccess"
TIERS = ("public", "registered", "controlled")
MIN_COUNT = 5
MAX_SUBJECTS = 10_000


@dataclass(frozen=True)
class Access:
    tier: str = "public"
    subjects: tuple[str, ...] = ()


@dataclass(frozen=True)
class Caller:
    """The one asking: anonymous unless ``authenticated``; ``granted`` names collections a
    verified visa grants."""

    subject: str | None = None
    authenticated: bool = False
    granted: frozenset[str] = field(default_factory=frozenset)


OWNER = None  # the command line: sees everything


def access_of(store: Store, collection: str) -> Access:
    if not store.has_dataset(KIND, collection):
        return Access()
    meta = store.open_dataset(KIND, collection).meta
    return Access(meta.get("tier", "public"), tuple(meta.get("subjects", ())))


def set_access(
    store: Store, collection: str, tier: str, subjects: list[str] | None = None
) -> Access:
    """Publish a collection's tier (and, for ``controlled``, the subjects who see it)."""
    check_name(collection, "collection name")
    if tier not in TIERS:
        raise InputError(f"the tier is one of {', '.join(TIERS)}, not {tier!r}")
    subjects = sorted({s.strip() for s in subjects or () if s.strip()})
    if subjects and tier != "controlled":
        raise InputError("subjects are named for a controlled collection only")
    if len(subjects) > MAX_SUBJECTS:
        raise InputError(f"at most {MAX_SUBJECTS:,} subjects")
    from .collection import Collection

    Collection.open(store, collection)  # it must exist
    replace = store.has_dataset(KIND, collection)
    with store.new_dataset(
        KIND, collection, format="sandgrain.strainaccess", format_version=1, replace=replace
    ) as ds:
        ds.meta = {"tier": tier, "subjects": subjects}
        ds.provenance = provenance("strains access", {"collection": collection, "tier": tier,
                                                      "subjects": len(subjects)}, [])  # fmt: skip
    return Access(tier, tuple(subjects))


def level(access: Access, caller: Caller | None, collection: str) -> str:
    """``"full"`` or ``"counts"``: what ``caller`` may see of a collection with ``access``
    (``caller`` None: the store's owner)."""
    if caller is None or access.tier == "public":
        return "full"
    if access.tier == "registered":
        return "full" if caller.authenticated else "counts"
    if caller.authenticated and (
        (caller.subject is not None and caller.subject in access.subjects)
        or collection in caller.granted
    ):
        return "full"
    return "counts"


def floor(n: int) -> int | str:
    """A count as a caller who may only count sees it."""
    return n if n >= MIN_COUNT else f"<{MIN_COUNT}"
