# Sourced by the guest jobs as /run.sh: work in /tests, and
# run NAME COMMAND...: run COMMAND between the "### begin" and "### end"
# markers checks/tap parses, killed after $TEST_TIMEOUT seconds (600
# unless the job or the kernel command line sets it).
cd /tests || exit 1

run() {
	name=$1
	shift
	echo "### begin $name"
	timeout -s KILL "${TEST_TIMEOUT:-600}" "$@"
	echo "### end $name rc=$?"
}
