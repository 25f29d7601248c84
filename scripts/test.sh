#!/usr/bin/env bash
# Install everything the tests need and run the whole suite: lint, the type checker, then pytest
# on SQLite and PostgreSQL. Usage: bash scripts/test.sh [extra pytest arguments]
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

ensure_postgres() {
    if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then return; fi
    echo "==> starting PostgreSQL"
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    version="$(ls /etc/postgresql | sort -n | tail -1)"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main start
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && return; sleep 1; done
    echo "error: PostgreSQL did not start on 127.0.0.1:5432" >&2
    exit 1
}
ensure_postgres

ensure_chromium() {
    if [ -x /usr/bin/chromium ]; then return; fi
    echo "==> installing Debian's Chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
}
ensure_chromium

# The browser tests check the README's fail2ban filter with fail2ban-regex on the dashboard's own
# log lines. Only that tool is used, not the fail2ban service.
ensure_fail2ban_regex() {
    if [ -x /usr/bin/fail2ban-regex ]; then return; fi
    echo "==> installing Debian's fail2ban (for fail2ban-regex)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fail2ban >/dev/null
    # On a systemd machine the package starts its service; the tests need only the tool.
    if command -v systemctl >/dev/null && systemctl is-active --quiet fail2ban 2>/dev/null; then
        systemctl disable --now fail2ban
    fi
}
ensure_fail2ban_regex

ensure_promtool() {
    if command -v promtool >/dev/null 2>&1; then return; fi
    echo "==> installing Debian's prometheus package (promtool) for the alert rules' tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
}
ensure_promtool

# The pooler tests start their own PgBouncer (transaction mode) in front of PostgreSQL.
ensure_pgbouncer() {
    if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then return; fi
    echo "==> installing Debian's PgBouncer for the pooler tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
}
ensure_pgbouncer

echo "==> ruff"
ruff check .
ruff format --check .

# The type checker over cleanup_core/ and tender_dashboard_reflex/ (settings in pyproject.toml).
echo "==> mypy"
mypy

# pytest exit code 5 means "no tests collected": a failure here, never a pass.
run_pytest() {
    set +e
    python -m pytest "$@"
    status=$?
    set -e
    if [ "$status" -eq 5 ]; then
        echo "error: pytest collected no tests ($*); that is a failure, not a pass." >&2
        exit 1
    fi
    return "$status"
}

if [ $# -gt 0 ]; then
    run_pytest "$@"
    exit 0
fi
echo "==> pytest: library, CLI, tracker, monitor, dashboard state, reliability"
run_pytest
# pytest-playwright's sync browser must not share a process with the other tests.
echo "==> pytest: the dashboard in a real browser"
run_pytest tests/browser
