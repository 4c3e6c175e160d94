# bench-chatbox.sh: sourced by the benchmark scripts (bench-fanout.sh,
# bench-peers.sh, bench-ab.sh), so that they start chatbox the same way.
# POSIX sh.

# start_bench_chatbox BIN DATA IRC_PORT XMPP_PORT LOG [ARG...]: starts
# chatbox BIN in the background on DATA, on loopback only (plain IRC on
# IRC_PORT, XMPP with STARTTLS on XMPP_PORT, nothing else), with the
# rate, connection and session limits raised for a load test, its log to
# LOG; ARGs go before the benchmark's settings (e.g. --set
# xmpp.allow_plaintext=true). It sets bench_pid and waits (at most 30 s)
# for "chatbox ready"; if chatbox does not get there it prints the log
# to standard error and returns 1.
start_bench_chatbox() {
	_sbc_bin=$1 _sbc_data=$2 _sbc_irc=$3 _sbc_xmpp=$4 _sbc_log=$5
	shift 5
	# Emptied here, not by the background job's redirection: that runs in
	# the child, and the wait below could read the last run's "ready".
	: >"$_sbc_log"
	"$_sbc_bin" --data "$_sbc_data" "$@" \
		--set domain=bench.local --set hw.backend=sim \
		--set xmpp.listen=127.0.0.1:$_sbc_xmpp --set xmpp.tls_listen=[] \
		--set irc.plain_listen=127.0.0.1:$_sbc_irc --set irc.tls_listen=[] \
		--set web.listen= --set upload.listen=[] --set calls.listen=[] \
		--set limits.messages_per_second=100000 --set limits.message_burst=100000 \
		--set limits.connections_per_address=100000 --set limits.sessions_per_account=1000 \
		>"$_sbc_log" 2>&1 &
	bench_pid=$!
	_sbc_i=0
	while ! grep -q 'chatbox ready' "$_sbc_log"; do
		_sbc_i=$((_sbc_i + 1))
		if [ $_sbc_i -gt 300 ] || ! kill -0 "$bench_pid" 2>/dev/null; then
			echo "chatbox did not start; its log:" >&2
			cat "$_sbc_log" >&2
			return 1
		fi
		sleep 0.1
	done
}
