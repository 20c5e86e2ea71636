// SPDX-License-Identifier: GPL-2.0
/*
 * gcbench: a bdwgc mutator in incremental mode, to compare the sources of
 * dirty bits of the collector: process_memwatch(), /proc/self/pagemap +
 * clear_refs, and mprotect (chosen with the environment, see below).
 *
 * A live set of holders, each pointing to a child object; every cycle
 * replaces the children of some holders (a write into an old heap object
 * that only the dirty bits tell the collector about), allocates garbage
 * until at least one collection completed, checks the canary of every
 * live object (a missed write frees a live child, whose memory is then
 * reused by garbage: a canary mismatch), and writes one word to every
 * page of a large buffer that is not in the GC heap and never scanned.
 *
 * It reports the minor faults taken while writing that buffer (0 unless
 * something write-protected it: clear_refs does, at every collection),
 * the buffer's pages that /proc/self/pagemap shows not soft-dirty before
 * a pass (0 unless something cleared them: clear_refs again), the time
 * the world was stopped and the longest stop, the total time, and the
 * number of mappings (/proc/self/maps lines) over the run.
 *
 * Usage: gcbench [-c CYCLES] [-n LIVE] [-b BUFFER_MIB] [-e SOURCE] [-f]
 * SOURCE (what the run must use): process_memwatch, pagemap or mprotect.
 * -f runs the cycles in a forked child, on the heap it inherited.
 * The environment chooses: GC_NO_PROCESS_MEMWATCH=1 forces pagemap +
 * clear_refs, GC_USE_GETWRITEWATCH=0 forces mprotect. Output is TAP with a
 * "# result" line of key=value pairs for bench scripts.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define GC_THREADS
#include "gc.h"

#define CANARY 0x5ca1ab1e0ddba11ULL

struct child {
	uint64_t canary;	/* CANARY ^ id */
	uint64_t id;
	char pad[48];
};

struct holder {
	uint64_t canary;
	uint64_t id;
	struct child *child;
};

static struct holder **live;	/* GC heap, reachable from this root */
static long nlive = 20000;
static uint64_t next_id;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* World-stopped intervals, from the collector's events. */
static double stop_start, stopped_total, stopped_max;
static unsigned long nstops;

static void on_event(GC_EventType e)
{
	double t;

	if (e == GC_EVENT_PRE_STOP_WORLD) {
		stop_start = now();
	} else if (e == GC_EVENT_POST_START_WORLD && stop_start > 0) {
		t = now() - stop_start;
		stopped_total += t;
		if (t > stopped_max)
			stopped_max = t;
		nstops++;
		stop_start = 0;
	}
}

static uint64_t rnd_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static struct child *new_child(void)
{
	struct child *c = GC_MALLOC(sizeof(*c));

	if (!c) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	c->id = next_id++;
	c->canary = CANARY ^ c->id;
	return c;
}

/* Garbage, with a pattern that breaks any canary it lands on. */
static void garbage(void)
{
	uint64_t *g = GC_MALLOC(sizeof(struct child));

	if (g)
		memset(g, 0xa5, sizeof(struct child));
}

/* Returns the number of live objects whose canary is wrong. */
static long check_canaries(void)
{
	long i, bad = 0;

	for (i = 0; i < nlive; i++) {
		struct holder *h = live[i];

		if (h->canary != (CANARY ^ h->id) || !h->child ||
		    h->child->canary != (CANARY ^ h->child->id)) {
			if (bad < 5)
				printf("# canary mismatch at holder %ld (%p, child %p)\n",
				       i, (void *)h, (void *)h->child);
			bad++;
		}
	}
	return bad;
}

static long count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	long n = 0;
	int c;

	if (!f)
		return -1;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/*
 * Write @val to every page of the buffer. One function for every pass, so
 * that the counted one runs code that ran before (a forked child faults
 * its text in again).
 */
static __attribute__((noinline)) void write_buf(char *buf, long pages,
						long page, char val)
{
	long i;

	for (i = 0; i < pages; i++)
		buf[i * page] = val;
}

/*
 * What /proc/self/pagemap says of the buffer's pages, read before each
 * counted pass: how many are not soft-dirty (cleared since the last pass
 * wrote them), not present (swapped out), or present on another page
 * frame than at the last look (moved: migration or compaction; page
 * frames need CAP_SYS_ADMIN, without it none is seen to move).
 */
struct bufstate {
	long absent, clean, moved;
};

#define PM_PRESENT	(1ULL << 63)
#define PM_SOFT_DIRTY	(1ULL << 55)
#define PM_PFN		((1ULL << 55) - 1)

static uint64_t *pm_now, *pm_last;

static int buf_state(const char *buf, long pages, long page,
		     struct bufstate *s)
{
	size_t len = pages * sizeof(uint64_t);
	uint64_t *swap;
	long i;
	int fd;

	memset(s, 0, sizeof(*s));
	if (!pm_now) {
		pm_now = calloc(pages, sizeof(uint64_t));
		pm_last = calloc(pages, sizeof(uint64_t));
		if (!pm_now || !pm_last)
			return -1;
	}
	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return -1;
	if (pread(fd, pm_now, len, (uintptr_t)buf / page * sizeof(uint64_t)) !=
	    (ssize_t)len) {
		close(fd);
		return -1;
	}
	close(fd);
	for (i = 0; i < pages; i++) {
		/* A swap entry keeps the bit too */
		if (!(pm_now[i] & PM_SOFT_DIRTY))
			s->clean++;
		if (!(pm_now[i] & PM_PRESENT))
			s->absent++;
		/* Not present, the low bits are a swap entry's */
		if ((pm_now[i] & PM_PRESENT) && (pm_last[i] & PM_PRESENT) &&
		    (pm_now[i] & PM_PFN) && (pm_last[i] & PM_PFN) &&
		    (pm_now[i] & PM_PFN) != (pm_last[i] & PM_PFN))
			s->moved++;
	}
	swap = pm_last;
	pm_last = pm_now;
	pm_now = swap;
	return 0;
}

/*
 * The minor faults of this thread. getrusage() reads the count before it
 * copies it out, so a fault on @ru would be counted by the next call: in
 * a forked child the page may still be shared with the parent. Write it
 * first.
 */
static long minflt(void)
{
	struct rusage ru;

	memset(&ru, 0, sizeof(ru));
	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_minflt;
}

/* The process a pidfd names, from /proc/self/fdinfo/FD. */
static long pidfd_pid(const char *fd)
{
	char path[300], line[256];
	long pid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%s", fd);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "Pid:", 4))
			pid = atol(line + 4);
	if (f)
		fclose(f);
	return pid;
}

/*
 * Which source of dirty bits the collector uses, from what it holds open:
 * a pidfd (process_memwatch), /proc/PID/pagemap (clear_refs), or neither
 * with protection needed (mprotect).
 */
static const char *dirty_source(void)
{
	char path[300], target[300];
	int pidfd = 0, pagemap = 0;
	struct dirent *d;
	DIR *dir;
	ssize_t n;

	if (!GC_is_incremental_mode())
		return "none";
	dir = opendir("/proc/self/fd");
	while (dir && (d = readdir(dir))) {
		snprintf(path, sizeof(path), "/proc/self/fd/%s", d->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		pagemap |= strstr(target, "/pagemap") != NULL;
		if (strcmp(target, "anon_inode:[pidfd]"))
			continue;
		/* A pidfd of another process (the parent) is no use */
		pidfd = pidfd_pid(d->d_name) == getpid() ? 1 : -1;
		if (pidfd < 0)
			break;
	}
	if (dir)
		closedir(dir);
	if (pidfd < 0)
		return "stale-pidfd";
	if (pidfd && !pagemap)
		return "process_memwatch";
	if (pagemap && !pidfd)
		return "pagemap";
	if (!pidfd && !pagemap &&
	    GC_incremental_protection_needs() != GC_PROTECTS_NONE)
		return "mprotect";
	return "unknown";
}

int main(int argc, char **argv)
{
	long cycles = 20, buf_mib = 64, pages, i, c, bad = 0, faults = 0;
	long vma, vma_min = -1, vma_max = -1, vma_changes = 0, prev_vma = -1;
	long cleared = 0, moved = 0, absent = 0;
	struct bufstate st;
	char why[160] = "";
	size_t heap, prev_heap = 0;
	const char *expect = NULL, *source, *want;
	long page = sysconf(_SC_PAGESIZE);
	double t0, total, untimed = 0, t;
	char *buf;
	int opt, test = 0, fail = 0, forked = 0, status, pm;
	pid_t pid;

	while ((opt = getopt(argc, argv, "c:n:b:e:f")) != -1) {
		switch (opt) {
		case 'c': cycles = atol(optarg); break;
		case 'n': nlive = atol(optarg); break;
		case 'b': buf_mib = atol(optarg); break;
		case 'e': expect = optarg; break;
		case 'f': forked = 1; break;
		default:
			fprintf(stderr, "usage: %s [-c CYCLES] [-n LIVE] [-b MIB] [-e SOURCE] [-f]\n",
				argv[0]);
			return 2;
		}
	}

	/* A crash (a freed live object) must not lose what was printed */
	setvbuf(stdout, NULL, _IOLBF, 0);
	GC_set_handle_fork(1);
	GC_INIT();
	GC_enable_incremental();
	GC_set_on_collection_event(on_event);

	pages = buf_mib * 1024 * 1024 / page;
	buf = mmap(NULL, pages * page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		printf("Bail out! mmap: %s\n", strerror(errno));
		return 1;
	}
	madvise(buf, pages * page, MADV_NOHUGEPAGE);
	write_buf(buf, pages, page, 1);

	live = GC_MALLOC(nlive * sizeof(*live));
	for (i = 0; i < nlive; i++) {
		struct holder *h = GC_MALLOC(sizeof(*h));

		h->id = next_id++;
		h->canary = CANARY ^ h->id;
		h->child = new_child();
		live[i] = h;
	}
	GC_gcollect();

	/*
	 * -f: the cycles run in a child, on the heap it inherited: the
	 * collector must reopen its pidfd, the inherited one names us.
	 */
	if (forked) {
		fflush(stdout);
		pid = fork();
		if (pid < 0) {
			printf("Bail out! fork: %s\n", strerror(errno));
			return 1;
		}
		if (pid > 0) {
			if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
				return 1;
			return WEXITSTATUS(status);
		}
		GC_gcollect();	/* no parallel markers in the child yet */
		GC_start_mark_threads();
		/* Copy the buffer before counting faults in it */
		write_buf(buf, pages, page, 2);
	}
	source = want = dirty_source();

	/* The page frames the buffer starts on, for "moved" */
	pm = !buf_state(buf, pages, page, &st);

	printf("1..5\n");
	printf("# gcbench: source %s, %ld cycles, %ld live objects, %ld buffer pages%s\n",
	       source, cycles, nlive, pages, forked ? ", in a forked child" : "");
	stopped_total = stopped_max = 0;
	nstops = 0;
	t0 = now();
	for (c = 0; c < cycles; c++) {
		GC_word gc_no = GC_get_gc_no();
		long f0, f;

		/* Replace a tenth of the children: writes into old holders */
		for (i = 0; i < nlive / 10; i++)
			live[rnd() % nlive]->child = new_child();
		/* Garbage until a collection completed (bounded) */
		for (i = 0; GC_get_gc_no() == gc_no; i++) {
			garbage();
			if (i > 4000000)
				GC_gcollect();
		}
		bad += check_canaries();

		/* The read of /proc/self/pagemap is not part of the run's time */
		t = now();
		if (pm && !buf_state(buf, pages, page, &st)) {
			cleared += st.clean;
			moved += st.moved;
			absent += st.absent;
		}
		untimed += now() - t;
		f0 = minflt();
		write_buf(buf, pages, page, (char)c);
		f = minflt() - f0;
		faults += f;
		/* Where none is expected: what pagemap said before the pass */
		if (f && strcmp(source, "pagemap") && pm) {
			char state[120];

			snprintf(state, sizeof(state),
				 "cycle %ld: %ld, before it %ld pages absent, %ld not soft-dirty, %ld moved",
				 c, f, st.absent, st.clean, st.moved);
			printf("# faults writing the buffer in %s\n", state);
			if (!why[0])
				snprintf(why, sizeof(why), "; %s", state);
		}

		vma = count_maps();
		heap = GC_get_heap_size();
		if (vma_min < 0 || vma < vma_min)
			vma_min = vma;
		if (vma > vma_max)
			vma_max = vma;
		/* A new heap section may add a mapping; nothing else should */
		if (prev_vma >= 0 && vma != prev_vma && heap == prev_heap)
			vma_changes++;
		prev_vma = vma;
		prev_heap = heap;
	}
	total = now() - t0 - untimed;

	if (expect && strcmp(source, expect)) {
		printf("not ok %d source of dirty bits is %s, expected %s\n",
		       ++test, source, expect);
		fail = 1;
	} else {
		printf("ok %d source of dirty bits is %s\n", ++test, source);
	}
	printf("%sok %d canaries of %ld live objects intact over %ld cycles (%ld bad)\n",
	       bad ? "not " : "", ++test, 2 * nlive, cycles, bad);
	fail |= bad != 0;
	/* The expectations are those of the source the run must use */
	if (expect)
		want = expect;
	if (!strcmp(want, "pagemap")) {
		/* clear_refs write-protects the buffer at every collection */
		printf("%sok %d faults writing the non-GC buffer: %ld (at least pages x cycles = %ld)\n",
		       faults < pages * cycles ? "not " : "", ++test, faults,
		       pages * cycles);
		fail |= faults < pages * cycles;
	} else {
		printf("%sok %d faults writing the non-GC buffer: %ld (expected 0%s)\n",
		       faults ? "not " : "", ++test, faults, why);
		fail |= faults != 0;
	}
	/*
	 * Only clear_refs clears the soft-dirty bits of memory the collector
	 * does not watch: process_memwatch() is given the heap's ranges.
	 */
	if (!pm) {
		printf("ok %d buffer pages found not soft-dirty # SKIP no /proc/self/pagemap\n",
		       ++test);
	} else if (!strcmp(want, "pagemap")) {
		printf("%sok %d buffer pages found not soft-dirty before a pass: %ld (at least pages x cycles = %ld; %ld moved, %ld absent)\n",
		       cleared < pages * cycles ? "not " : "", ++test,
		       cleared, pages * cycles, moved, absent);
		fail |= cleared < pages * cycles;
	} else {
		printf("%sok %d buffer pages found not soft-dirty before a pass: %ld (expected 0; %ld moved, %ld absent)\n",
		       cleared ? "not " : "", ++test, cleared, moved, absent);
		fail |= cleared != 0;
	}
	if (!strcmp(want, "mprotect")) {
		/* mprotect splits the heap mappings: reported, not checked */
		printf("ok %d mappings %ld..%ld, %ld changes without heap growth # mprotect splits mappings, not checked\n",
		       ++test, vma_min, vma_max, vma_changes);
	} else {
		printf("%sok %d mappings %ld..%ld, %ld changes without heap growth\n",
		       vma_changes ? "not " : "", ++test, vma_min, vma_max,
		       vma_changes);
		fail |= vma_changes != 0;
	}
	printf("# result source=%s cycles=%ld pages=%ld faults=%ld collections=%lu stops=%lu stopped_ms=%.1f max_pause_ms=%.2f total_ms=%.1f vma_min=%ld vma_max=%ld heap_mib=%.1f bad=%ld cleared=%ld moved=%ld\n",
	       source, cycles, pages, faults, (unsigned long)GC_get_gc_no(),
	       nstops, stopped_total * 1e3, stopped_max * 1e3, total * 1e3,
	       vma_min, vma_max, GC_get_heap_size() / 1048576.0, bad,
	       cleared, moved);
	return fail;
}
