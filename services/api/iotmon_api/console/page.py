"""The console page and its static files, shipped in the package (no build step).

The page holds no data: it asks for a token, keeps it in the tab's sessionStorage, and
calls the API with it like any client; the server decides what the token may see.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from iotmon_api.problems import NotFound

_STATIC = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
# Snapshots come from the video service's media server, wherever it is.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' http: https: data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _asset(name: str) -> str:
    return files("iotmon_api.console").joinpath("static", name).read_text(encoding="utf-8")


def console_page_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/console")
    def page() -> HTMLResponse:
        return HTMLResponse(_asset("index.html"), headers=_HEADERS)

    @router.get("/console/")
    def slash() -> RedirectResponse:
        return RedirectResponse("/console", status_code=308)

    @router.get("/console/static/{name}")
    def static(name: str) -> Response:
        media_type = _STATIC.get(name)
        if media_type is None:
            raise NotFound(f"no console file {name!r}")
        return Response(_asset(name), media_type=media_type, headers=_HEADERS)

    return router
