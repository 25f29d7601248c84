"""Settings: defaults, then an optional TOML file, then ``CLEANUP_*`` environment variables.

The TOML file is the one ``--config`` or ``CLEANUP_CONFIG`` names; when neither does, it is
``cleanup.toml`` in the SQLite database's folder, if there is one (the demo writes its scraper
commands there, so every entry point on that database finds them).

Each setting has one name used everywhere: ``age_threshold_hours`` in the TOML file is
``CLEANUP_AGE_THRESHOLD_HOURS`` in the environment. Per-portal policies live in the TOML file under
``[portals."Portal Name"]``. Invalid values fail fast with a message that names the setting.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta, tzinfo
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from string import Formatter
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cleanup_core.checkpoints import portal_slug
from cleanup_core.durations import PortalStats
from cleanup_core.errors import ConfigError
from cleanup_core.vocabulary import ThresholdSource

ENV_PREFIX = "CLEANUP_"
CONFIG_ENV = "CLEANUP_CONFIG"
DEFAULT_DATABASE_FILE = Path("data") / "tenders.db"
# Read from the SQLite database's folder when neither ``--config`` nor CLEANUP_CONFIG names a file.
BESIDE_DATABASE_CONFIG = "cleanup.toml"

# Below this many hours an age threshold risks cleaning slow but healthy runs.
MIN_SAFE_THRESHOLD_HOURS = 12.0


# The largest value each kind of duration may have: ten years. Anything longer is a typing
# mistake, and it would overflow ``timedelta`` or a thread's wait instead of giving a message.
_TEN_YEARS = {"hours": 87_600.0, "minutes": 5_256_000.0, "seconds": 315_360_000.0}
# The shortest: one millisecond. Anything shorter (``1e-300`` hours) rounds to no time at all,
# which as a threshold would make every run old the moment it started.
_ONE_MILLISECOND = {"hours": 1 / 3_600_000, "minutes": 1 / 60_000, "seconds": 0.001}


def _finite_number(value: object, wanted: str) -> float:
    """``value`` as a finite number (not a boolean), or ``ValueError(wanted)``."""
    if isinstance(value, bool):
        raise ValueError(wanted)
    try:
        number = float(value)  # type: ignore[arg-type]  # anything: float() tells if a number
    except (TypeError, ValueError, OverflowError):
        raise ValueError(wanted) from None
    if not math.isfinite(number):
        raise ValueError(wanted)
    return number


def _positive(kind: str, maximum: float | None = None) -> Callable[[object], float]:
    """A parser for a positive, finite number of ``kind`` up to ``maximum`` (default: ten
    years' worth, for a duration); a duration must also be at least one millisecond."""
    limit = maximum if maximum is not None else _TEN_YEARS[kind]
    shortest = _ONE_MILLISECOND.get(kind)
    wanted = f"must be a positive, finite number of {kind}, at most {limit:g}"

    def parse(value: object) -> float:
        number = _finite_number(value, wanted)
        if not 0 < number <= limit:
            raise ValueError(wanted)
        if shortest is not None and number < shortest:
            raise ValueError(f"{wanted} and at least one millisecond ({shortest:.3g} {kind})")
        return number

    return parse


_hours = _positive("hours")


def _number_between(minimum: float, maximum: float, what: str) -> Callable[[object], float]:
    """A parser for a finite number from ``minimum`` to ``maximum`` (``what``: "of seconds ")."""
    wanted = f"must be a number {what}from {minimum:g} to {maximum:g}"

    def parse(value: object) -> float:
        number = _finite_number(value, wanted)
        if not minimum <= number <= maximum:
            raise ValueError(wanted)
        return number

    return parse


# How old the dashboard's shared scan may be: 0 (every page view scans) to 60 seconds.
_scan_seconds = _number_between(0, 60, "of seconds ")
# How many times a duration (overdue_factor).
_factor = _number_between(1, 1000, "")


def _whole(kind: str, minimum: int, maximum: int) -> Callable[[object], int]:
    """A parser for a whole number of ``kind`` from ``minimum`` to ``maximum``."""
    wanted = f"must be a whole number of {kind} from {minimum} to {maximum}"

    def parse(value: object) -> int:
        if isinstance(value, bool):
            raise ValueError(wanted)
        text = str(value).strip()
        if not text.isascii() or not text.isdigit() or not minimum <= int(text) <= maximum:
            raise ValueError(wanted)
        return int(text)

    return parse


Network = IPv4Network | IPv6Network


def _networks(value: object) -> tuple[Network, ...]:
    """IP addresses or networks (CIDR): a list (TOML) or one comma-separated string."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        items = list(value)
    else:
        raise ValueError("must be a list of IP addresses or networks, or a comma-separated string")
    networks = []
    for item in (item.strip() for item in items):
        if not item:
            continue
        try:
            networks.append(ip_network(item, strict=False))
        except ValueError:
            raise ValueError(
                f"{item[:60]!r} is not an IP address or network (such as 127.0.0.1 or 10.0.0.0/8)"
            ) from None
    return tuple(networks)


def validate_threshold_hours(value: object, name: str = "age_threshold_hours") -> float:
    """A positive, finite number of hours, or ``ValueError`` saying what is wrong."""
    try:
        return _hours(value)
    except ValueError as exc:
        raise ValueError(f"{name} {exc}, got {value!r}") from None


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


class PoolMode(StrEnum):
    """How one process keeps its database connections (``db_pool``)."""

    QUEUE = "queue"  # a small bounded pool: the dashboard, the monitor, the CLI
    NONE = "none"  # none kept: one connection per transaction, one transaction at a time


class Pooler(StrEnum):
    """What sits between the processes and PostgreSQL (``db_pooler``)."""

    NONE = "none"  # the server itself, or a session pooler
    TRANSACTION = "transaction"  # e.g. PgBouncer with pool_mode = transaction


def _choice(kind: type[StrEnum]) -> Callable[[object], Any]:
    names = ", ".join(repr(member.value) for member in kind)

    def parse(value: object) -> Any:
        try:
            return kind(_text(value).strip().lower())
        except ValueError:
            raise ValueError(f"must be one of {names}") from None

    return parse


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    return value


# Between two notification URLs; a comma inside a URL (``mailto://...?to=a@x,b@y``) stays.
_URL_SEPARATOR = re.compile(r"\s*,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")


def _urls(value: object) -> tuple[str, ...]:
    """Apprise URLs: a list (TOML) or one comma-separated string (environment)."""
    if isinstance(value, str):
        items = _URL_SEPARATOR.split(value.strip())
    elif isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        items = list(value)
    else:
        raise ValueError("must be a list of notification URLs or a comma-separated string")
    urls = tuple(item.strip() for item in items if item.strip())
    for url in urls:
        if "://" not in url:
            raise ValueError(f"{url[:40]!r} is not a notification URL (scheme://...)")
    return urls


def _token(value: object) -> str:
    """A secret such as a bearer token: text, without surrounding blanks, never empty (an empty
    one would look like protection and be none)."""
    token = _text(value).strip()
    if not token:
        raise ValueError("must not be empty")
    return token


def _timezone(value: object) -> tzinfo:
    if isinstance(value, tzinfo):
        return value
    name = _text(value).strip()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as Asia/Kolkata)"
        ) from None


# The placeholders each command template may use; every one is replaced inside its own argument.
COMMAND_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "resume_command": frozenset({"portal", "portal_slug", "run_id", "python"}),
    "start_command": frozenset({"portal", "portal_slug", "python"}),
}


def _split_command(template: str) -> list[str]:
    try:
        args = shlex.split(template)
    except ValueError as exc:
        raise ValueError(f"is not a command line ({exc})") from None
    if not args or not args[0]:
        raise ValueError("names no program to run")
    return args


def _placeholders(arg: str) -> list[str]:
    """The placeholder names in one argument; ``{{`` and ``}}`` are literal braces."""
    try:
        parsed = list(Formatter().parse(arg))
    except ValueError as exc:
        raise ValueError(f"has a stray brace in {arg!r} ({exc}); write {{{{ or }}}}") from None
    names = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion or not name.isidentifier():
            raise ValueError(f"placeholder {{{name}}} in {arg!r} must be a plain name")
        names.append(name)
    return names


def _command(setting: str) -> Callable[[object], str]:
    allowed = COMMAND_PLACEHOLDERS[setting]

    def parse(value: object) -> str:
        text = _text(value).strip()
        for arg in _split_command(text):
            for name in _placeholders(arg):
                if name not in allowed:
                    listed = ", ".join(f"{{{n}}}" for n in sorted(allowed))
                    raise ValueError(f"unknown placeholder {{{name}}} (use {listed})")
        return text

    return parse


def command_argv(template: str, values: Mapping[str, str]) -> list[str]:
    """The argument list of a (validated) command template: split like a POSIX shell FIRST, then
    each placeholder replaced inside its own argument. A value such as a hostile portal name
    therefore stays exactly one argument, and no shell ever sees it."""
    return [arg.format_map(values) for arg in _split_command(template)]


def local_timezone() -> tzinfo:
    """The machine's zone, which is what legacy ``datetime.now()`` timestamps were written in."""
    import tzlocal

    return tzlocal.get_localzone()


@dataclass(frozen=True)
class PortalOverride:
    """Per-portal policy from ``[portals."Name"]``; unset fields fall back to the global ones."""

    age_threshold_hours: float | None = None
    heartbeat_timeout_minutes: float | None = None
    exclude_from_cleanup: bool = False
    resume_command: str | None = None
    start_command: str | None = None
    stall_after_minutes: float | None = None
    auto_resume: bool | None = None
    max_resume_attempts: int | None = None
    resume_backoff_minutes: float | None = None
    adaptive_thresholds: bool | None = None  # None: the global setting


_PORTAL_PARSERS: dict[str, Callable[[object], Any]] = {
    "age_threshold_hours": _hours,
    "heartbeat_timeout_minutes": _positive("minutes"),
    "exclude_from_cleanup": _boolean,
    "resume_command": _command("resume_command"),
    "start_command": _command("start_command"),
    "stall_after_minutes": _positive("minutes"),
    "auto_resume": _boolean,
    "max_resume_attempts": _whole("attempts", 1, 1000),
    "resume_backoff_minutes": _positive("minutes"),
    "adaptive_thresholds": _boolean,
}

_SOURCE_LABELS: dict[str, str] = {
    ThresholdSource.REQUESTED: "requested",
    ThresholdSource.CONFIG: "config for this portal",
    ThresholdSource.DEFAULT: "default",
}


@dataclass(frozen=True)
class Policy:
    """The rules one run is judged by."""

    age_threshold: timedelta
    heartbeat_timeout: timedelta
    exclude_from_cleanup: bool = False
    threshold_source: str = ThresholdSource.DEFAULT  # a ThresholdSource
    # The portal's completed runs, when they were read (adaptive_thresholds on for it).
    history: PortalStats | None = None
    # A running run older than this is overdue (p99 x overdue_factor, with enough history).
    overdue_after: timedelta | None = None
    # After this many automatic resume launches without the run finishing, it needs a person.
    max_resume_attempts: int = 3

    @property
    def age_threshold_hours(self) -> float:
        return self.age_threshold.total_seconds() / 3600

    @property
    def threshold_text(self) -> str:
        """The threshold and where it came from, for a verdict's reasons: ``threshold 2.9 h
        learned from 41 completed runs, longest 1.6 h``, ``threshold 24 h (default)``."""
        hours = self.age_threshold_hours
        if self.threshold_source == ThresholdSource.LEARNED and self.history is not None:
            return (
                f"threshold {hours:.1f} h learned from {self.history.completed_runs} completed "
                f"runs, longest {self.history.longest_hours:.1f} h"
            )
        label = _SOURCE_LABELS.get(self.threshold_source, self.threshold_source)
        return f"threshold {hours:g} h ({label})"


@dataclass(frozen=True)
class Settings:
    database_url: str
    checkpoint_dir: Path
    age_threshold_hours: float = 24.0
    heartbeat_timeout_minutes: float = 30.0
    timezone: tzinfo = field(default_factory=local_timezone)
    busy_timeout_seconds: float = 10.0
    max_checkpoint_mb: float = 32.0
    heartbeat_interval_seconds: float = 60.0
    db_pool: PoolMode = PoolMode.QUEUE
    db_pool_size: int = 5
    db_pooler: Pooler = Pooler.NONE
    resume_command: str | None = None
    start_command: str | None = None
    log_dir: Path | None = None
    notify_urls: tuple[str, ...] = ()
    monitor_interval_minutes: float = 30.0
    monitor_reminder_hours: float = 24.0
    stall_after_minutes: float = 120.0
    adaptive_thresholds: bool = False
    history_days: int = 90
    min_history_runs: int = 20
    learned_threshold_floor_hours: float = 2.0
    overdue_factor: float = 3.0
    monitor_auto_clean: bool = False
    auto_resume: bool = False
    max_resume_attempts: int = 3
    resume_backoff_minutes: float = 10.0
    monitor_in_dashboard: bool = False
    dashboard_url: str | None = None
    session_hours: float = 12.0
    dashboard_scan_seconds: float = 3.0
    login_delay_after: int = 3
    login_delay_seconds: float = 1.0
    login_lockout_after: int = 10
    login_lockout_minutes: float = 15.0
    login_forget_after_hours: float = 24.0
    trusted_proxies: tuple[Network, ...] = ()
    metrics_enabled: bool = False
    metrics_token: str | None = field(default=None, repr=False)  # a secret: never in logs
    portals: Mapping[str, PortalOverride] = field(default_factory=dict)
    config_file: Path | None = None

    @classmethod
    def load(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        config_file: str | os.PathLike[str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Defaults, then the TOML file, then the environment, then ``overrides`` (e.g.
        command-line flags; ``None`` values are ignored). The file is ``config_file``, else
        ``$CLEANUP_CONFIG``, else, when neither is given, ``cleanup.toml`` beside an SQLite
        database if it exists (``beside_database_config``); an empty ``CLEANUP_CONFIG`` means
        no file at all."""
        env = os.environ if env is None else env
        given: dict[str, Any] = {}  # the environment's, then the overrides'
        for name in _SETTING_PARSERS:
            env_name = ENV_PREFIX + name.upper()
            if env_name in env and env[env_name].strip() != "":
                given[name] = _parse_setting(name, env[env_name], env_name)
        for name, value in overrides.items():
            if name not in _SETTING_PARSERS:
                raise TypeError(f"unknown setting {name!r}")
            if value is not None:
                given[name] = _parse_setting(name, value, f"--{name.replace('_', '-')}")
        default_url = f"sqlite:///{Path.cwd() / DEFAULT_DATABASE_FILE}"
        values: dict[str, Any] = {}
        portals: dict[str, PortalOverride] = {}
        path_text = config_file if config_file is not None else env.get(CONFIG_ENV)
        path = Path(path_text).expanduser() if path_text else None
        if path is not None:
            values, portals = _read_toml(path)
        elif path_text is None:  # an empty CLEANUP_CONFIG means no file at all
            path = beside_database_config(given.get("database_url", default_url))
            if path is not None and path.is_file():
                values, portals = _read_toml(path, f"settings file {path} (beside the database)")
                if "database_url" in values:
                    raise ConfigError(
                        f"{path}: database_url cannot be set in the file beside the database "
                        "(it is read because of where the database is); set it in "
                        f"CLEANUP_DATABASE_URL or in a file named by {CONFIG_ENV}"
                    )
            else:
                path = None
        values.update(given)
        values.setdefault("database_url", default_url)
        values["database_url"] = _absolute_sqlite_url(values["database_url"])
        values["checkpoint_dir"] = Path(values.get("checkpoint_dir", "checkpoints")).absolute()
        if "log_dir" in values:
            values["log_dir"] = Path(values["log_dir"]).expanduser().absolute()
        settings = cls(
            **values,
            portals=portals,
            config_file=path.absolute() if path else None,
        )
        settings.check_auto_resume()
        return settings

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with some settings replaced (validated like the environment's)."""
        parsed = {
            name: _parse_setting(name, value, name)
            for name, value in overrides.items()
            if value is not None
        }
        if "database_url" in parsed:
            parsed["database_url"] = _absolute_sqlite_url(parsed["database_url"])
        if "checkpoint_dir" in parsed:
            parsed["checkpoint_dir"] = Path(parsed["checkpoint_dir"]).absolute()
        if "log_dir" in parsed:
            parsed["log_dir"] = Path(parsed["log_dir"]).expanduser().absolute()
        return replace(self, **parsed)

    @property
    def max_checkpoint_bytes(self) -> int:
        return int(self.max_checkpoint_mb * 1024 * 1024)

    @property
    def launch_log_dir(self) -> Path:
        """Where launched scrapers write their output: ``log_dir``, else ``logs`` next to the
        checkpoint folder."""
        return self.log_dir or self.checkpoint_dir.parent / "logs"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def __post_init__(self) -> None:
        by_slug = {portal_slug(name): override for name, override in self.portals.items()}
        object.__setattr__(self, "_portals_by_slug", by_slug)

    # The portals' own policies by slug, filled in by __post_init__.
    _portals_by_slug: dict[str, PortalOverride] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def portal_override(self, portal_name: str | None) -> PortalOverride:
        """The portal's own policy; names match loosely ("Assam Tenders" = "assam_tenders")."""
        return self._portals_by_slug.get(portal_slug(portal_name or ""), PortalOverride())

    def adaptive_for(self, portal_name: str | None) -> bool:
        """Whether ``portal_name``'s threshold may be learned from its history (its own
        ``adaptive_thresholds``, else the global one)."""
        own = self.portal_override(portal_name).adaptive_thresholds
        return self.adaptive_thresholds if own is None else own

    @property
    def reads_history(self) -> bool:
        """Whether any portal learns from its history, so a scan reads the statistics."""
        return self.adaptive_thresholds or any(
            override.adaptive_thresholds for override in self.portals.values()
        )

    def learned_threshold_hours(self, history: PortalStats | None) -> float | None:
        """The threshold ``history`` justifies (``None`` without enough completed runs)."""
        if history is None:
            return None
        return history.learned_threshold_hours(
            min_runs=self.min_history_runs, floor_hours=self.learned_threshold_floor_hours
        )

    def policy_for(
        self,
        portal_name: str | None,
        age_threshold_hours: float | None = None,
        history: PortalStats | None = None,
    ) -> Policy:
        """The policy for ``portal_name``. Its age threshold: ``age_threshold_hours`` (the
        request: a command-line flag or the dashboard's box), else the portal's own
        ``age_threshold_hours``, else the one learned from ``history`` (its completed runs,
        when ``adaptive_thresholds`` is on for it and there are enough), else the global
        default."""
        override = self.portal_override(portal_name)
        adaptive = history is not None and self.adaptive_for(portal_name)
        learned = self.learned_threshold_hours(history) if adaptive else None
        source: ThresholdSource
        if age_threshold_hours is not None:
            hours = validate_threshold_hours(age_threshold_hours)
            source = ThresholdSource.REQUESTED
        elif override.age_threshold_hours is not None:
            hours, source = override.age_threshold_hours, ThresholdSource.CONFIG
        elif learned is not None:
            hours, source = learned, ThresholdSource.LEARNED
        else:
            hours, source = self.age_threshold_hours, ThresholdSource.DEFAULT
        heartbeat = override.heartbeat_timeout_minutes or self.heartbeat_timeout_minutes
        overdue = None
        if learned is not None and history is not None:
            overdue = history.p99 * self.overdue_factor
        return Policy(
            age_threshold=timedelta(hours=hours),
            heartbeat_timeout=timedelta(minutes=heartbeat),
            exclude_from_cleanup=override.exclude_from_cleanup,
            threshold_source=source,
            history=history if adaptive else None,
            overdue_after=overdue,
            max_resume_attempts=self.max_resume_attempts_for(portal_name or ""),
        )

    def stall_after_minutes_for(self, portal_name: str) -> float:
        """How long an alive run may go without progress before the monitor reports it."""
        return self.portal_override(portal_name).stall_after_minutes or self.stall_after_minutes

    def resume_command_for(self, portal_name: str) -> str | None:
        """The command template that resumes a run of ``portal_name`` (its own, else global)."""
        return self.portal_override(portal_name).resume_command or self.resume_command

    def start_command_for(self, portal_name: str) -> str | None:
        """The command template that starts a scrape of ``portal_name`` (its own, else global)."""
        return self.portal_override(portal_name).start_command or self.start_command

    def auto_resume_for(self, portal_name: str) -> bool:
        """Whether the monitor launches ``portal_name``'s resume_command for resumable runs."""
        own = self.portal_override(portal_name).auto_resume
        return self.auto_resume if own is None else own

    def max_resume_attempts_for(self, portal_name: str) -> int:
        """How many automatic resume launches a run of ``portal_name`` gets."""
        return self.portal_override(portal_name).max_resume_attempts or self.max_resume_attempts

    def resume_backoff_for(self, portal_name: str) -> timedelta:
        """How long a launch counts as starting, and the least time between two automatic
        launches of one run."""
        own = self.portal_override(portal_name).resume_backoff_minutes
        return timedelta(minutes=own or self.resume_backoff_minutes)

    def check_auto_resume(self, portal_names: Iterable[object] = ()) -> None:
        """``ConfigError`` naming the portal when auto_resume is on for a portal (one with its
        own settings, or one of ``portal_names``, e.g. the stored ones) that has no
        resume_command, or when it is on globally without a global resume_command."""
        if self.auto_resume and not self.resume_command:
            own = [name for name, o in self.portals.items() if o.resume_command]
            but = f" (only {', '.join(map(repr, own))} have their own)" if own else ""
            missing = [
                name
                for name in portal_names
                if isinstance(name, str) and not self.resume_command_for(name)
            ]
            named = f" for portal {missing[0]!r}" if missing else " for every portal"
            if missing or not own:
                raise ConfigError(
                    f"auto_resume is on but no resume_command is set{named}{but}: set "
                    'resume_command (or [portals."..."] resume_command), or turn auto_resume off'
                )
        names = [*self.portals, *(n for n in portal_names if isinstance(n, str))]
        for name in names:
            if self.auto_resume_for(name) and not self.resume_command_for(name):
                raise ConfigError(
                    f"auto_resume is on for portal {name!r} but it has no resume_command: set "
                    f'[portals."{name}"] resume_command (or a global one), or turn auto_resume '
                    "off for it"
                )


_SETTING_PARSERS: dict[str, Callable[[object], Any]] = {
    "database_url": _text,
    "checkpoint_dir": _text,
    "age_threshold_hours": _hours,
    "heartbeat_timeout_minutes": _positive("minutes"),
    "timezone": _timezone,
    "busy_timeout_seconds": _positive("seconds", 3600),
    "max_checkpoint_mb": _positive("megabytes", 100_000),
    "heartbeat_interval_seconds": _positive("seconds"),
    "db_pool": _choice(PoolMode),
    "db_pool_size": _whole("connections", 1, 1000),
    "db_pooler": _choice(Pooler),
    "resume_command": _command("resume_command"),
    "start_command": _command("start_command"),
    "log_dir": _text,
    "notify_urls": _urls,
    "monitor_interval_minutes": _positive("minutes"),
    "monitor_reminder_hours": _positive("hours"),
    "stall_after_minutes": _positive("minutes"),
    "adaptive_thresholds": _boolean,
    "history_days": _whole("days", 1, 3650),
    "min_history_runs": _whole("completed runs", 1, 1_000_000),
    "learned_threshold_floor_hours": _hours,
    "overdue_factor": _factor,
    "monitor_auto_clean": _boolean,
    "auto_resume": _boolean,
    "max_resume_attempts": _whole("attempts", 1, 1000),
    "resume_backoff_minutes": _positive("minutes"),
    "monitor_in_dashboard": _boolean,
    "dashboard_url": _text,
    "session_hours": _positive("hours"),
    "dashboard_scan_seconds": _scan_seconds,
    "login_delay_after": _whole("failed logins", 1, 1000),
    "login_delay_seconds": _positive("seconds", 3600),
    "login_lockout_after": _whole("failed logins", 1, 1000),
    "login_lockout_minutes": _positive("minutes", 43_200),
    "login_forget_after_hours": _positive("hours"),
    "trusted_proxies": _networks,
    "metrics_enabled": _boolean,
    "metrics_token": _token,
}


def _parse_setting(name: str, value: object, label: str) -> Any:
    try:
        return _SETTING_PARSERS[name](value)
    except ValueError as exc:
        raise ConfigError(f"{label}: {exc} (got {value!r})") from None


def _read_toml(
    path: Path, label: str | None = None
) -> tuple[dict[str, Any], dict[str, PortalOverride]]:
    label = label or f"{CONFIG_ENV} file {path}"
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{label}: file not found") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{label}: cannot be read: {exc}") from None
    portals_table = data.pop("portals", {})
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _SETTING_PARSERS:
            raise ConfigError(f"{label}: unknown setting {key!r}")
        values[key] = _parse_setting(key, value, f"{path.name}: {key}")
    if not isinstance(portals_table, dict):
        raise ConfigError(f"{label}: [portals] must be a table of portal names")
    portals = {}
    for portal, table in portals_table.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{label}: [portals.{portal!r}] must be a table")
        parsed = {}
        for key, value in table.items():
            if key not in _PORTAL_PARSERS:
                raise ConfigError(f"{label}: unknown setting {key!r} for portal {portal!r}")
            try:
                parsed[key] = _PORTAL_PARSERS[key](value)
            except ValueError as exc:
                raise ConfigError(
                    f"{path.name}: portals.{portal}.{key}: {exc} (got {value!r})"
                ) from None
        portals[portal] = PortalOverride(**parsed)
    return values, portals


def beside_database_config(database_url: str) -> Path | None:
    """The settings file read when no ``CLEANUP_CONFIG`` is given: ``cleanup.toml`` in the
    folder of an SQLite database (the demo writes its scraper commands there). ``None`` for a
    database that is not a file."""
    from sqlalchemy.engine import make_url

    url = make_url(_absolute_sqlite_url(database_url))
    if not url.drivername.startswith("sqlite") or not url.database:
        return None
    return Path(url.database).parent / BESIDE_DATABASE_CONFIG


def _absolute_sqlite_url(url: str) -> str:
    """Make a relative SQLite path absolute so every process (CLI, dashboard backend, scrapers)
    opens the same file whatever its working directory."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"CLEANUP_DATABASE_URL: not a database URL (got {url!r}); "
            "use e.g. sqlite:///data/tenders.db or postgresql+psycopg://user@host/db"
        ) from None
    if not parsed.drivername.startswith("sqlite"):
        return url
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise ConfigError(
            "CLEANUP_DATABASE_URL: an SQLite database must be a file path "
            f"(got {url!r}); several processes share it"
        )
    return parsed.set(database=str(Path(database).expanduser().absolute())).render_as_string(
        hide_password=False
    )
