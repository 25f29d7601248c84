"""Command templates for launched scrapers: validated when the settings load, split before
substitution so a value is always exactly one argument."""

import pytest

from cleanup_core import ConfigError, Settings
from cleanup_core.config import command_argv


def test_placeholders_are_filled_in_per_argument():
    template = "python scrape.py --portal {portal} --resume={run_id} 'two words' {{literal}}"
    argv = command_argv(template, {"portal": "A b; rm -rf / {run_id}", "run_id": "7"})
    assert argv == [
        "python",
        "scrape.py",
        "--portal",
        "A b; rm -rf / {run_id}",
        "--resume=7",
        "two words",
        "{literal}",
    ]


def test_commands_come_from_the_environment_and_the_file(tmp_path):
    config = tmp_path / "cleanup.toml"
    config.write_text(
        'start_command = "scrape --portal {portal}"\n'
        '[portals."Assam Tenders"]\n'
        'resume_command = "assam-scraper {run_id}"\n'
    )
    env = {"CLEANUP_CONFIG": str(config), "CLEANUP_RESUME_COMMAND": "scrape --resume {run_id}"}
    settings = Settings.load(env)
    assert settings.resume_command_for("assam_tenders") == "assam-scraper {run_id}"
    assert settings.resume_command_for("MP Tenders") == "scrape --resume {run_id}"
    assert settings.start_command_for("Assam Tenders") == "scrape --portal {portal}"


def test_heartbeat_interval_and_log_dir(tmp_path):
    settings = Settings.load(
        {
            "CLEANUP_HEARTBEAT_INTERVAL_SECONDS": "15",
            "CLEANUP_CHECKPOINT_DIR": str(tmp_path / "state" / "checkpoints"),
        }
    )
    assert settings.heartbeat_interval_seconds == 15
    assert settings.launch_log_dir == tmp_path / "state" / "logs"
    moved = settings.with_overrides(log_dir=str(tmp_path / "elsewhere"))
    assert moved.launch_log_dir == tmp_path / "elsewhere"
    # (A database of its own: the checkout's ./data may hold the demo's cleanup.toml.)
    assert (
        Settings.load({}, database_url=f"sqlite:///{tmp_path}/x.db").heartbeat_interval_seconds
        == 60
    )


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("CLEANUP_RESUME_COMMAND", "scrape {portal_name}", r"unknown placeholder \{portal_name\}"),
        ("CLEANUP_START_COMMAND", "scrape {run_id}", r"unknown placeholder \{run_id\}"),
        ("CLEANUP_RESUME_COMMAND", "scrape 'unclosed", "is not a command line"),
        ("CLEANUP_RESUME_COMMAND", "scrape {portal", "stray brace"),
        ("CLEANUP_RESUME_COMMAND", "scrape {portal!r}", "must be a plain name"),
        ("CLEANUP_RESUME_COMMAND", "scrape {portal.upper}", "must be a plain name"),
        ("CLEANUP_RESUME_COMMAND", "'' {portal}", "names no program"),
        ("CLEANUP_HEARTBEAT_INTERVAL_SECONDS", "0", "positive"),
    ],
)
def test_bad_values_fail_fast_naming_the_setting(name, value, fragment):
    with pytest.raises(ConfigError, match=name) as error:
        Settings.load({name: value})
    assert error.match(fragment)


def test_a_bad_portal_command_in_the_file_names_the_portal(tmp_path):
    config = tmp_path / "cleanup.toml"
    config.write_text('[portals."MP Tenders"]\nstart_command = "scrape {run_id}"\n')
    with pytest.raises(
        ConfigError, match=r"portals\.MP Tenders\.start_command: unknown placeholder"
    ):
        Settings.load({"CLEANUP_CONFIG": str(config)})
