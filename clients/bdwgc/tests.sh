#!/bin/sh
# Run in the guest by clients/bdwgc/job: bdwgc's 17 "make check" programs
# with incremental mode on (GC_ENABLE_INCREMENTAL) and GC_PRINT_STATS, each
# checked to have used process_memwatch() for its dirty bits; then gctest
# forced onto pagemap + clear_refs, and Debian's unmodified gctest. TAP.

tests="gctest leaktest middletest smashtest hugetest realloc_test
	staticrootstest cordtest test_atomic_ops threadleaktest threadkey_test
	subthreadcreate_test initsecondarythread_test disclaim_test
	disclaim_bench disclaim_weakmap_test test_cpp"
# test_atomic_ops never starts the collector: it tests the atomic
# operations only. These turn incremental mode on by themselves; the
# others get it from GC_ENABLE_INCREMENTAL.
no_incremental=" test_atomic_ops "
self_incremental=" gctest disclaim_test disclaim_weakmap_test test_cpp "
memwatch='Using process_memwatch() to get and clear soft-dirty bits'
pagemap='Using /proc/self/pagemap and clear_refs to get and clear'
n=0

echo "1..19"

# one NAME DESCRIPTION ENV... -- COMMAND...: run COMMAND with ENV, print an
# ok line when it exits 0 and its log has the line $want (if set), not ok
# with its log's last lines otherwise.
one() {
	name=$1 desc=$2
	shift 2
	n=$((n + 1))
	log=/tmp/bdwgc-$name.log
	start=$(date +%s)
	env "$@" >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	if [ "$rc" -ne 0 ]; then
		echo "not ok $n $desc: exit status $rc ($secs s)"
		tail -n 8 "$log" | sed 's/^/# /'
	elif [ -n "$want" ] && ! grep -qF "$want" "$log"; then
		echo "not ok $n $desc: no \"$want\" in its output ($secs s)"
		grep -i 'soft-dirty\|memwatch\|pagemap\|mprotect' "$log" |
			head -n 5 | sed 's/^/# /'
	else
		echo "ok $n $desc ($secs s)"
	fi
}

for t in $tests; do
	case $no_incremental in
	*" $t "*)
		want=
		one "$t" "$t (never starts the collector: no dirty bits)" \
			GC_ENABLE_INCREMENTAL=1 GC_PRINT_STATS=1 "./$t"
		;;
	*)
		case $self_incremental in
		*" $t "*) how="turns it on itself" ;;
		*) how="forced by GC_ENABLE_INCREMENTAL" ;;
		esac
		want=$memwatch
		one "$t" "$t, incremental ($how) on process_memwatch" \
			GC_ENABLE_INCREMENTAL=1 GC_PRINT_STATS=1 "./$t"
		;;
	esac
done
want=$pagemap
one gctest-pagemap "gctest, incremental on pagemap + clear_refs" \
	GC_ENABLE_INCREMENTAL=1 GC_PRINT_STATS=1 GC_NO_PROCESS_MEMWATCH=1 ./gctest
want='Using soft-dirty bit feature'
one gctest-debian "Debian's unmodified gctest, incremental on soft-dirty" \
	GC_ENABLE_INCREMENTAL=1 GC_PRINT_STATS=1 ./gctest-debian
