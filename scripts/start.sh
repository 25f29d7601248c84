#!/usr/bin/env bash
# Install everything, set the database up (`python -m cleanup_core init`) and start the dashboard
# on the embedded SQLite database (./data/tenders.db unless CLEANUP_DATABASE_URL says otherwise).
#
#   bash scripts/start.sh --demo          # first load a demo fleet and its scraper commands
#   bash scripts/start.sh --port 8080     # serve on another port (default 3000)
#
# With no dashboard account yet, it creates "admin": with --demo (or without a terminal) it
# prints a generated password; on a terminal it asks you for one.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

port=3000
demo=0
while [ $# -gt 0 ]; do
    case "$1" in
        --demo) demo=1 ;;
        --port) port="$2"; shift ;;
        --port=*) port="${1#--port=}" ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "error: unknown option $1 (use --demo, --port N)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$demo" = 1 ]; then
    python -m cleanup_core demo
else
    # Creates ./data/tenders.db (or adopts the scrapers' database CLEANUP_DATABASE_URL names);
    # says what it did, changes nothing the second time, and refuses another application's.
    python -m cleanup_core init
fi

if [ -z "$(python -m cleanup_core admin list --json 2>/dev/null | python -c 'import json,sys; print(json.load(sys.stdin) or "")')" ]; then
    if [ "$demo" = 0 ] && [ -t 0 ]; then
        echo "==> create the first dashboard account (user name: admin)"
        python -m cleanup_core admin create admin
    else
        password="$(python -c 'import secrets; print(secrets.token_urlsafe(12))')"
        echo "$password" | python -m cleanup_core admin create admin --password-stdin
        echo "==> dashboard login: admin / $password   (change it: python -m cleanup_core admin set-password admin)"
    fi
fi

echo "==> starting the dashboard on http://localhost:$port (the first start builds it: about a minute)"
exec reflex run --env prod --single-port --frontend-port "$port" --backend-port "$port"
