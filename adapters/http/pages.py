"""The pages ReelPulse serves to browsers beside its APIs: the dashboard, its static files,
the favicon and ReDoc. Every asset comes from the package: a page must work offline."""

from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from adapters.auth.policy import PUBLIC

STATIC = Path(__file__).parent / "static"
REDOC_JS = Path(fastapi_offline.__file__).parent / "static" / "redoc.standalone.js"
# ReDoc's side menu shows Redocly's logo from their CDN (unconditionally, in an <img>):
# offline that is a failed request and a console error, so the script ReelPulse serves
# shows the page's own icon instead.
REDOCLY_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
LOCAL_LOGO = b"/favicon.ico"


@cache
def _redoc_script() -> bytes:
    return REDOC_JS.read_bytes().replace(REDOCLY_LOGO, LOCAL_LOGO)


def install_pages(app: FastAPI) -> None:
    """/dashboard, /static/*, /favicon.ico and /redoc (the app is made with redoc_url=None:
    fastapi-offline's own page loads the logo above)."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/dashboard", include_in_schema=False, dependencies=[PUBLIC])
    def dashboard() -> FileResponse:
        """The live dashboard: a static page over the public GraphQL API."""
        return FileResponse(STATIC / "dashboard.html")

    @app.get("/favicon.ico", include_in_schema=False, dependencies=[PUBLIC])
    def favicon() -> FileResponse:
        """What a browser's tab asks for on every page (a 404 in the console otherwise)."""
        return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon")

    @app.get("/redoc", include_in_schema=False, dependencies=[PUBLIC])
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url="/docs-assets/redoc.standalone.js",
            redoc_favicon_url="/favicon.ico",
            with_google_fonts=False,
        )

    @app.get("/docs-assets/redoc.standalone.js", include_in_schema=False, dependencies=[PUBLIC])
    def redoc_script() -> Response:
        return Response(
            _redoc_script(),
            media_type="text/javascript",
            headers={"cache-control": "public, max-age=86400"},
        )
