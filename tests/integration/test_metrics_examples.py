"""The Prometheus and Grafana examples: the alert rules pass ``promtool check rules`` and their
unit tests (``promtool test rules``), and every metric the rules and the Grafana dashboard query
is one the tool exposes; the dashboard is a Grafana dashboard model with a Prometheus data
source variable, and each of its queries is valid PromQL."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cleanup_core.metrics import render
from tests.helpers.metrics_fleet import (
    metric_names_in,
    parse_exposition,
    sample_names,
    seed_metrics_fleet,
)

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "examples" / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
GRAFANA = ROOT / "examples" / "grafana" / "tender-cleanup.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# What the dashboard must show: every metric the tool exposes.
EXPOSED = {
    "cleanup_runs",
    "cleanup_oldest_running_age_seconds",
    "cleanup_monitor_last_cycle_timestamp_seconds",
    "cleanup_monitor_last_cycle_ok",
    "cleanup_events_total",
    "cleanup_scan_duration_seconds",
    "cleanup_up",
}

# What the examples read does not depend on the backend (test_metrics.py covers both).
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    assert path, "promtool is missing: install Debian's prometheus package (scripts/test.sh does)"
    return subprocess.run(
        [path, *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


@pytest.fixture
def exposed(service, runs, checkpoint_dir) -> set[str]:
    """The sample names of a fleet with runs in every state, audit events and a monitor cycle."""
    seed_metrics_fleet(service, runs, checkpoint_dir)
    return sample_names(parse_exposition(render(service).decode()))


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def test_the_alert_rules_pass_promtool():
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout


def test_the_alert_rules_unit_tests_pass():
    tested = promtool("test", "rules", "alerts_test.yml", cwd=PROMETHEUS)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


@sqlite_only
def test_the_rules_read_only_metrics_the_tool_exposes(exposed):
    read = metric_names_in(rule_expressions())
    assert read <= exposed, f"not exposed: {read - exposed}"
    assert {"cleanup_runs", "cleanup_monitor_last_cycle_timestamp_seconds", "cleanup_up"} <= read


def dashboard() -> dict[str, Any]:
    return json.loads(GRAFANA.read_text())


def panels() -> list[dict[str, Any]]:
    return dashboard()["panels"]


def queries() -> list[str]:
    found = [target["expr"] for panel in panels() for target in panel["targets"]]
    found += [
        variable["query"]["query"]
        for variable in dashboard()["templating"]["list"]
        if variable["type"] == "query"
    ]
    return found


def test_the_grafana_dashboard_is_a_dashboard_model():
    model = dashboard()
    assert model["id"] is None and model["uid"] and model["title"]
    assert isinstance(model["schemaVersion"], int)
    variables = {variable["name"]: variable for variable in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["portal"]["datasource"] == DATASOURCE
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in panels():
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}, panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE and target["expr"], panel["title"]


@sqlite_only
def test_the_grafana_dashboard_queries_only_metrics_the_tool_exposes(exposed):
    read = metric_names_in(queries())
    assert read <= exposed, f"not exposed: {read - exposed}"
    assert read >= EXPOSED, f"not shown: {EXPOSED - read}"


def test_the_grafana_queries_are_promql(tmp_path):
    """promtool parses each query as a recording rule (with the variables filled in)."""
    rules = {
        "groups": [
            {
                "name": "grafana",
                "rules": [
                    {"record": f"grafana:query_{number}", "expr": query.replace("$portal", ".*")}
                    for number, query in enumerate(queries())
                    if not query.startswith("label_values(")
                ],
            }
        ]
    }
    path = tmp_path / "grafana_queries.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
