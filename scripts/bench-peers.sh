#!/bin/bash
# bench-peers.sh — chatbox side by side with the servers people would pick
# instead: ngIRCd and InspIRCd (IRC), Prosody and ejabberd (XMPP rooms).
# Each runs on 127.0.0.1 on its own port with a config written here (flood
# limits and shapers off, connection and room limits raised, in-band
# registration for the XMPP servers), unprivileged, in the foreground, one
# fresh server (fresh data) per run, stopped by PID. The same cmd/chatbench
# load runs against each and against chatbox (IRC only, XMPP only, half and
# half), and one table comes out, with chatbox's ratio to each peer.
#
#   scripts/bench-peers.sh                        # N=200 clients, K=10 senders x M=50 messages, 1 run
#   N=1000 RUNS=3 scripts/bench-peers.sh          # medians of 3 runs
#   SERVERS="ngircd chatbox-irc" scripts/bench-peers.sh
#
# Environment: N, K, M, PACE (chatbench --pace), RUNS (each point this many
# times, fresh server each time; the table shows medians), PARALLEL (clients
# connecting at once, the same for every server; default 16), TIMEOUT (one
# chatbench run's bound, default 10m), DRAIN (give up once no delivery came
# for this long after the last send, default 60s: a busy XMPP server may
# still be sending the joins' presence), SERVERS (default: ngircd inspircd
# chatbox-irc prosody ejabberd chatbox-xmpp chatbox-xmpp-classic
# chatbox-xmpp-plain chatbox-half chatbox-half-plain; chatbox-xmpp-plain is
# chatbox-xmpp without TLS, xmpp.allow_plaintext: the difference is TLS's
# share; chatbox-half-plain is chatbox-half with its XMPP half without TLS,
# like the IRC half (chatbench's IRC clients are plain), so that its ratio
# to chatbox-irc is the mixed room's own cost, TLS apart;
# chatbox-xmpp-classic is chatbox-xmpp with clients that offer no
# post-quantum key share, chatbench --tls-groups x25519: their ~300-byte
# ClientHello, not ~1.5 KB, sizes the buffers Go's TLS keeps), PORT_BASE
# (default 26700: the servers listen on PORT_BASE+1 … +7, which must be
# free), KEEP=1 keeps the work directory (configs, logs, JSON lines);
# REPORT=DIR prints the table of such a kept directory again (give the same
# N, K, M, RUNS and SERVERS).
#
# The peers come from Debian (apt-get install, as root, when missing; their
# packages' own services are not used, but installing them may start them on
# their default ports). Run as root, each peer runs as its package's user
# (irc, prosody, ejabberd: InspIRCd refuses root); otherwise as you. The
# work directory is made with mktemp under TMPDIR: keep it on a real disk
# for chatbox's disk figures. Loopback only: chatbench refuses anything else.
set -euo pipefail

N=${N:-200}
K=${K:-10}
M=${M:-50}
PACE=${PACE:-0}
RUNS=${RUNS:-1}
PARALLEL=${PARALLEL:-16}
TIMEOUT=${TIMEOUT:-10m}
DRAIN=${DRAIN:-60s}
SERVERS=${SERVERS:-ngircd inspircd chatbox-irc prosody ejabberd chatbox-xmpp chatbox-xmpp-classic chatbox-xmpp-plain chatbox-half chatbox-half-plain}
PORT_BASE=${PORT_BASE:-26700}
DOMAIN=bench.local
ROOM=general

P_NGIRCD=$((PORT_BASE + 1))
P_INSPIRCD=$((PORT_BASE + 2))
P_PROSODY=$((PORT_BASE + 3))
P_EJABBERD=$((PORT_BASE + 4))
P_EJABBERD_DIST=$((PORT_BASE + 5))
P_CHATBOX_IRC=$((PORT_BASE + 6))
P_CHATBOX_XMPP=$((PORT_BASE + 7))

repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${REPORT:-}" ]; then # only the table, from an earlier KEEP=1 run's directory
	work=$REPORT KEEP=1
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/chatbox-peers.XXXXXX")
	chmod 755 "$work" # the peers' users read their configs under it
fi
spid=""           # what was started (setpriv, or a wrapper script)
pid=""            # the server process measured
status=0

cleanup() {
	stop_server
	if [ "${KEEP:-0}" = 1 ] || [ "$status" != 0 ]; then
		echo "work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'status=130; exit 130' INT TERM

say() { echo "bench-peers: $*" >&2; }

# ---------------------------------------------------------------- install, build

prepare() {

	declare -A pkg_of=([ngircd]=ngircd [inspircd]=inspircd [prosody]=prosody [ejabberd]=ejabberdctl)
	want_pkgs=()
	for s in $SERVERS; do
		case $s in
		ngircd | inspircd | prosody | ejabberd)
			command -v "${pkg_of[$s]}" >/dev/null || want_pkgs+=("$s")
			;;
		chatbox-irc | chatbox-xmpp | chatbox-xmpp-classic | chatbox-xmpp-plain | chatbox-half | chatbox-half-plain) ;;
		*)
			say "unknown server $s in SERVERS (want ngircd inspircd prosody ejabberd chatbox-irc chatbox-xmpp chatbox-xmpp-classic chatbox-xmpp-plain chatbox-half chatbox-half-plain)"
			exit 2
			;;
		esac
	done
	command -v openssl >/dev/null || want_pkgs+=(openssl)
	if [ ${#want_pkgs[@]} -gt 0 ]; then
		if [ "$(id -u)" != 0 ]; then
			say "missing: ${want_pkgs[*]}; install them (apt-get install ${want_pkgs[*]}) or run as root"
			exit 1
		fi
		say "installing ${want_pkgs[*]} (apt)"
		timeout 900 apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
		DEBIAN_FRONTEND=noninteractive timeout 900 apt-get -o DPkg::Lock::Timeout=300 install -y -q \
			--no-install-recommends "${want_pkgs[@]}" >&2
	fi
	ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

	say "building chatbox and chatbench into $work"
	(cd "$repo" && git describe --always --dirty 2>/dev/null || echo '?') >"$work/chatbox.version"
	(cd "$repo" && CGO_ENABLED=0 go build -o "$work/chatbox" ./cmd/chatbox && go build -o "$work/chatbench" ./cmd/chatbench)
	if [ "$(stat -f -c %T "$work" 2>/dev/null)" = tmpfs ]; then
		say "warning: $work is on tmpfs: the disk figures will be 0 (set TMPDIR to a real disk)"
	fi
	case " $SERVERS " in *" chatbox-"*)
		say "creating $N chatbox accounts"
		"$work/chatbench" --make-accounts "$work/chatbox-seed" --chatbox "$work/chatbox" --clients "$N" --room $ROOM >&2
		;;
	esac
	# One self-signed certificate for the XMPP peers (chatbench --insecure).
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/bench.key" -out "$work/bench.crt" -days 7 \
		-subj "/CN=$DOMAIN" -addext "subjectAltName=DNS:$DOMAIN,DNS:rooms.$DOMAIN" 2>/dev/null
}

# ---------------------------------------------------------------- servers

# as USER CMD...: runs CMD as USER when root (exec, so $! is CMD), else as is.
as() {
	local u=$1
	shift
	if [ "$(id -u)" = 0 ]; then
		exec setpriv --reuid="$u" --regid="$u" --init-groups "$@"
	fi
	exec "$@"
}

# own DIR USER: DIR belongs to USER (when root).
own() { if [ "$(id -u)" = 0 ]; then chown -R "$2:" "$1"; fi; }

# wait_port PORT WHAT: until something accepts on 127.0.0.1:PORT (60 s at most).
wait_port() {
	local i
	for i in $(seq 600); do
		if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; then return 0; fi
		if [ -n "$spid" ] && ! kill -0 "$spid" 2>/dev/null; then break; fi
		sleep 0.1
	done
	say "$2 did not start listening on 127.0.0.1:$1; its output:"
	cat "$dir/out" >&2 || true
	status=1
	exit 1
}

# stop_server: SIGTERM the server, at most 20 s, then SIGKILL; then the
# process that was started, the same way.
stop_server() {
	local p i
	for p in $pid $spid; do
		kill -TERM "$p" 2>/dev/null || continue
		for i in $(seq 200); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null || true
	done
	if [ -n "$spid" ]; then wait "$spid" 2>/dev/null || true; fi
	pid="" spid=""
}

start_ngircd() {
	cat >"$dir/ngircd.conf" <<-EOF
		# chatbench peer: ngIRCd on loopback, penalties (flood limits) off.
		[Global]
		  Name = irc.$DOMAIN
		  Info = chatbench peer
		  Listen = 127.0.0.1
		  Ports = $P_NGIRCD
		  MotdPhrase = bench
		[Limits]
		  MaxConnections = 0
		  MaxConnectionsIP = 0
		  MaxJoins = 0
		  MaxNickLength = 30
		  MaxPenaltyTime = 0
		  PingTimeout = 600
		  PongTimeout = 600
		[Options]
		  DNS = no
		  Ident = no
		  PAM = no
		  IncludeDir = $dir
	EOF
	own "$dir" irc
	(as irc ngircd --nodaemon --config "$dir/ngircd.conf") >"$dir/out" 2>&1 &
	spid=$! pid=$!
	wait_port $P_NGIRCD ngIRCd
	bench_args=(--irc 127.0.0.1:$P_NGIRCD --irc-login nick --xmpp-share 0)
}

start_inspircd() {
	cat >"$dir/inspircd.conf" <<-EOF
		# chatbench peer: InspIRCd on loopback, flood limits (fakelag, command rate) off.
		<server name="irc.$DOMAIN" description="chatbench peer" network="bench">
		<admin name="bench" nick="bench" email="bench@$DOMAIN">
		<bind address="127.0.0.1" port="$P_INSPIRCD" type="clients">
		<connect allow="*" timeout="60" threshold="1000000" pingfreq="600"
		         hardsendq="4194304" softsendq="1048576" recvq="1048576"
		         localmax="100000" globalmax="100000" maxchans="100" limit="100000"
		         commandrate="1000000000" fakelag="no" penaltythreshold="1000000"
		         useident="no" resolvehostnames="no">
		<performance softlimit="60000" somaxconn="1024" clonesonconnect="no" timeskipwarn="0">
		<pid file="$dir/inspircd.pid">
		<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="$dir/ircd.log">
		<module name="cap">
		<module name="ircv3">
		<module name="ircv3_echomessage">
	EOF
	own "$dir" irc
	(as irc inspircd --nofork --nopid --config="$dir/inspircd.conf") >"$dir/out" 2>&1 &
	spid=$! pid=$!
	wait_port $P_INSPIRCD InspIRCd
	bench_args=(--irc 127.0.0.1:$P_INSPIRCD --irc-login nick --xmpp-share 0)
}

start_prosody() {
	mkdir -p "$dir/data"
	cp "$work/bench.key" "$work/bench.crt" "$dir/"
	cat >"$dir/prosody.cfg.lua" <<-EOF
		-- chatbench peer: Prosody on loopback, in-band registration, no rate
		-- limits (mod_limits off), rooms unlocked on creation, no room history.
		data_path = "$dir/data"
		plugin_paths = { }
		interfaces = { "127.0.0.1" }
		c2s_ports = { $P_PROSODY }
		c2s_direct_tls_ports = { }
		s2s_ports = { }
		component_ports = { }
		network_backend = "epoll"
		modules_enabled = { "disco"; "roster"; "saslauth"; "tls"; "register"; "ping" }
		modules_disabled = { "s2s"; "limits"; "offline"; "c2s_timeout" }
		allow_registration = true
		min_seconds_between_registrations = 0
		authentication = "internal_hashed"
		c2s_require_encryption = true
		log = { info = "$dir/prosody.log" }
		certificates = "$dir"
		ssl = { certificate = "$dir/bench.crt"; key = "$dir/bench.key" }
		VirtualHost "$DOMAIN"
		Component "rooms.$DOMAIN" "muc"
		  muc_room_locking = false
		  muc_tombstones = false
		  muc_room_default_history_length = 0
	EOF
	own "$dir" prosody
	(as prosody prosody -F --config "$dir/prosody.cfg.lua") >"$dir/out" 2>&1 &
	spid=$! pid=$!
	wait_port $P_PROSODY Prosody
	bench_args=(--xmpp 127.0.0.1:$P_PROSODY --domain $DOMAIN --insecure --xmpp-register --xmpp-share 1)
}

start_ejabberd() {
	mkdir -p "$dir/spool" "$dir/logs"
	cat "$work/bench.key" "$work/bench.crt" >"$dir/bench.pem"
	cat >"$dir/ejabberd.yml" <<-EOF
		# chatbench peer: ejabberd on loopback, in-band registration, no
		# shapers, session and room size limits raised (presence to every
		# member kept), no room history.
		loglevel: warning
		log_rotate_count: 0
		hosts:
		  - $DOMAIN
		certfiles:
		  - "$dir/bench.pem"
		listen:
		  -
		    port: $P_EJABBERD
		    ip: "127.0.0.1"
		    module: ejabberd_c2s
		    max_stanza_size: 262144
		    access: c2s
		    starttls_required: true
		auth_method: internal
		auth_password_format: scram
		registration_timeout: infinity
		acl:
		  local:
		    user_regexp: ""
		access_rules:
		  c2s:
		    allow: all
		  register:
		    allow: all
		  muc_create:
		    allow: local
		shaper_rules:
		  max_user_sessions: 100000
		  c2s_shaper: none
		modules:
		  mod_disco: {}
		  mod_ping: {}
		  mod_roster: {}
		  mod_register:
		    ip_access: all
		    access: register
		  mod_muc:
		    host: "rooms.@HOST@"
		    access_create: muc_create
		    history_size: 0
		    max_users: 100000
		    max_users_presence: 100000
		    max_user_conferences: 100000
		    default_room_options:
		      max_users: 100000
		      mam: false
	EOF
	# No epmd: the node listens for ejabberdctl on its own port.
	cat >"$dir/ejabberdctl.cfg" <<-EOF
		ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"
		ERLANG_NODE=chatbench@localhost
		ERL_DIST_PORT=$P_EJABBERD_DIST
	EOF
	own "$dir" ejabberd
	(cd "$dir" && as ejabberd env HOME="$dir" ejabberdctl --config "$dir/ejabberd.yml" \
		--ctl-config "$dir/ejabberdctl.cfg" --spool "$dir/spool" --logs "$dir/logs" foreground) >"$dir/out" 2>&1 &
	spid=$!
	wait_port $P_EJABBERD ejabberd
	# The Erlang VM is a descendant of the script that was started.
	local i p
	for i in $(seq 50); do
		for p in $(pgrep -x beam.smp || true); do
			if grep -qF -- "$dir/spool" "/proc/$p/cmdline" 2>/dev/null; then pid=$p; fi
		done
		[ -n "$pid" ] && break
		sleep 0.1
	done
	if [ -z "$pid" ]; then
		say "ejabberd: no beam.smp process with $dir/spool on its command line"
		status=1
		exit 1
	fi
	bench_args=(--xmpp 127.0.0.1:$P_EJABBERD --domain $DOMAIN --insecure --xmpp-register --xmpp-share 1)
}

. "$repo/scripts/bench-chatbox.sh"

start_chatbox() { # share [plain: XMPP without TLS, to tell TLS's share of the memory; classic: clients without a post-quantum key share]
	local plain=()
	if [ "${2:-}" = plain ]; then plain=(--set xmpp.allow_plaintext=true); fi
	rm -rf "$dir/data"
	cp -a "$work/chatbox-seed" "$dir/data"
	local started=true
	start_bench_chatbox "$work/chatbox" "$dir/data" "$P_CHATBOX_IRC" "$P_CHATBOX_XMPP" "$dir/out" "${plain[@]}" || started=false
	spid=$bench_pid pid=$bench_pid
	if [ "$started" != true ]; then
		status=1
		exit 1
	fi
	bench_args=(--irc 127.0.0.1:$P_CHATBOX_IRC --xmpp 127.0.0.1:$P_CHATBOX_XMPP --domain $DOMAIN --xmpp-share "$1")
	case "${2:-}" in
	plain) bench_args+=(--xmpp-plaintext) ;;
	classic) bench_args+=(--ca "$dir/data/tls/ca.pem" --tls-groups x25519) ;;
	*) bench_args+=(--ca "$dir/data/tls/ca.pem") ;;
	esac
}

version_of() {
	case $1 in
	ngircd | inspircd | prosody | ejabberd) echo "$1 $(dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo '?')" ;;
	*) echo "$1 $(cat "$work/chatbox.version" 2>/dev/null || echo '?')" ;;
	esac
}

# ---------------------------------------------------------------- runs

runs() {
	for run in $(seq "$RUNS"); do
		for s in $SERVERS; do
			dir="$work/$s.$run"
			mkdir -p "$dir"
			case $s in
			chatbox-irc) start_chatbox 0 ;;
			chatbox-xmpp) start_chatbox 1 ;;
			chatbox-xmpp-classic) start_chatbox 1 classic ;;
			chatbox-xmpp-plain) start_chatbox 1 plain ;;
			chatbox-half) start_chatbox 0.5 ;;
			chatbox-half-plain) start_chatbox 0.5 plain ;;
			*) "start_$s" ;;
			esac
			say "run $run/$RUNS: $s (pid $pid): $N clients, $K senders x $M messages"
			if ! "$work/chatbench" "${bench_args[@]}" --room $ROOM --clients "$N" --senders "$K" --messages "$M" \
				--pace "$PACE" --connect-parallel "$PARALLEL" --pid "$pid" --timeout "$TIMEOUT" \
				--join-timeout "$TIMEOUT" --drain "$DRAIN" --json >"$work/$s.$run.json" 2>"$dir/chatbench.err"; then
				say "$s run $run incomplete: $(tail -n 3 "$dir/chatbench.err")"
				status=1
			fi
			stop_server
		done
	done
}

if [ -z "${REPORT:-}" ]; then
	prepare
	runs
fi

# ---------------------------------------------------------------- table

# field FILE KEY: a number from a JSON line, or nothing.
field() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1" 2>/dev/null; }

# complete SERVER: how many runs delivered everything without an error.
complete() {
	local r n=0
	for r in $(seq "$RUNS"); do
		if [ "$(field "$work/$1.$r.json" complete)" = true ]; then n=$((n + 1)); fi
	done
	echo $n
}

# median SERVER KEY: the median of KEY over the complete runs (- when none).
median() {
	local r
	for r in $(seq "$RUNS"); do
		if [ "$(field "$work/$1.$r.json" complete)" = true ]; then field "$work/$1.$r.json" "$2"; fi
	done |
		sort -g | awk '{v[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'
}

# ratio A B: A/B to two places (- when either is missing or B is 0).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a=="-"||b=="-"||b==0) print "-"; else printf "%.2f", a/b}'; }

declare -A kb peak dps cpu login join jcpu p99 disk ok
for s in $SERVERS; do
	ok[$s]="$(complete "$s")/$RUNS"
	kb[$s]=$(median "$s" rss_per_conn_kb)
	peak[$s]=$(median "$s" rss_peak_per_conn_kb)
	dps[$s]=$(median "$s" deliveries_per_s)
	cpu[$s]=$(median "$s" cpu_us_per_delivery)
	login[$s]=$(median "$s" login_wall_ms)
	join[$s]=$(median "$s" join_wall_ms)
	jcpu[$s]=$(median "$s" server_join_cpu_ms)
	p99[$s]=$(median "$s" latency_p99_ms)
	disk[$s]=$(median "$s" disk_bytes_per_message)
done

echo
echo "side by side: $N clients in one room, $K senders x $M messages (pace $PACE), $PARALLEL connecting at once;"
echo "medians of the complete runs (every delivery, no error) of $RUNS, a fresh server each;"
echo "$(nproc) CPUs, $(uname -m), load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "KB/conn: RSS once joined and quiet, minus RSS once warmed up and quiet; peak: the logins' and joins' peak RSS (VmHWM), minus the same"
echo "login_ms: every client connected and logged in; then joins_ms: every client joined to the room, and the server's CPU for it"
printf '%-32s %9s %8s %8s %13s %12s %9s %9s %11s %9s %10s\n' \
	server complete KB/conn peak deliveries/s CPU_us/deliv login_ms joins_ms joinCPU_ms p99_ms disk_B/msg
for s in $SERVERS; do
	printf '%-32s %9s %8s %8s %13s %12s %9s %9s %11s %9s %10s\n' "$(version_of "$s")" \
		"${ok[$s]}" "${kb[$s]}" "${peak[$s]}" "${dps[$s]}" "${cpu[$s]}" "${login[$s]}" "${join[$s]}" "${jcpu[$s]}" "${p99[$s]}" "${disk[$s]}"
done

echo
echo "chatbox / peer (KB/conn, CPU/deliv, logins, joins: below 1 is better; deliveries/s: above 1 is better)"
printf '%-36s %8s %13s %12s %8s %8s\n' pair KB/conn deliveries/s CPU/deliv logins joins
pair() {
	case " $SERVERS " in *" $1 "*) ;; *) return ;; esac
	case " $SERVERS " in *" $2 "*) ;; *) return ;; esac
	printf '%-36s %8s %13s %12s %8s %8s\n' "$1 / $2" "$(ratio "${kb[$1]}" "${kb[$2]}")" \
		"$(ratio "${dps[$1]}" "${dps[$2]}")" "$(ratio "${cpu[$1]}" "${cpu[$2]}")" "$(ratio "${login[$1]}" "${login[$2]}")" \
		"$(ratio "${join[$1]}" "${join[$2]}")"
}
pair chatbox-irc ngircd
pair chatbox-irc inspircd
pair chatbox-xmpp prosody
pair chatbox-xmpp ejabberd
pair chatbox-half chatbox-irc
pair chatbox-half-plain chatbox-irc
pair chatbox-xmpp chatbox-xmpp-classic
pair chatbox-xmpp chatbox-xmpp-plain
exit $status
