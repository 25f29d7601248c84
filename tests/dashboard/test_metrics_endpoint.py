"""The dashboard backend's ``/metrics``, served the way an operator runs it (``reflex run --env
prod --single-port``: frontend and backend on one port) and asked with plain HTTP requests: a
404 while ``metrics_enabled`` is off; with ``metrics_token`` set, 401 without the token or with a
wrong one and the metrics with the right one; without a token, the metrics to anyone."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cleanup_core.metrics import render
from tender_dashboard_reflex.api import bearer_token_matches
from tests.conftest import TZ
from tests.helpers.dashboard_server import Server, ServerError, app_env, log_problems, serve
from tests.helpers.metrics_fleet import (
    HOSTILE,
    parse_exposition,
    runs_by_portal,
    seed_metrics_fleet,
)

TOKEN = "7f3a9c-metrics-scrape-token"
# The app is started three times; one SQLite file is enough (the metrics' own tests cover both
# backends).
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def fleet(service, runs, checkpoint_dir):
    return seed_metrics_fleet(service, runs, checkpoint_dir)


@contextmanager
def dashboard(
    db_url: str, checkpoint_dir: Path, tmp_path: Path, **settings: str
) -> Iterator[Server]:
    cleanup_env = {
        "CLEANUP_DATABASE_URL": db_url,
        "CLEANUP_CHECKPOINT_DIR": str(checkpoint_dir),
        "CLEANUP_TIMEZONE": TZ,
        **{f"CLEANUP_{name.upper()}": value for name, value in settings.items()},
    }
    log_path = tmp_path / "reflex.log"
    try:
        with serve(app_env(cleanup_env), log_path) as server:
            yield server
    except ServerError as exc:
        pytest.fail(str(exc))
    problems = log_problems(log_path.read_text(errors="replace"))
    assert not problems, "the app logged errors:\n" + "\n".join(problems)


def get(
    url: str, authorization: str | None = None, accept: str | None = None
) -> tuple[int, dict[str, str], str]:
    headers = {"Authorization": authorization} if authorization is not None else {}
    if accept is not None:
        headers["Accept"] = accept
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (our own app)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), refused.read().decode()


@sqlite_only
def test_off_by_default_it_is_not_found(db_url, checkpoint_dir, tmp_path, fleet):
    with dashboard(db_url, checkpoint_dir, tmp_path) as app:
        status, _, body = get(f"{app.url}/metrics")
        assert status == 404
        assert "cleanup_" not in body
        assert get(f"{app.url}/metrics", f"Bearer {TOKEN}")[0] == 404
        assert get(f"{app.url}/ping")[0] == 200, "the backend is up"


@sqlite_only
def test_with_a_token_only_the_right_bearer_gets_the_metrics(
    db_url, checkpoint_dir, tmp_path, service, fleet
):
    with dashboard(
        db_url, checkpoint_dir, tmp_path, metrics_enabled="true", metrics_token=TOKEN
    ) as app:
        url = f"{app.url}/metrics"
        for authorization in (
            None,
            "",
            "Bearer",
            "Bearer wrong-token",
            f"Bearer {TOKEN}x",
            f"Basic {TOKEN}",
            TOKEN,
        ):
            status, headers, body = get(url, authorization)
            assert status == 401, authorization
            assert headers["www-authenticate"] == "Bearer"
            assert "cleanup_" not in body
        status, headers, body = get(url, f"Bearer {TOKEN}")
        openmetrics = get(url, f"Bearer {TOKEN}", accept="application/openmetrics-text")
        log = app.log()
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_exposition(body)
    assert runs_by_portal(samples) == fleet.states
    assert HOSTILE in runs_by_portal(samples)
    assert samples[("cleanup_up", frozenset())] == 1
    assert runs_by_portal(samples) == runs_by_portal(parse_exposition(render(service).decode()))
    assert openmetrics[0] == 200, "the format Prometheus asks for, as prometheus_client serves"
    assert openmetrics[1]["content-type"].startswith("application/openmetrics-text")
    assert openmetrics[2].endswith("# EOF\n")
    assert log.count("refused a /metrics request from 127.0.0.1") == 7
    assert TOKEN not in log, "the token never reaches the log"


@sqlite_only
def test_enabled_without_a_token_anyone_gets_the_metrics(db_url, checkpoint_dir, tmp_path, fleet):
    with dashboard(db_url, checkpoint_dir, tmp_path, metrics_enabled="true") as app:
        status, _, body = get(f"{app.url}/metrics")
        page, _, html = get(f"{app.url}/")
    assert status == 200
    assert runs_by_portal(parse_exposition(body)) == fleet.states
    assert page == 200 and "<html" in html.lower(), "the single port still serves the pages"


@pytest.mark.parametrize(
    ("authorization", "matches"),
    [
        (f"Bearer {TOKEN}", True),
        (f"bearer {TOKEN}", True),
        (f"  Bearer   {TOKEN}  ", True),
        (None, False),
        ("", False),
        ("Bearer ", False),
        (f"Bearer {TOKEN[:-1]}", False),
        (f"Token {TOKEN}", False),
        (f"Bearer{TOKEN}", False),
        ("Bearer ünïcode", False),
    ],
)
def test_bearer_token_matches(authorization, matches):
    assert bearer_token_matches(authorization, TOKEN) is matches
