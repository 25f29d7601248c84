"""The backend's own HTTP routes next to Reflex's: ``/metrics`` for Prometheus.

Mounted with ``rx.App(api_transformer=api)``, so it answers on the backend's port (the single
port of ``reflex run --env prod --single-port``). Off unless ``metrics_enabled``: then it is a
404 like any unknown path. With ``metrics_token`` set, a scrape must send
``Authorization: Bearer <token>``; the token is compared in constant time.
"""

from __future__ import annotations

import hmac
import logging

from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from cleanup_core.metrics import registry
from tender_dashboard_reflex.backend import service

log = logging.getLogger("tender_dashboard_reflex.api")


def bearer_token_matches(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>``, compared in constant
    time (the scheme's case does not matter)."""
    scheme, _, given = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def metrics(request: Request) -> Response:
    """The metrics, read anew for each scrape, in the format the scraper asks for (Prometheus
    text, or OpenMetrics), as prometheus_client's own server does. A plain function: Starlette
    runs it in a worker thread, so the database reads do not block the event loop."""
    settings = service().settings
    if not settings.metrics_enabled:
        return PlainTextResponse("Not Found", status_code=404)
    token = settings.metrics_token
    if token is not None and not bearer_token_matches(request.headers.get("authorization"), token):
        client = request.client.host if request.client else "unknown"
        log.warning("refused a /metrics request from %s: missing or wrong bearer token", client)
        return PlainTextResponse(
            "Unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(registry(service())), headers={"Content-Type": content_type})


api = Starlette(routes=[Route("/metrics", metrics, methods=["GET"])])
