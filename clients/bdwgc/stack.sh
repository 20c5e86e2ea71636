#!/bin/sh
# Run in the guest by clients/bdwgc/job: gcbench in a forked child with
# its stack at each of the 256 places in a page it can start at (16 bytes
# apart: address space randomization off, and an environment variable
# that grows 16 bytes at a time). The count of faults in the buffer pass
# must not depend on where the stack is: it did when getrusage() could
# fault on a stack page still shared with the parent after reading the
# count (a fault the next count then took for the buffer's). TAP.

echo "1..1"
old=$(cat /proc/sys/kernel/randomize_va_space)
echo 0 >/proc/sys/kernel/randomize_va_space
if [ "$(cat /proc/sys/kernel/randomize_va_space)" != 0 ]; then
	echo "not ok 1 forked child at 256 stack offsets: cannot turn address space randomization off"
	exit 1
fi
i=0 at='' n=0
while [ $i -lt 256 ]; do
	pad=$(printf "%0$((i * 16 + 1))d" 0)
	if ! PAD=$pad ./gcbench -c 1 -b 1 -n 2000 -f -e process_memwatch \
		>/tmp/gcbench-stack.log 2>&1; then
		at="$at $i"
		n=$((n + 1))
		grep '^not ok' /tmp/gcbench-stack.log | sed 's/^/# /'
	fi
	i=$((i + 1))
done
echo "$old" >/proc/sys/kernel/randomize_va_space

if [ "$n" -eq 0 ]; then
	echo "ok 1 forked child with its stack at 256 offsets in a page: checks failed at none"
else
	echo "not ok 1 forked child with its stack at 256 offsets in a page: checks failed at $n (x16 bytes:$at)"
	exit 1
fi
