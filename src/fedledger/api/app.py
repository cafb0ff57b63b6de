"""The FastAPI app behind ``fedledger serve``: the versioned API (``/api/v1``, OpenAPI schema at
``/api/v1/openapi.json``) and the dashboard's static files (``/``).

Unauthenticated paths carry no ledger data: the dashboard's HTML, JavaScript and CSS, the OpenAPI schema, and the
sign-in endpoints. Everything else needs a reader (:mod:`fedledger.api.access`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from fedledger.api.access import ApiState
from fedledger.api.auth import AuditorToken, NonceBook, Sessions
from fedledger.api.routes import router
from fedledger.api.view import LedgerView
from fedledger.exceptions import ConfigError, FedLedgerError
from fedledger.workspace import Workspace

__all__ = ["API_VERSION", "STATIC_DIR", "create_app"]

log = logging.getLogger("fedledger.api")

API_VERSION = "v1"
STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(ws: Workspace, *, auditor_token: str | None = None) -> FastAPI:
    """The app over ``ws`` (read only); ``auditor_token`` (32 characters at least) lets an auditor read without a
    member key. The caller keeps ``ws`` open for the app's lifetime and closes it after."""
    if not ws.config.consortium:
        raise ConfigError(f"workspace {ws.root} has no consortium yet: there is nothing to serve")
    app = FastAPI(
        title="fedledger",
        summary="Read-only API over a fedledger consortium's ledger",
        version=API_VERSION,
        openapi_url=f"/api/{API_VERSION}/openapi.json",
        docs_url=None,  # Swagger UI would load its scripts from a CDN; the schema itself is served
        redoc_url=None,
    )
    app.state.fedledger = ApiState(
        view=LedgerView(ws),
        nonces=NonceBook(),
        sessions=Sessions(),
        auditor=AuditorToken(auditor_token) if auditor_token else None,
    )
    app.include_router(router)
    app.add_exception_handler(FedLedgerError, _unreadable)
    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="dashboard")
    return app


async def _unreadable(request: Request, exc: Exception) -> JSONResponse:
    """A request the ledger could not answer (chain or store unreachable, a blob missing): 503, the reason in the
    server's log only (it may name hosts or paths)."""
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "the ledger could not be read just now; the server's log says why"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
    )
