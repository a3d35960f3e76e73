"""The shape every pure-ASGI middleware of the API shares."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class HttpMiddleware:
    """A pure-ASGI middleware that acts on HTTP requests only: lifespan (and any
    other scope) passes through untouched, so startup and shutdown are neither
    counted nor given a request id. Subclasses implement :meth:`handle`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One HTTP request; call ``self.app`` to pass it on."""
        raise NotImplementedError
