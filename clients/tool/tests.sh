#!/bin/sh
# TAP tests of tools/mm/memwatch in the tool guest, run from /tests by
# clients/tool/job: precopy --verify against live targets (0 differing
# bytes), watch against a known write load, the bad-input errors, a
# broken build of the tool that --verify must catch, and the clear_refs
# comparison as diagnostics.
#
# The precopy targets are the lines of ./targets, NAME:COMMAND, written by
# clients/tool/check; each command must keep running (and writing) for the
# whole precopy, a minute at most.
#
# "set -- $(differ FILE)" splits differ's two numbers into $1 and $2:
# shellcheck disable=SC2046

TARGETS=$(cat targets)

n=0
ntargets=$(echo "$TARGETS" | grep -c :)
echo "TAP version 13"
echo "1..$((2 * ntargets + 8))"

result() {	# result OK DESC
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n $2"; else echo "not ok $n $2"; fi
}

# start_target COMMAND: run it in the background, wait until it runs
start_target() {
	$1 >/tmp/target.log 2>&1 &
	tpid=$!
	sleep 2
	kill -0 "$tpid" 2>/dev/null
}

stop_target() {
	kill -CONT "$tpid" 2>/dev/null
	kill -KILL "$tpid" 2>/dev/null
	wait "$tpid" 2>/dev/null
}

# verify_line FILE: the counts of the "verify:" line
differ() { sed -n 's/^verify: .* \([0-9]*\) differ (\([0-9]*\) bytes).*/\1 \2/p' "$1"; }

echo "$TARGETS" | while IFS=: read -r name cmd; do
	[ -n "$name" ] || continue
	if ! start_target "$cmd"; then
		result 1 "precopy --verify $name: target did not start"
		result 1 "precopy --method=clear_refs --verify $name: not run"
		sed 's/^/# /' /tmp/target.log
		continue
	fi
	sed -n "1,4s/^#* */# $name: /p" /tmp/target.log
	./memwatch precopy "$tpid" -o /tmp/img --verify >/tmp/out 2>&1
	rc=$?
	sed 's/^/# /' /tmp/out
	set -- $(differ /tmp/out)
	[ "$rc" = 0 ] && [ "${1:-x}" = 0 ] && [ "${2:-x}" = 0 ] &&
		grep -q '^verify: [1-9]' /tmp/out
	result $? "precopy --verify $name: ${1:-?} pages, ${2:-?} bytes differ (exit $rc)"
	grep '^image:' /tmp/out | sed "s/^/# memwatch $name /"

	./memwatch precopy "$tpid" -o /tmp/img-cr --method=clear_refs \
		--verify >/tmp/out 2>&1
	rc=$?
	sed 's/^/# clear_refs: /' /tmp/out
	grep '^image:' /tmp/out | sed "s/^/# clear_refs $name /"
	set -- $(differ /tmp/out)
	# for comparison only: it must run, its differences are reported
	grep -q '^verify: [1-9]' /tmp/out
	result $? "precopy --method=clear_refs --verify $name ran: ${1:-?} pages, ${2:-?} bytes differ (exit $rc)"
	stop_target
	rm -f /tmp/img /tmp/img.map /tmp/img-cr /tmp/img-cr.map
done
n=$((n + 2 * ntargets))

# A broken tool (the copy of the stopped round left out) must fail
start_target "./churn -T -d 600 -s 2"
./memwatch-broken precopy "$tpid" -o /tmp/img --verify >/tmp/out 2>&1
rc=$?
sed 's/^/# broken: /' /tmp/out
set -- $(differ /tmp/out)
[ "$rc" != 0 ] && [ "${1:-0}" -gt 0 ]
result $? "broken tool (last round not copied): --verify finds ${1:-?} pages, ${2:-?} bytes differ (exit $rc)"
stop_target
rm -f /tmp/img /tmp/img.map

# watch: 256 pages written every 10 ms in a 1024-page mapping
start_target "./writer 256"
./memwatch watch "$tpid" -i 1 -n 3 -j >/tmp/out 2>&1
rc=$?
sed 's/^/# /' /tmp/out
bad=$(sed -n 's/.*"pages":\([0-9]*\),"bytes".*/\1/p' /tmp/out |
	awk '$1 < 256 || $1 > 1024 + 64 { b++ } END { print NR == 3 ? b + 0 : "lines " NR }')
[ "$rc" = 0 ] && [ "$bad" = 0 ]
result $? "watch -j: 3 intervals, each 256 to 1088 pages written ($bad outside)"
./memwatch watch "$tpid" -i 0.5 -n 2 >/tmp/out 2>&1
rc=$?
sed 's/^/# /' /tmp/out
[ "$rc" = 0 ] && grep -q '^#2 .* pages written' /tmp/out &&
	grep -q '\[anon\]' /tmp/out && grep -q '^total: ' /tmp/out
result $? "watch: human output names the written mapping"

# bad input: one line on stderr, exit status 1
bad_input() {	# bad_input DESC EXPECTED-TEXT COMMAND...
	desc=$1 want=$2
	shift 2
	"$@" >/tmp/out 2>&1
	rc=$?
	sed 's/^/# /' /tmp/out
	[ "$rc" = 1 ] && [ "$(wc -l </tmp/out)" = 1 ] && grep -q "$want" /tmp/out
	result $? "$desc: exit $rc, $(cat /tmp/out)"
}
sleep 0 &
gone=$!
wait $gone
bad_input "PID gone" "no process $gone" ./memwatch watch "$gone" -n 1
bad_input "no permission" "no permission" \
	./mwrun -u 1000 ./memwatch watch "$tpid" -n 1
bad_input "kernel without the system call" "not available in this kernel" \
	./mwrun -n ./memwatch watch "$tpid" -n 1
bad_input "range outside the target" "outside the address space" \
	./memwatch watch "$tpid" -n 1 0x1000-0xfffffffffffff000
bad_input "invalid range" "invalid range" \
	./memwatch precopy "$tpid" -o /tmp/img 0x3000-0x2000
stop_target
rm -f /tmp/img /tmp/img.map
[ "$n" = "$((2 * ntargets + 8))" ] || echo "# ran $n tests"
