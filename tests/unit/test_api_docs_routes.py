"""docs/api.md lists every route the API serves, with the permission it needs.

The app is the one `dialtone up` and `dialtone api` serve (`bootstrap.http_app`);
its routes are walked as FastAPI walks them for the OpenAPI document. Pages the
app leaves out of that document (`include_in_schema=False`: the wallboard's
pages, /docs, /redoc, /openapi.json) and mounts (the docs' static files) are not
API routes and need no row. Each route needs a row of the tables under
"## Every route" whose first cell is the method and path in backticks, exactly as
the app declares them (`` `GET /v1/calls/{call_id}` ``), whose second cell names
the permissions of its security requirements (or says "public"), and whose third
says what it does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from api.auth.dependencies import operation_alternatives
from dialtone import bootstrap

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
SECTION = "## Every route"
ROW = re.compile(r"^\|\s*`(?P<method>[A-Z]+) (?P<path>/[^`\s]*)`\s*\|(?P<cells>.*)\|\s*$")
PERMISSION = re.compile(r"`([a-z-]+:[a-z-]+)`")
Route = tuple[str, str]  # (method, path)


@pytest.fixture(scope="module")
def app() -> FastAPI:
    # http_app opens the call-centre service on the database at once (its commands'
    # service); the routes do not need it, so a unit test builds the app without one.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bootstrap, "callcentre_service", lambda _database_url: None)
        return bootstrap.http_app("postgresql://nobody@127.0.0.1:1/none")


def served(app: FastAPI) -> set[Route]:
    """Every (method, path) the app answers, but pages out of its OpenAPI document."""
    found: set[Route] = set()
    for route in iter_route_contexts(app.routes):
        methods = route.methods
        if not methods or not getattr(route, "include_in_schema", True):
            continue  # a mount (static files), or a page the app does not document
        path = route.path
        assert path is not None
        found |= {(method, path) for method in methods
                  if not (method == "HEAD" and "GET" in methods)}  # Starlette adds HEAD
    return found


def permissions(app: FastAPI) -> dict[Route, set[str] | None]:
    """The permissions each documented operation accepts (any of its security
    requirements'); None for a public one."""
    found: dict[Route, set[str] | None] = {}
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            alternatives = operation_alternatives(operation)
            found[(method.upper(), path)] = (
                None if operation.get("x-public") else set().union(*alternatives))
    return found


def rows(text: str) -> Iterator[tuple[Route, list[str]]]:
    """The route rows of the section "## Every route": (method, path) and the cells
    after the first (nothing when the section is missing)."""
    start = text.find(SECTION + "\n")
    if start == -1:
        return
    end = text.find("\n## ", start + len(SECTION))
    for line in text[start:end if end != -1 else None].splitlines():
        match = ROW.match(line)
        if match:
            cells = [cell.strip() for cell in match["cells"].split("|")]
            yield (match["method"], match["path"]), cells


def documented(text: str) -> dict[Route, list[str]]:
    found: dict[Route, list[str]] = {}
    for route, cells in rows(text):
        assert route not in found, f"{' '.join(route)} is listed twice in docs/api.md"
        found[route] = cells
    return found


def test_the_walk_finds_the_whole_api_and_leaves_the_pages_out(app: FastAPI) -> None:
    routes = served(app)
    assert len(routes) > 90  # the whole API (call centre, auth, browser session), not a part
    assert {("GET", "/v1/calls"), ("POST", "/v1/agents/{key}/pause"), ("GET", "/metrics"),
            ("DELETE", "/v1/auth/session"), ("GET", "/v1/live/stream")} <= routes
    assert not {("GET", "/wallboard"), ("GET", "/docs"), ("GET", "/openapi.json")} & routes
    assert routes <= set(permissions(app))  # every route served is in the OpenAPI document


def test_every_route_of_the_app_is_in_docs_api_md(app: FastAPI) -> None:
    missing = sorted(served(app) - set(documented(DOC.read_text())))
    assert not missing, ("routes missing from docs/api.md, section 'Every route': "
                         + ", ".join(f"{m} {p}" for m, p in missing))


def test_docs_api_md_lists_no_route_the_app_does_not_serve(app: FastAPI) -> None:
    stale = sorted(set(documented(DOC.read_text())) - served(app))
    assert not stale, "docs/api.md lists routes the app does not serve: " + ", ".join(
        f"{m} {p}" for m, p in stale)


def test_each_row_names_the_routes_permission_and_what_it_does(app: FastAPI) -> None:
    needed = permissions(app)
    wrong = []
    for route, cells in documented(DOC.read_text()).items():
        if route not in needed:
            continue  # the test above names it
        listed, does = cells[0], cells[1] if len(cells) > 1 else ""
        expected = needed[route]
        named = set(PERMISSION.findall(listed))
        if (expected is None and (named or "public" not in listed)) or (
                expected is not None and named != expected) or not does:
            wrong.append(f"{' '.join(route)}: listed {listed!r}, needs "
                         f"{'none (public)' if expected is None else sorted(expected)}")
    assert not wrong, "docs/api.md rows that disagree with the app:\n" + "\n".join(wrong)
