#!/usr/bin/env bash
# Stop the servers started by scripts/interop-up.sh (by their pid files).
# Usage: sudo scripts/interop-down.sh [STATE_DIR]   (default: <repo>/.interop)
# The state dir (certificates, logs, Prosody data) is kept.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${1:-$REPO/.interop}"
[ -d "$STATE/pids" ] || exit 0

say() { printf 'interop-down: %s\n' "$*" >&2; }

# stop NAME EXPECTED_COMM...: TERM the pid from NAME.pid if its command name is
# one we started (guards against a recycled pid), wait, then KILL.
stop() {
	local name="$1"
	shift
	local pidfile="$STATE/pids/$name.pid" pid comm ok=0 want
	[ -f "$pidfile" ] || return 0
	pid="$(cat "$pidfile")"
	if [[ "$pid" =~ ^[0-9]+$ ]] && comm="$(ps -o comm= -p "$pid" 2>/dev/null)"; then
		for want in "$@"; do [ "$comm" = "$want" ] && ok=1; done
		if [ "$ok" = 1 ]; then
			kill -TERM "$pid" 2>/dev/null || true
			local i
			for i in $(seq 1 50); do
				kill -0 "$pid" 2>/dev/null || break
				# baresip un-REGISTERs on the first TERM; a second one ends it.
				if [ "$i" = 15 ]; then kill -TERM "$pid" 2>/dev/null || true; fi
				sleep 0.1
			done
			if kill -0 "$pid" 2>/dev/null; then
				say "$name (pid $pid) did not stop, killing"
				kill -KILL "$pid" 2>/dev/null || true
			fi
			say "$name (pid $pid) stopped"
		else
			say "$name: pid $pid is '$comm', not ours; left alone"
		fi
	fi
	rm -f "$pidfile"
}

stop baresip baresip
stop prosody prosody lua5.4 lua setpriv
stop kamailio-sha256 kamailio
stop kamailio-md5 kamailio
