from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cleanup_core import ConfigError, Settings
from cleanup_core.config import Pooler, PoolMode, validate_threshold_hours


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.load({})
    assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'tenders.db'}"
    assert settings.checkpoint_dir == tmp_path / "checkpoints"
    assert settings.age_threshold_hours == 24
    assert settings.heartbeat_timeout_minutes == 30
    assert settings.timezone is not None


def test_environment_variables(tmp_path):
    env = {
        "CLEANUP_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        "CLEANUP_CHECKPOINT_DIR": str(tmp_path / "cp"),
        "CLEANUP_AGE_THRESHOLD_HOURS": "36",
        "CLEANUP_HEARTBEAT_TIMEOUT_MINUTES": "15",
        "CLEANUP_TIMEZONE": "Asia/Kolkata",
    }
    settings = Settings.load(env)
    assert settings.database_url == f"sqlite:///{tmp_path}/x.db"
    assert settings.checkpoint_dir == tmp_path / "cp"
    assert settings.age_threshold_hours == 36
    assert settings.heartbeat_timeout_minutes == 15
    assert settings.timezone == ZoneInfo("Asia/Kolkata")


def test_relative_sqlite_path_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.load({"CLEANUP_DATABASE_URL": "sqlite:///rel/runs.db"})
    assert settings.database_url == f"sqlite:///{tmp_path}/rel/runs.db"


def test_postgres_url_is_kept_as_given():
    url = "postgresql+psycopg://scraper:secret@db.internal:5432/tenders"
    assert Settings.load({"CLEANUP_DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("CLEANUP_AGE_THRESHOLD_HOURS", "abc", "CLEANUP_AGE_THRESHOLD_HOURS"),
        ("CLEANUP_AGE_THRESHOLD_HOURS", "0", "positive"),
        ("CLEANUP_AGE_THRESHOLD_HOURS", "-3", "positive"),
        ("CLEANUP_AGE_THRESHOLD_HOURS", "nan", "finite"),
        ("CLEANUP_AGE_THRESHOLD_HOURS", "inf", "finite"),
        ("CLEANUP_HEARTBEAT_TIMEOUT_MINUTES", "soon", "CLEANUP_HEARTBEAT_TIMEOUT_MINUTES"),
        ("CLEANUP_TIMEZONE", "Mars/Olympus", "CLEANUP_TIMEZONE"),
        ("CLEANUP_DATABASE_URL", "not a url", "CLEANUP_DATABASE_URL"),
        ("CLEANUP_DATABASE_URL", "sqlite://", "file path"),
        ("CLEANUP_DATABASE_URL", "sqlite:///:memory:", "file path"),
    ],
)
def test_invalid_values_fail_fast_naming_the_setting(name, value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Settings.load({name: value})


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cleanup.toml"
    path.write_text(text)
    return path


def test_toml_file_with_per_portal_policies(tmp_path):
    path = write_toml(
        tmp_path,
        """
age_threshold_hours = 30
timezone = "UTC"

[portals."Assam Tenders"]
age_threshold_hours = 72
heartbeat_timeout_minutes = 10

[portals.cppp]
exclude_from_cleanup = true
""",
    )
    settings = Settings.load({"CLEANUP_CONFIG": str(path)})
    assert settings.config_file == path
    assert settings.age_threshold_hours == 30
    assessed = settings.policy_for("Assam Tenders")
    assert assessed.age_threshold == timedelta(hours=72)
    assert assessed.heartbeat_timeout == timedelta(minutes=10)
    assert assessed.threshold_source == "config"
    # names match loosely, by slug
    assert settings.policy_for("assam_tenders").age_threshold == timedelta(hours=72)
    assert settings.policy_for("CPPP").exclude_from_cleanup
    other = settings.policy_for("Kerala")
    assert (other.age_threshold, other.heartbeat_timeout) == (
        timedelta(hours=30),
        timedelta(minutes=30),
    )
    assert not other.exclude_from_cleanup


def test_a_requested_threshold_wins_for_that_request(tmp_path):
    # The flag or the dashboard's box overrides the default and a portal's own threshold for
    # that request (issue 15: request > config > learned > default).
    path = write_toml(tmp_path, '[portals."Slow Portal"]\nage_threshold_hours = 96\n')
    settings = Settings.load({"CLEANUP_CONFIG": str(path)})
    assert settings.policy_for("Fast", 48).age_threshold == timedelta(hours=48)
    assert settings.policy_for("Fast", 48).threshold_source == "requested"
    assert settings.policy_for("Slow Portal", 48).age_threshold == timedelta(hours=48)
    assert settings.policy_for("Slow Portal").age_threshold == timedelta(hours=96)
    assert (
        settings.policy_for("Slow Portal").threshold_text
        == "threshold 96 h (config for this portal)"
    )


def test_environment_wins_over_the_file(tmp_path):
    path = write_toml(tmp_path, "age_threshold_hours = 30\n")
    env = {"CLEANUP_CONFIG": str(path), "CLEANUP_AGE_THRESHOLD_HOURS": "40"}
    assert Settings.load(env).age_threshold_hours == 40


def test_explicit_overrides_win_over_everything(tmp_path):
    env = {"CLEANUP_AGE_THRESHOLD_HOURS": "40"}
    assert Settings.load(env, age_threshold_hours=50).age_threshold_hours == 50


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("age_threshold_hours = 'x'", "age_threshold_hours"),
        ("age_treshold_hours = 30", "unknown setting 'age_treshold_hours'"),
        ("this is not toml", "cannot be read"),
        ('[portals."A"]\nage_threshold_hours = -1', "portals.A.age_threshold_hours"),
        ('[portals."A"]\nexclude_from_cleanup = "maybe"', "true or false"),
        ('[portals."A"]\ncolour = "red"', "unknown setting 'colour' for portal 'A'"),
        ("portals = 3", "must be a table"),
    ],
)
def test_bad_config_file_names_the_problem(tmp_path, text, fragment):
    path = write_toml(tmp_path, text)
    with pytest.raises(ConfigError, match=fragment):
        Settings.load({"CLEANUP_CONFIG": str(path)})


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        Settings.load({"CLEANUP_CONFIG": str(tmp_path / "nope.toml")})


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "x", None, True])
def test_threshold_validation_message(value):
    with pytest.raises(ValueError, match="age_threshold_hours"):
        validate_threshold_hours(value)


# Durations beyond ten years (one second for the busy timeout: an hour) are typing mistakes, and
# they used to end in OverflowError deep inside timedelta or threading instead of a message.
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CLEANUP_AGE_THRESHOLD_HOURS", "1e11"),
        ("CLEANUP_HEARTBEAT_TIMEOUT_MINUTES", "1e20"),
        ("CLEANUP_HEARTBEAT_INTERVAL_SECONDS", "1e12"),
        ("CLEANUP_MONITOR_INTERVAL_MINUTES", "1e300"),
        ("CLEANUP_MONITOR_REMINDER_HOURS", "1e9"),
        ("CLEANUP_STALL_AFTER_MINUTES", "1e15"),
        ("CLEANUP_SESSION_HOURS", "1e8"),
        ("CLEANUP_BUSY_TIMEOUT_SECONDS", "86400"),
        ("CLEANUP_MAX_CHECKPOINT_MB", "1e12"),
    ],
)
def test_out_of_range_numbers_are_refused_with_the_setting_named(name, value):
    with pytest.raises(ConfigError, match=f"{name}: .*at most") as caught:
        Settings.load({name: value})
    assert value in str(caught.value)


def test_the_largest_allowed_values_still_work_end_to_end():
    settings = Settings.load(
        {"CLEANUP_AGE_THRESHOLD_HOURS": "87600", "CLEANUP_HEARTBEAT_TIMEOUT_MINUTES": "5256000"}
    )
    policy = settings.policy_for("Assam Tenders")
    assert policy.age_threshold == timedelta(hours=87600)
    assert policy.heartbeat_timeout == timedelta(minutes=5256000)


@pytest.mark.parametrize("value", [1e11, "1e11", 87600.5])
def test_a_requested_threshold_beyond_ten_years_is_a_value_error(value):
    with pytest.raises(ValueError, match="at most 87600"):
        validate_threshold_hours(value)


def test_login_throttling_defaults_and_settings():
    from ipaddress import ip_network

    defaults = Settings.load({})
    assert (defaults.login_delay_after, defaults.login_delay_seconds) == (3, 1.0)
    assert (defaults.login_lockout_after, defaults.login_lockout_minutes) == (10, 15.0)
    assert defaults.login_forget_after_hours == 24.0
    assert defaults.trusted_proxies == ()
    settings = Settings.load(
        {
            "CLEANUP_LOGIN_DELAY_AFTER": "5",
            "CLEANUP_LOGIN_DELAY_SECONDS": "0.5",
            "CLEANUP_LOGIN_LOCKOUT_AFTER": "20",
            "CLEANUP_LOGIN_LOCKOUT_MINUTES": "60",
            "CLEANUP_LOGIN_FORGET_AFTER_HOURS": "48",
            "CLEANUP_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8,::1",
        }
    )
    assert (settings.login_delay_after, settings.login_delay_seconds) == (5, 0.5)
    assert (settings.login_lockout_after, settings.login_lockout_minutes) == (20, 60.0)
    assert settings.login_forget_after_hours == 48.0
    assert settings.trusted_proxies == (
        ip_network("127.0.0.1/32"),
        ip_network("10.0.0.0/8"),
        ip_network("::1/128"),
    )


def test_trusted_proxies_from_the_toml_file(tmp_path):
    from ipaddress import ip_network

    path = write_toml(tmp_path, 'trusted_proxies = ["192.0.2.10", "2001:db8::/32"]\n')
    settings = Settings.load({}, config_file=path)
    assert settings.trusted_proxies == (ip_network("192.0.2.10/32"), ip_network("2001:db8::/32"))


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("CLEANUP_LOGIN_DELAY_AFTER", "0", "whole number of failed logins from 1 to 1000"),
        ("CLEANUP_LOGIN_DELAY_AFTER", "2.5", "whole number"),
        ("CLEANUP_LOGIN_LOCKOUT_AFTER", "1e9", "from 1 to 1000"),
        ("CLEANUP_LOGIN_LOCKOUT_AFTER", "many", "whole number"),
        ("CLEANUP_LOGIN_DELAY_SECONDS", "1e11", "at most 3600"),
        ("CLEANUP_LOGIN_DELAY_SECONDS", "-1", "positive"),
        ("CLEANUP_LOGIN_LOCKOUT_MINUTES", "1e20", "at most 43200"),
        ("CLEANUP_LOGIN_FORGET_AFTER_HOURS", "nan", "finite"),
        ("CLEANUP_TRUSTED_PROXIES", "proxy.internal", "not an IP address or network"),
        ("CLEANUP_TRUSTED_PROXIES", "10.0.0.0/33", "not an IP address or network"),
    ],
)
def test_bad_login_throttling_settings_are_refused(name, value, fragment):
    with pytest.raises(ConfigError, match=f"{name}: .*{fragment}"):
        Settings.load({name: value})


# A duration that rounds to nothing (1e-300 hours) is no threshold at all: every run would be
# "old" the moment it started.
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CLEANUP_AGE_THRESHOLD_HOURS", "1e-300"),
        ("CLEANUP_HEARTBEAT_TIMEOUT_MINUTES", "1e-9"),
        ("CLEANUP_HEARTBEAT_INTERVAL_SECONDS", "0.0000001"),
        ("CLEANUP_MONITOR_INTERVAL_MINUTES", "5e-324"),
        ("CLEANUP_SESSION_HOURS", "1e-12"),
    ],
)
def test_durations_below_a_millisecond_are_refused_with_the_setting_named(name, value):
    with pytest.raises(ConfigError, match=f"{name}: .*at least one millisecond") as caught:
        Settings.load({name: value})
    assert value in str(caught.value)


@pytest.mark.parametrize("value", [1e-300, "1e-300", 2e-7])
def test_a_requested_threshold_below_a_millisecond_is_a_value_error(value):
    with pytest.raises(ValueError, match="at least one millisecond"):
        validate_threshold_hours(value, "--age-hours")


def test_a_millisecond_is_the_shortest_duration():
    settings = Settings.load({"CLEANUP_HEARTBEAT_INTERVAL_SECONDS": "0.001"})
    assert settings.heartbeat_interval_seconds == 0.001
    assert validate_threshold_hours(1 / 3_600_000) == 1 / 3_600_000


def test_connection_settings_default_to_a_small_pool_and_no_pooler(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.load({})
    assert (settings.db_pool, settings.db_pool_size, settings.db_pooler) == (
        PoolMode.QUEUE,
        5,
        Pooler.NONE,
    )


def test_connection_settings_from_the_environment_and_the_file(tmp_path):
    env = {"CLEANUP_DB_POOL": "None", "CLEANUP_DB_POOLER": " transaction "}
    settings = Settings.load(env)
    assert (settings.db_pool, settings.db_pooler) == (PoolMode.NONE, Pooler.TRANSACTION)
    path = write_toml(tmp_path, 'db_pool = "queue"\ndb_pool_size = 12\n')
    from_file = Settings.load({"CLEANUP_CONFIG": str(path)})
    assert (from_file.db_pool, from_file.db_pool_size) == (PoolMode.QUEUE, 12)


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("CLEANUP_DB_POOL", "nullpool", "CLEANUP_DB_POOL: must be one of 'queue', 'none'"),
        ("CLEANUP_DB_POOLER", "session", "must be one of 'none', 'transaction'"),
        ("CLEANUP_DB_POOL_SIZE", "0", "whole number of connections from 1 to 1000"),
        ("CLEANUP_DB_POOL_SIZE", "1001", "whole number of connections from 1 to 1000"),
        ("CLEANUP_DB_POOL_SIZE", "2.5", "whole number of connections from 1 to 1000"),
        ("CLEANUP_DB_POOL_SIZE", "-3", "whole number of connections from 1 to 1000"),
    ],
)
def test_bad_connection_settings_name_the_setting(name, value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Settings.load({name: value})


def test_a_pool_size_of_true_in_the_file_is_refused(tmp_path):
    path = write_toml(tmp_path, "db_pool_size = true\n")
    with pytest.raises(ConfigError, match="db_pool_size: must be a whole number"):
        Settings.load({"CLEANUP_CONFIG": str(path)})


def test_the_dashboards_shared_scan_age(tmp_path):
    assert Settings.load({}).dashboard_scan_seconds == 3.0
    assert Settings.load({"CLEANUP_DASHBOARD_SCAN_SECONDS": "0"}).dashboard_scan_seconds == 0.0
    path = write_toml(tmp_path, "dashboard_scan_seconds = 10\n")
    assert Settings.load({"CLEANUP_CONFIG": str(path)}).dashboard_scan_seconds == 10.0


@pytest.mark.parametrize("value", ["-1", "61", "nan", "inf", "soon"])
def test_a_bad_shared_scan_age_names_the_setting(value):
    with pytest.raises(ConfigError, match="CLEANUP_DASHBOARD_SCAN_SECONDS: must be a number"):
        Settings.load({"CLEANUP_DASHBOARD_SCAN_SECONDS": value})


def test_a_shared_scan_age_of_true_in_the_file_is_refused(tmp_path):
    path = write_toml(tmp_path, "dashboard_scan_seconds = true\n")
    with pytest.raises(ConfigError, match="dashboard_scan_seconds: must be a number"):
        Settings.load({"CLEANUP_CONFIG": str(path)})


# -- the settings file beside an SQLite database ------------------------------------------


def _beside(tmp_path: Path, text: str) -> tuple[str, Path]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "cleanup.toml").write_text(text)
    return f"sqlite:///{data / 'tenders.db'}", data / "cleanup.toml"


def test_cleanup_toml_beside_the_database_is_read_when_no_file_is_named(tmp_path, monkeypatch):
    url, path = _beside(
        tmp_path,
        'resume_command = "{python} scraper.py --resume {run_id}"\n'
        'checkpoint_dir = "/srv/checkpoints"\n'
        '[portals."MP Tenders"]\nage_threshold_hours = 48\n',
    )
    from_env = Settings.load({"CLEANUP_DATABASE_URL": url})
    assert from_env.config_file == path
    assert from_env.resume_command_for("Assam Tenders") == "{python} scraper.py --resume {run_id}"
    assert from_env.checkpoint_dir == Path("/srv/checkpoints")
    assert from_env.policy_for("MP Tenders").age_threshold == timedelta(hours=48)
    assert Settings.load({}, database_url=url).config_file == path, "a --db flag finds it too"
    monkeypatch.chdir(tmp_path)  # the default database is ./data/tenders.db
    assert Settings.load({}).config_file == path


def test_the_environment_and_a_named_file_win_over_the_file_beside_the_database(tmp_path):
    url, _ = _beside(tmp_path, 'resume_command = "beside {run_id}"\nage_threshold_hours = 30\n')
    env = {"CLEANUP_DATABASE_URL": url, "CLEANUP_RESUME_COMMAND": "from-env {run_id}"}
    settings = Settings.load(env)
    assert settings.resume_command == "from-env {run_id}"
    assert settings.age_threshold_hours == 30
    named = tmp_path / "named.toml"
    named.write_text("age_threshold_hours = 40\n")
    for chosen in (
        Settings.load({**env, "CLEANUP_CONFIG": str(named)}),
        Settings.load(env, config_file=named),
    ):
        assert chosen.config_file == named
        assert chosen.age_threshold_hours == 40
    nothing = Settings.load({**env, "CLEANUP_CONFIG": ""})
    assert nothing.config_file is None, "an empty CLEANUP_CONFIG turns the lookup off"
    assert nothing.age_threshold_hours == 24


def test_the_file_beside_the_database_cannot_move_the_database(tmp_path):
    url, _ = _beside(tmp_path, 'database_url = "sqlite:////elsewhere.db"\n')
    with pytest.raises(ConfigError, match="database_url cannot be set in the file beside"):
        Settings.load({"CLEANUP_DATABASE_URL": url})


def test_a_broken_file_beside_the_database_is_named(tmp_path):
    url, path = _beside(tmp_path, "age_threshold_hours = \n")
    with pytest.raises(ConfigError, match=f"settings file {path} \\(beside the database\\)"):
        Settings.load({"CLEANUP_DATABASE_URL": url})


def test_no_file_is_looked_for_beside_a_postgresql_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _beside(tmp_path, "age_threshold_hours = 30\n")
    settings = Settings.load({"CLEANUP_DATABASE_URL": "postgresql+psycopg://u@h/db"})
    assert settings.config_file is None and settings.age_threshold_hours == 24
