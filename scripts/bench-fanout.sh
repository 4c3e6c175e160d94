#!/bin/sh
# bench-fanout.sh — room fan-out of chatbox on this machine, three ways:
# IRC only, XMPP only, half and half. For each it starts a fresh chatbox
# (a copy of one seeded data directory) on loopback with the rate limits
# raised, runs cmd/chatbench against it with --pid, stops it, and prints
# one table.
#
#   scripts/bench-fanout.sh                 # N=200 clients, K=10 senders, M=50 messages each
#   N=50 K=5 M=20 scripts/bench-fanout.sh   # smaller
#
# Environment: N, K, M, PACE (chatbench --pace, default 0), IRC_PORT and
# XMPP_PORT (default 26667 and 25222; they must be free), KEEP=1 keeps the
# work directory (server logs, JSON lines). The work directory is made with
# mktemp under TMPDIR: keep it on a real disk, or the disk figures are 0.
set -eu

N=${N:-200}
K=${K:-10}
M=${M:-50}
PACE=${PACE:-0}
IRC_PORT=${IRC_PORT:-26667}
XMPP_PORT=${XMPP_PORT:-25222}
DOMAIN=bench.local

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/chatbox-bench.XXXXXX")
pid=""
status=0
cleanup() {
	if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
	if [ "${KEEP:-0}" = 1 ] || [ "$status" != 0 ]; then
		echo "work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building chatbox and chatbench into $work" >&2
(cd "$repo" && CGO_ENABLED=0 go build -o "$work/chatbox" ./cmd/chatbox && go build -o "$work/chatbench" ./cmd/chatbench)
if [ "$(stat -f -c %T "$work" 2>/dev/null)" = tmpfs ]; then
	echo "warning: $work is on tmpfs: the disk figures will be 0 (set TMPDIR to a real disk)" >&2
fi

echo "creating $N accounts" >&2
"$work/chatbench" --make-accounts "$work/seed" --chatbox "$work/chatbox" --clients "$N" --room general >&2

. "$repo/scripts/bench-chatbox.sh"

# start_server DATA_DIR LOG: starts chatbox in the background, sets $pid,
# waits (at most 30 s) for "chatbox ready".
start_server() {
	started=true
	start_bench_chatbox "$work/chatbox" "$1" "$IRC_PORT" "$XMPP_PORT" "$2" || started=false
	pid=$bench_pid
	if [ "$started" != true ]; then
		status=1
		exit 1
	fi
}

# stop_server: SIGTERM, at most 15 s, then SIGKILL.
stop_server() {
	kill -TERM "$pid" 2>/dev/null || true
	i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 150 ]; then
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.1
	done
	wait "$pid" 2>/dev/null || true
	pid=""
}

for cfg in irc:0 xmpp:1 half:0.5; do
	name=${cfg%%:*}
	share=${cfg#*:}
	rm -rf "$work/data"
	cp -a "$work/seed" "$work/data"
	start_server "$work/data" "$work/server-$name.log"
	echo "running $name: $N clients (xmpp share $share), $K senders x $M messages" >&2
	if ! "$work/chatbench" --irc 127.0.0.1:$IRC_PORT --xmpp 127.0.0.1:$XMPP_PORT \
		--domain $DOMAIN --ca "$work/data/tls/ca.pem" --room general \
		--clients "$N" --xmpp-share "$share" --senders "$K" --messages "$M" --pace "$PACE" \
		--pid "$pid" --timeout 5m --json >"$work/$name.json"; then
		status=1
	fi
	stop_server
done

# field FILE KEY: a number from a JSON line.
field() {
	v=$(sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1")
	echo "${v:--}"
}

echo
echo "chatbox fan-out: $N clients in one room, $K senders x $M messages (pace $PACE), $(nproc) CPUs"
printf '%-6s %12s %9s %9s %10s %13s %11s %9s %8s %6s\n' \
	config deliveries/s p50_ms p99_ms KB/conn CPU_us/deliv disk_B/msg join_ms missing errors
for name in irc xmpp half; do
	f="$work/$name.json"
	[ -s "$f" ] || { printf '%-6s (no result: see %s)\n' "$name" "$work/server-$name.log"; continue; }
	printf '%-6s %12s %9s %9s %10s %13s %11s %9s %8s %6s\n' "$name" \
		"$(field "$f" deliveries_per_s)" "$(field "$f" latency_p50_ms)" "$(field "$f" latency_p99_ms)" \
		"$(field "$f" rss_per_conn_kb)" "$(field "$f" cpu_us_per_delivery)" "$(field "$f" disk_bytes_per_message)" \
		"$(field "$f" connect_wall_ms)" "$(field "$f" missing)" "$(field "$f" errors)"
done
exit $status
