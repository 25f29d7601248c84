"""The metrics endpoint's settings: off by default, a bearer token that is never empty and never
shown."""

import pytest

from cleanup_core import ConfigError, Settings

TOKEN = "7f3a9c-metrics-scrape-token"


def test_off_and_without_a_token_by_default():
    settings = Settings.load({})
    assert settings.metrics_enabled is False
    assert settings.metrics_token is None


def test_from_the_environment():
    settings = Settings.load(
        {"CLEANUP_METRICS_ENABLED": "true", "CLEANUP_METRICS_TOKEN": f"  {TOKEN}\n"}
    )
    assert settings.metrics_enabled is True
    assert settings.metrics_token == TOKEN, "surrounding blanks are not part of it"


def test_from_the_file(tmp_path):
    path = tmp_path / "cleanup.toml"
    path.write_text(f'metrics_enabled = true\nmetrics_token = "{TOKEN}"\n')
    settings = Settings.load({}, config_file=path)
    assert (settings.metrics_enabled, settings.metrics_token) == (True, TOKEN)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('metrics_token = ""', "metrics_token: must not be empty"),
        ('metrics_token = "   "', "metrics_token: must not be empty"),
        ("metrics_token = 42", "metrics_token: must be text"),
        ('metrics_enabled = "maybe"', "metrics_enabled: must be true or false"),
    ],
)
def test_an_empty_token_or_a_bad_switch_is_refused(tmp_path, text, fragment):
    """An empty token would look like protection and be none."""
    path = tmp_path / "cleanup.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=fragment):
        Settings.load({}, config_file=path)


def test_the_token_is_not_in_the_settings_repr():
    settings = Settings.load({"CLEANUP_METRICS_TOKEN": TOKEN})
    assert TOKEN not in repr(settings)
