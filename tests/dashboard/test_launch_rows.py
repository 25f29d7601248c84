"""The latest launch on the run page and the Portals page: its state, who and when, and the
last lines of its log, escaped; a second Resume while the first is starting is refused with a
message. Real state handlers, a real SQLite file, a real launched process."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import time
from collections.abc import Iterator

import pytest

from tender_dashboard_reflex import backend
from tender_dashboard_reflex.state.portals import PortalsState
from tender_dashboard_reflex.state.runs import RunDetailState
from tests.dashboard.support import ADMIN_NAME, Dash, make_state, toast
from tests.dashboard.test_escaped_rows import CLEAR, unsafe_text

# Prints a line with a terminal escape and a bidi override, then keeps "scraping".
SLOW = "{python} -c " + shlex.quote(
    "import time; print('page 1 \\x1b[2J done \\u202egpj.exe', flush=True); time.sleep(60)"
)


@pytest.fixture
def slow_resume(dash: Dash, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dash]:
    monkeypatch.setenv("CLEANUP_RESUME_COMMAND", SLOW)
    backend.service.cache_clear()
    yield dash
    for launch in dash.service.list_launches(limit=100):
        if launch.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(launch.pid, signal.SIGKILL)


def test_the_latest_launch_is_shown_escaped_and_a_second_resume_is_refused(slow_resume: Dash):
    dash = slow_resume
    run_id = dash.runs.add(CLEAR, age_hours=40, extracted_total_tenders=3)
    portals = make_state(PortalsState, dash.token(), "/portals")
    portals.load()

    level, message = toast(portals.resume(run_id))
    assert level == "success", message
    level, message = toast(portals.resume(run_id))
    assert level == "error"
    assert f"Run {run_id} is already being resumed by dashboard:{ADMIN_NAME} since " in message
    assert "wait until it heartbeats or 10 min pass" in message
    assert len(dash.service.list_launches(run_id=run_id)) == 1

    detail = make_state(RunDetailState, dash.token(), f"/run?id={run_id}")
    deadline = time.monotonic() + 20
    while True:
        assert detail.load() is None
        if detail.launch.log or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    launch = detail.launch
    assert (launch.state, launch.actor, launch.what) == (
        "starting",
        f"dashboard:{ADMIN_NAME}",
        f"resume run {run_id}",
    )
    assert launch.pid and launch.exit_code == ""
    assert launch.log == ["page 1 \\x1b[2J done \\u202egpj.exe"]
    assert unsafe_text(launch) == []

    portals.load()
    (row,) = [r for r in portals.rows if r.portal == CLEAR]
    assert row.launch_state == "starting"
    assert f"(resume run {run_id}) by dashboard:{ADMIN_NAME}" in row.launch_text
    assert row.launch_log == launch.log
    assert unsafe_text([row.launch_text, row.launch_log, row.launch_note]) == []


def test_a_run_never_launched_shows_no_launch(dash: Dash):
    run_id = dash.runs.add("Assam Tenders", age_hours=40, extracted_total_tenders=3)
    detail = make_state(RunDetailState, dash.token(), f"/run?id={run_id}")
    assert detail.load() is None
    assert detail.launch.id == 0 and detail.launch.state == ""
