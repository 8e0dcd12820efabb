#!/usr/bin/env bash
# Run the backend in testing mode as a background daemon: start | stop | status.
#
#   DATABASE_URL  the (migrated) database to serve; required by `start`
#   HOST, PORT    where to listen (default 127.0.0.1:5100)
#   PYTHON        interpreter (default: the repo's .venv/bin/python, else python3)
#   PID_FILE      default ${TMPDIR:-/tmp}/ci-stack-backend.pid; the log sits next to it
#   STOP_TIMEOUT  seconds `stop` waits after SIGTERM before SIGKILL (default 10)
#
# `start` returns at once: poll http://HOST:PORT/api/health/readyz until it answers 200.
# Exit codes: 0 ok, 1 failure, 2 usage or configuration error, 3 `status`: not running.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-5100}"
PID_FILE="${PID_FILE:-${TMPDIR:-/tmp}/ci-stack-backend.pid}"
LOG_FILE="${PID_FILE%.pid}.log"
STOP_TIMEOUT="${STOP_TIMEOUT:-10}"
[[ "$STOP_TIMEOUT" =~ ^[0-9]+$ ]] || {
    echo "testing-daemon: STOP_TIMEOUT=$STOP_TIMEOUT must be a whole number of seconds" >&2
    exit 2
}
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then
        PYTHON="$REPO_ROOT/.venv/bin/python"
    else
        PYTHON="python3"
    fi
fi
# What the daemon's command line contains: a reused pid of another program is not ours.
SERVE_MARKER="-m backend serve"

say() { echo "testing-daemon: $*"; }
fail() {
    echo "testing-daemon: $1" >&2
    exit "${2:-1}"
}

# True while `pid` runs (a zombie nobody reaped yet counts as gone).
alive() {
    local pid="$1" state
    kill -0 "$pid" 2>/dev/null || return 1
    state="$(ps -o stat= -p "$pid" 2>/dev/null || true)"
    [[ -n "$state" && "$state" != Z* ]]
}

# The pid of our running daemon, or nothing; a PID file naming anything else is removed.
running_pid() {
    [[ -f "$PID_FILE" ]] || return 0
    local pid
    pid="$(tr -d '[:space:]' <"$PID_FILE")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" \
        && [[ "$(ps -ww -o args= -p "$pid" 2>/dev/null || true)" == *"$SERVE_MARKER"* ]]; then
        echo "$pid"
        return 0
    fi
    rm -f "$PID_FILE"
    say "removed stale PID file $PID_FILE (process ${pid:-?} is not running the backend)" >&2
}

cmd_start() {
    local pid
    pid="$(running_pid)"
    if [[ -n "$pid" ]]; then
        say "already running (pid $pid, PID file $PID_FILE); log: $LOG_FILE"
        return 0
    fi
    [[ -n "${DATABASE_URL:-}" ]] \
        || fail "DATABASE_URL is not set; export the URL of a migrated database and retry." 2
    mkdir -p "$(dirname "$PID_FILE")"
    cd "$REPO_ROOT"
    # Own session (setsid, where there is one): a Ctrl-C in the calling shell does not reach it.
    local detach=()
    command -v setsid >/dev/null && detach=(setsid)
    FLASK_ENV=testing "${detach[@]}" "$PYTHON" -m backend serve --host "$HOST" --port "$PORT" \
        </dev/null >"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE.tmp"
    mv -f "$PID_FILE.tmp" "$PID_FILE"
    say "started backend (pid $pid) in testing mode on http://$HOST:$PORT; log: $LOG_FILE"
    say "poll http://$HOST:$PORT/api/health/readyz until it returns 200"
}

cmd_stop() {
    local pid waited=0 limit
    pid="$(running_pid)"
    if [[ -z "$pid" ]]; then
        say "not running (no live process in $PID_FILE); nothing to stop"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    limit=$((STOP_TIMEOUT * 10))
    # Poll the process itself (tenths of a second) until it exits or the deadline passes.
    while alive "$pid" && ((waited < limit)); do
        sleep 0.1
        waited=$((waited + 1))
    done
    if alive "$pid"; then
        say "pid $pid did not exit within ${STOP_TIMEOUT}s of SIGTERM; sending SIGKILL (see $LOG_FILE)"
        kill -KILL "$pid" 2>/dev/null || true
        waited=0
        while alive "$pid" && ((waited < 50)); do
            sleep 0.1
            waited=$((waited + 1))
        done
        if alive "$pid"; then
            fail "pid $pid survived SIGKILL; PID file $PID_FILE kept"
        fi
    fi
    rm -f "$PID_FILE"
    say "stopped backend (pid $pid)"
}

cmd_status() {
    local pid
    pid="$(running_pid)"
    if [[ -n "$pid" ]]; then
        say "running (pid $pid) on http://$HOST:$PORT; log: $LOG_FILE"
        return 0
    fi
    say "not running"
    return 3
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) fail "usage: $(basename "$0") start|stop|status" 2 ;;
esac
