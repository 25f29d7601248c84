"""Errors a caller can act on. Every one carries a message meant for the operator."""


class CleanupError(Exception):
    """Base class: something the operator can fix or retry; never a programming error."""


class ConfigError(CleanupError):
    """A setting is missing or invalid; the message names the setting."""


class DatabaseError(CleanupError):
    """The database could not be used (missing, locked, unreachable, not a database)."""


class DatabaseLockedError(DatabaseError):
    """Another process held the database's write lock for longer than the busy timeout."""


class DatabaseUnavailableError(DatabaseError):
    """The database file is missing or the server cannot be reached."""


class NoRunsTableError(DatabaseError):
    """The database has no ``runs`` table: another application's database, an empty one, or a
    typo in the URL. Nothing was created in it."""


class RunNotFoundError(CleanupError):
    """One or more run ids do not exist."""

    def __init__(self, run_ids: list[int]):
        self.run_ids = sorted(run_ids)
        listed = ", ".join(str(i) for i in self.run_ids)
        noun = "run" if len(self.run_ids) == 1 else "runs"
        super().__init__(f"No {noun} with id {listed}.")


class RefusedError(CleanupError):
    """The action is not allowed for this run in its current state; nothing was changed."""


class RunFencedError(CleanupError):
    """This worker no longer owns its run (another attempt took it over, or someone cleaned or
    finished it); none of its writes went through. The scraper must stop."""

    def __init__(self, run_id: int, attempt: int, message: str):
        self.run_id = run_id
        self.attempt = attempt
        super().__init__(message)


class LaunchError(CleanupError):
    """The configured command could not be started (e.g. the program does not exist)."""


class LoginThrottledError(CleanupError):
    """Too many failed logins for this account or from this client: the attempt was refused
    without checking the password."""

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(f"Too many failed logins; try again in {retry_after} s.")
