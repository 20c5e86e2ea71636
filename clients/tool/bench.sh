#!/bin/sh
# The precopy comparison in the tool guest, run from /tests by
# clients/tool/bench-job: against each target of ./targets, REPS times
# (TOOL_BENCH_REPS, default 3), precopy --verify with process_memwatch and
# with the clear_refs method. One "bench" line per run for
# clients/tool/check bench to tabulate.
reps=${TOOL_BENCH_REPS:-3}
while IFS=: read -r name cmd; do
	[ -n "$name" ] || continue
	$cmd </dev/null >/dev/null 2>&1 &
	tpid=$!
	sleep 2
	i=0
	while [ "$i" -lt "$reps" ]; do
		for m in memwatch clear_refs; do
			./memwatch precopy "$tpid" -o /tmp/img --method=$m \
				--verify </dev/null >/tmp/out 2>&1
			rc=$?
			echo "bench $name $m rc=$rc $(grep '^image:' /tmp/out) |" \
				"$(grep '^verify:' /tmp/out) |" \
				"$(grep '^target stopped for' /tmp/out)"
		done
		i=$((i + 1))
	done
	kill -KILL "$tpid"
	wait "$tpid" 2>/dev/null
	rm -f /tmp/img /tmp/img.map
done <targets
