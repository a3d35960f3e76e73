"""The browser pages: `/login` and `/wallboard`, and their assets under `/ui/`.

Static HTML, CSS and JavaScript shipped in the package (api/static): no CDN,
no build step. The pages hold no data and need no credential; what they show
comes from the API with the session cookie (api/auth/cookies.py), which
decides what the caller may see and do.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

from api.auth import session
from api.routes import live_stream

STATIC = Path(__file__).resolve().parent.parent / "static"
# Only these files are served (no path from the request reaches the file system).
ASSETS = {
    "live.css": "text/css; charset=utf-8",
    "live.js": "text/javascript; charset=utf-8",
    "login.js": "text/javascript; charset=utf-8",
}
# The pages change with the package: a browser revalidates rather than keep an old one.
NO_CACHE = {"Cache-Control": "no-cache"}
# The pages load only their own assets and talk only to their own origin.
CSP = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"}

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html; charset=utf-8",
                        headers={**NO_CACHE, **CSP})


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/wallboard", status_code=303)


@router.get("/login")
async def login_page() -> FileResponse:
    return _page("login.html")


@router.get("/wallboard")
async def wallboard_page() -> FileResponse:
    return _page("wallboard.html")


@router.get("/ui/{name}")
async def asset(name: str) -> FileResponse:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404)
    return FileResponse(STATIC / name, media_type=media_type, headers=NO_CACHE)


# The browser's routes `dialtone api` mounts: these pages, the cookie session and the stream.
BROWSER_ROUTERS: tuple[APIRouter, ...] = (router, session.router, live_stream.router)
