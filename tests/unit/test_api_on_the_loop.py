"""Every route and every dependency of the API runs on the event loop.

FastAPI runs a plain `def` endpoint or dependency in the threadpool: one hop to a
worker thread and back per call, each waiting for the GIL while the loop is busy.
Four such trivial dependencies per authenticated GET made a third of the API's
latency at a few hundred requests/s (bench/api.py, bench/README.md); blocking
work goes to the threadpool explicitly (`run_in_threadpool`), never implicitly.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api.app import create_app
from api.auth.audit_routes import router as audit_router
from api.auth.routes import router as auth_router
from api.routes import CALLCENTRE_ROUTERS, ROUTERS


def runs_on_loop(call: Callable[..., Any]) -> bool:
    """Whether FastAPI awaits `call` on the loop (a coroutine or async generator
    function, or an object whose __call__ is one) rather than hopping to a thread."""
    if inspect.isclass(call):  # a class as dependency: its constructor runs in a thread
        return False
    target = call if inspect.isfunction(call) or inspect.ismethod(call) else type(call).__call__
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


# The login form: its constructor runs once per login, beside an argon2 verification
# that takes a thread anyway; not on any read path.
ALLOWED = {"OAuth2PasswordRequestForm"}


def calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from calls(sub)


def test_no_route_or_dependency_runs_in_the_threadpool() -> None:
    routers = (*ROUTERS, *CALLCENTRE_ROUTERS, auth_router, audit_router)
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 50  # the whole API, not an empty walk
    app = create_app("postgresql://nobody@127.0.0.1:1/none", extra_routers=routers[1:])
    app_wide = [d.dependency for d in app.router.dependencies if d.dependency is not None]
    found = [(route.path, call) for route in routes for call in calls(route.dependant)]
    found += [("app", call) for call in app_wide]
    threaded = sorted({f"{where}: {name}" for where, call in found
                       if not runs_on_loop(call)
                       and (name := getattr(call, "__qualname__", repr(call))) not in ALLOWED})
    assert threaded == []
