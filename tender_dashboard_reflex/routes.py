"""Every page's route, in one place."""

LOGIN = "/login"
OVERVIEW = "/"
RUNS = "/runs"
RUN = "/run"  # ?id=N
STUCK = "/stuck"
PORTALS = "/portals"
HISTORY = "/history"
SETTINGS_HELP = "/help/settings"  # the README's Settings section, served by the dashboard
