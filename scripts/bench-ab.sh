#!/usr/bin/env bash
# bench-ab.sh: the same chatbench load against two builds of chatbox, in
# alternating runs (A, B, A, B, …), one freshly started server (fresh
# data) per run, so that a change is told from the machine's noise.
#
#   scripts/bench-ab.sh REV                     # A = REV, B = the working tree
#   scripts/bench-ab.sh REV_A REV_B             # two commits
#   N=1000 R=3 SHARE=1 scripts/bench-ab.sh HEAD # XMPP only, 3 runs each
#
# Environment: N clients (200), R runs each (3), SHARE (chatbench
# --xmpp-share, 0: IRC only), K senders x M messages (10 x 50), PORT_BASE
# (26710: the servers listen on +1 IRC and +2 XMPP). One line per run:
# the logins' and then the room joins' wall time and the server's CPU
# for each, deliveries/s, server and tool CPU per delivery, KB per
# connection (once quiet, and at the peak). The load tool is the working tree's
# for both. Loopback only; every run is bounded (10 minutes).
set -euo pipefail

N=${N:-200}
R=${R:-3}
SHARE=${SHARE:-0}
K=${K:-10}
M=${M:-50}
PORT_BASE=${PORT_BASE:-26710}
P_IRC=$((PORT_BASE + 1))
P_XMPP=$((PORT_BASE + 2))

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/chatbox-ab.XXXXXX")
pid=""
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	git -C "$repo" worktree remove --force "$work/tree" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

# build REV OUT: chatbox at REV ("" for the working tree) into OUT.
build() {
	if [ -z "$1" ]; then
		(cd "$repo" && CGO_ENABLED=0 go build -o "$2" ./cmd/chatbox)
		return
	fi
	git -C "$repo" worktree add -f --detach "$work/tree" "$1" >/dev/null
	(cd "$work/tree" && CGO_ENABLED=0 go build -o "$2" ./cmd/chatbox)
	git -C "$repo" worktree remove --force "$work/tree"
}
echo "bench-ab: building A ($1) and B (${2:-working tree})" >&2
build "$1" "$work/chatbox.A"
build "${2:-}" "$work/chatbox.B"
(cd "$repo" && go build -o "$work/chatbench" ./cmd/chatbench)
"$work/chatbench" --make-accounts "$work/seed" --chatbox "$work/chatbox.A" --clients "$N" --room general >&2
ulimit -n $((N * 4 + 1024)) 2>/dev/null || true

. "$repo/scripts/bench-chatbox.sh"

# field FILE KEY: a number from chatbench's JSON line.
field() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1"; }

one() { # A or B
	rm -rf "$work/data"
	cp -a "$work/seed" "$work/data"
	local started=true
	start_bench_chatbox "$work/chatbox.$1" "$work/data" "$P_IRC" "$P_XMPP" "$work/out" || started=false
	pid=$bench_pid
	if [ "$started" != true ]; then
		echo "bench-ab: chatbox $1 did not start" >&2
		exit 1
	fi
	local ok=true
	"$work/chatbench" --irc 127.0.0.1:$P_IRC --xmpp 127.0.0.1:$P_XMPP --domain bench.local \
		--ca "$work/data/tls/ca.pem" --xmpp-share "$SHARE" --room general --clients "$N" \
		--senders "$K" --messages "$M" --pace 0 --connect-parallel 16 --pid "$pid" \
		--timeout 10m --join-timeout 10m --drain 60s --json >"$work/res.json" 2>"$work/bench.err" || ok=false
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=""
	local f="$work/res.json"
	if [ "$ok" != true ]; then
		echo "$1 incomplete: $(tail -n 2 "$work/bench.err")"
		return
	fi
	awk -v w="$1" -v l="$(field "$f" login_wall_ms)" -v lc="$(field "$f" server_login_cpu_ms)" \
		-v j="$(field "$f" join_wall_ms)" -v jc="$(field "$f" server_join_cpu_ms)" -v jt="$(field "$f" tool_join_cpu_ms)" \
		-v d="$(field "$f" deliveries_per_s)" -v c="$(field "$f" cpu_us_per_delivery)" \
		-v tc="$(field "$f" tool_cpu_us_per_delivery)" -v kb="$(field "$f" rss_per_conn_kb)" \
		-v pk="$(field "$f" rss_peak_per_conn_kb)" \
		'BEGIN {printf "%s login_ms %5.0f CPU %5.0f  joins_ms %5.0f CPU %5.0f tool %5.0f  deliv/s %8.0f  CPU/deliv %.2f  tool/deliv %.2f  KB/conn %.1f peak %.1f\n", w, l, lc, j, jc, jt, d, c, tc, kb, pk}'
}

for _ in $(seq "$R"); do
	one A
	one B
done
