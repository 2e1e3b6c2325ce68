"""The domains sandgrain knows, and what each adds to the interfaces.

A domain (``genome``, ``guides``, ``beacon``, …) declares, in one module of its own
(``sandgrain/<domain>/domain.py``), a :class:`Domain`: its CLI sub-app, its web routers and
pages, its job kinds, its dataset kinds, its settings section, its fan-out task functions and
its demo data. The CLI (:mod:`sandgrain.cli`), the web app (:mod:`sandgrain.web.app`),
``sandgrain serve`` and ``sandgrain demo`` read :func:`domains` and wire in what they find; none
of them names a domain. Adding a domain therefore touches no interface file:

1. write ``sandgrain/<name>/domain.py`` with ``DOMAIN = Domain(...)``;
2. add ``"sandgrain.<name>.domain:DOMAIN"`` to :data:`BUILTIN` below — or, for a third-party
   package, declare an entry point in the ``sandgrain.domains`` group of its ``pyproject.toml``::

       [project.entry-points."sandgrain.domains"]
       mydomain = "mypackage.domain:DOMAIN"

Everything a domain names is a ``"module:attribute"`` reference, imported only when an interface
needs it: a domain module never imports an interface (the CLI and web modules it names are
interface modules that import the domain, not the other way round), and ``sandgrain --help``
does not import FastAPI.

Each reference's contract:

``cli``
    a :class:`typer.Typer`, mounted as ``sandgrain <Domain.name>``.
``cli_extensions``
    ``(group, command, "module:function")``: a command added to another domain's group (the
    guides domain adds ``sandgrain genome index``, so the genome CLI never builds guide indexes).
``routers``
    :class:`fastapi.APIRouter` objects included in the app (API and pages alike).
``job_kinds``
    job kind → factory ``f(services: Services) -> handler``; a handler gets a
    :class:`~sandgrain.jobs.JobContext` and returns the store key of its result.
``dataset_kinds``
    the manifest names this domain publishes in the store, with a line each.
``settings``
    a :class:`~sandgrain.config.SettingsSection` subclass, read with ``settings.section(cls)``.
``tasks``
    the fan-out task functions this domain plans (``Task("module:function", …)``): workers of a
    Dask cluster or a Lithops runtime must be able to import them.
``demo``
    ``f(ctx: DemoContext) -> None``: what ``sandgrain demo`` (and ``make run``) puts in the store.
``web_state``
    ``f(services: Services) -> object | None``: a per-app resource (a cache, a connection pool)
    kept on ``app.state.<Domain.name>`` and closed (``close()``) when the app stops.
``pages``
    the :class:`Page` objects this domain's routers serve to people: the web app's navigation
    and its home page (``/``, a card per page) are made from them, in registration order. A
    page says what it does and which real example it opens with (from the demo data).
``provides``
    capability name → ``"module:function"``: a function this domain offers other domains,
    which may not import it (the strains and beacon domains code free-text columns with the
    phenotypes domain's ``"clinical-text.code-columns"``). A user gets it with
    :func:`capability`; each capability's arguments and result are documented where it is
    defined, and one capability has one provider.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from .errors import ConflictError, InputError, NotFoundError

#: The domains shipped with sandgrain, in the order the interfaces list them.
BUILTIN: tuple[str, ...] = (
    "sandgrain.genome.domain:DOMAIN",
    "sandgrain.guides.domain:DOMAIN",
    "sandgrain.beacon.domain:DOMAIN",
    "sandgrain.strains.domain:DOMAIN",
    "sandgrain.phenotypes.domain:DOMAIN",
    "sandgrain.association.domain:DOMAIN",
    "sandgrain.calling.domain:DOMAIN",
)

#: Entry-point group through which other packages add domains.
ENTRY_POINT_GROUP = "sandgrain.domains"


@dataclass(frozen=True)
class Page:
    """A page of the web app that a domain offers (see ``pages`` in the module docstring).

    ``path`` is the page's address (the navigation links it); ``title`` names it in the
    navigation and on its home-page card; ``summary`` says in one line what it does;
    ``example`` says in one line which real example it opens with. ``href``, when given, is
    where the card links instead of ``path`` (the page with its example in the query string);
    ``links`` are further ``(label, href)`` links on the card. ``nav=False`` keeps the page off
    the navigation bar (an API endpoint rather than a page, such as the Beacon's).
    ``moved_from`` is the path the page had before: a link there with a query string (an old
    bookmark of the filled-in form) is redirected to the page with the same query.
    """

    path: str
    title: str
    summary: str
    example: str
    href: str | None = None
    links: tuple[tuple[str, str], ...] = ()
    nav: bool = True
    moved_from: str | None = None

    def __post_init__(self) -> None:
        for target in (self.path, self.href or "/", *(h for _, h in self.links)):
            if not target.startswith("/") or target.startswith("//"):
                raise InputError(f"a page links within the app (a path from /), not {target!r}")

    @property
    def url(self) -> str:
        """Where the page's card links: the page with its example."""
        return self.href or self.path


@dataclass(frozen=True)
class Domain:
    """What one domain adds to sandgrain (see the module docstring for each field's contract)."""

    name: str
    summary: str
    cli: str | None = None
    cli_extensions: tuple[tuple[str, str, str], ...] = ()
    routers: tuple[str, ...] = ()
    job_kinds: Mapping[str, str] = field(default_factory=dict)
    dataset_kinds: Mapping[str, str] = field(default_factory=dict)
    settings: str | None = None
    tasks: tuple[str, ...] = ()
    demo: str | None = None
    web_state: str | None = None
    provides: Mapping[str, str] = field(default_factory=dict)
    pages: tuple[Page, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise InputError(f"a domain name is a lower-case identifier, not {self.name!r}")


@dataclass(frozen=True)
class Services:
    """What job handlers and web state get from the interface that runs them.

    ``genome(name)`` opens a genome by name or alias; the web app passes a cache shared by its
    requests and jobs, the CLI opens it afresh.
    """

    settings: Any
    store: Any
    genome: Callable[[str], Any]


@dataclass
class DemoContext:
    """What a domain's demo step gets: where the shared data lies and how to report.

    ``progress(label)`` is a context manager yielding a progress callback ``(done, total)``;
    ``byte_progress()`` one for byte counts (file imports); ``echo`` prints one line for the user.
    ``done`` lists the demo steps already run (a later domain may use an earlier one's genomes).
    """

    store: Any
    data: Path
    settings: Any
    progress: Callable[[str], AbstractContextManager[Callable[[int, int], None]]]
    byte_progress: Callable[[], AbstractContextManager[Any]]
    echo: Callable[[str], None]
    done: list[str] = field(default_factory=list)


def resolve(reference: str) -> Any:
    """The object a ``"module:attribute"`` reference names."""
    module, sep, attr = reference.partition(":")
    if not sep or not module or not attr:
        raise InputError(f"a reference is 'module:attribute', not {reference!r}")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@cache
def domains() -> tuple[Domain, ...]:
    """Every registered domain: :data:`BUILTIN`, then entry points, each name once."""
    found: list[Domain] = []
    seen: set[str] = set()
    references = list(BUILTIN) + [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)]
    for reference in references:
        domain = resolve(reference)
        if not isinstance(domain, Domain):
            raise TypeError(f"{reference} is a {type(domain).__name__}, not a sandgrain Domain")
        if domain.name in seen:
            continue
        seen.add(domain.name)
        found.append(domain)
    return tuple(found)


def get(name: str) -> Domain:
    """One registered domain by name."""
    for domain in domains():
        if domain.name == name:
            return domain
    raise InputError(f"no domain {name!r}; known: {', '.join(d.name for d in domains())}")


def pages(among: Sequence[Domain] | None = None) -> tuple[Page, ...]:
    """Every page the domains (or ``among``) offer, in registration order; two may not share a
    path."""
    found: dict[str, Page] = {}
    for domain in domains() if among is None else among:
        for page in domain.pages:
            if page.path in found:
                raise TypeError(f"page {page.path} is declared twice (again by {domain.name})")
            found[page.path] = page
    return tuple(found.values())


def job_handlers(services: Services, among: Sequence[Domain] | None = None) -> dict[str, Callable]:
    """Job kind → handler, over every domain (or ``among``); two may not claim one kind."""
    handlers: dict[str, Callable] = {}
    for domain in domains() if among is None else among:
        for kind, factory in domain.job_kinds.items():
            if kind in handlers:
                raise TypeError(f"job kind {kind!r} is registered twice (again by {domain.name})")
            handlers[kind] = resolve(factory)(services)
    return handlers


def dataset_kinds() -> dict[str, str]:
    """Every dataset kind (manifest name) any domain publishes → the domain that owns it."""
    kinds: dict[str, str] = {}
    for domain in domains():
        for kind in domain.dataset_kinds:
            if kind in kinds:
                raise TypeError(f"dataset kind {kind!r} is claimed by {kinds[kind]} and "
                                f"{domain.name}")
            kinds[kind] = domain.name
    return kinds


def capability(name: str, among: Sequence[Domain] | None = None) -> Callable:
    """The function that the one registered domain (or one of ``among``) providing capability
    ``name`` names in :attr:`Domain.provides`.

    Raises :class:`~sandgrain.errors.NotFoundError` when no domain provides it (its package is
    not installed) and :class:`~sandgrain.errors.ConflictError` when two do.
    """
    providers = [d for d in (domains() if among is None else among) if name in d.provides]
    if not providers:
        raise NotFoundError(
            f"no installed domain provides {name!r} (is the domain that offers it registered?)"
        )
    if len(providers) > 1:
        raise ConflictError(
            f"capability {name!r} is provided by {' and '.join(d.name for d in providers)}; "
            "one domain may provide it"
        )
    return resolve(providers[0].provides[name])


def references(domain: Domain) -> Iterator[str]:
    """Every ``module:attribute`` a domain names (the registry test imports each)."""
    yield from filter(None, (domain.cli, domain.settings, domain.demo, domain.web_state))
    yield from (ref for _, _, ref in domain.cli_extensions)
    yield from domain.routers
    yield from domain.job_kinds.values()
    yield from domain.tasks
    yield from domain.provides.values()
