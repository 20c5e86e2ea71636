// SPDX-License-Identifier: GPL-2.0
/*
 * failnth: process_memwatch() when kernel allocations fail.
 *
 * A child owns the memory; this process is the monitor. Each round the
 * child writes a seeded set of pages, then the monitor makes one pass of
 * get-and-clear calls over the child's memory through its pidfd, with
 * small vec and max_pages, resuming at walk_end until the whole range is
 * done. In round N, the N-th failslab or fail_page_alloc site that the
 * first call of the pass reaches is made to fail (/proc/thread-self/
 * fail-nth), so every allocation the call makes fails once, in turn, until
 * a round's call reaches fewer than N sites.
 *
 * Scenarios: "fresh" maps the memory anew each round, so that the pass
 * moves VM_SOFTDIRTY into the entries and clears it; "ptes" writes into
 * memory that is already clean, so that only page table entries change;
 * "thp" faults in two THPs each round and stops inside them, so that they
 * are split.
 *
 * Rule, sound because the child's writes end before the pass starts and
 * nothing else runs in the child: every page written since the previous
 * complete pass (with "thp", every page) is reported by this pass. A page
 * that a failed call cleared without reporting would miss its round and
 * fail the rule.
 *
 * Also checked: a failing call fails with ENOMEM and leaves walk_end
 * untouched or at start (it changed nothing); every call makes progress; a pass in which
 * nothing failed leaves no page soft-dirty (it did clear). A failed THP
 * split may leave pages soft-dirty: counted as false positives, which the
 * documentation allows.
 *
 * Leaks are left to kmemleak, which the debug job scans afterwards.
 * Needs root, debugfs mounted at /sys/kernel/debug, and
 * CONFIG_FAULT_INJECTION, FAILSLAB, FAIL_PAGE_ALLOC and
 * FAULT_INJECTION_DEBUG_FS; skips otherwise.
 *
 * Usage: failnth [-n MAX_SITES] [-s SEED] [-v]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common.h"
#include "failinject.h"

#define PAGE		4096UL
#define PMD_SIZE	(2UL << 20)
#define LEN		(2 * PMD_SIZE)
#define NPAGES		(LEN / PAGE)
#define VEC_MAX		4
#define WALK_END_UNSET	1ULL	/* never a value the kernel writes */

enum scenario { SC_FRESH, SC_PTES, SC_THP, NR_SC };

static const char * const sc_names[NR_SC] = { "fresh", "ptes", "thp" };

enum child_op { CHILD_FRESH, CHILD_WRITE, CHILD_EXIT };

struct child_cmd {
	int op;
	int thp;
	uint64_t seed;
	uint64_t count;
};

static char *region;		/* same address in both processes */
static int cmd_pipe[2], ack_pipe[2];
static int verbose;

/* The pages a write command touches, computed alike on both sides */
static void written_pages(const struct child_cmd *c, bool *w)
{
	uint64_t s = c->seed;
	uint64_t i;

	memset(w, 0, NPAGES * sizeof(*w));
	for (i = 0; i < c->count; i++)
		w[rnd_below(&s, NPAGES)] = true;
}

/* ------------------------------------------------------------ child side */

static int map_fresh(bool thp)
{
	if (mmap(region, LEN, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		return -1;
	if (thp) {
		if (madvise(region, LEN, MADV_HUGEPAGE))
			return -1;
		memset(region, 1, LEN);
	}
	return 0;
}

static void child_loop(void)
{
	static bool w[NPAGES];
	struct child_cmd c;
	uint64_t i;
	char ok;

	while (read(cmd_pipe[0], &c, sizeof(c)) == sizeof(c)) {
		ok = 1;
		if (c.op == CHILD_EXIT)
			break;
		if (c.op == CHILD_FRESH && map_fresh(c.thp))
			ok = 0;
		if (c.op == CHILD_WRITE) {
			written_pages(&c, w);
			for (i = 0; i < NPAGES; i++)
				if (w[i])
					region[i * PAGE + (i % PAGE)]++;
		}
		if (write(ack_pipe[1], &ok, 1) != 1)
			break;
	}
	_exit(0);
}

static bool child_do(const struct child_cmd *c)
{
	char ok = 0;

	if (write(cmd_pipe[1], c, sizeof(*c)) != sizeof(*c) ||
	    read(ack_pipe[0], &ok, 1) != 1)
		return false;
	return ok;
}

/* --------------------------------------------------------------- monitor */

struct stats {
	unsigned long rounds, calls, injected, enomem, short_ok;
	unsigned long lost, false_pos, bad_errno, bad_walk_end, residual;
	unsigned int sites;
};

static struct page_region vec[VEC_MAX];

/*
 * One pass of get-and-clear calls over the child's memory; the first call
 * fails at its @nth allocation site (0: none). Marks the reported pages
 * in @rep. Return: whether a failure was injected, or -1 if the pass
 * went wrong (counted in @st).
 */
static int pass(int pidfd, unsigned int nth, uint64_t *s, bool *rep,
		struct stats *st)
{
	unsigned long addr = (unsigned long)region;
	unsigned long end = addr + LEN;
	bool first = true, injected = false;
	int guard = 0;

	memset(rep, 0, NPAGES * sizeof(*rep));
	while (addr < end) {
		struct memwatch_arg arg = {
			.start = addr,
			.end = end,
			.vec = (uintptr_t)vec,
			.vec_len = 1 + rnd_below(s, VEC_MAX),
			.max_pages = 1 + rnd_below(s, 24),
			.category_mask = SD,
			.return_mask = SD,
			.walk_end = WALK_END_UNSET,
		};
		unsigned long a;
		long n, i;
		int err;

		if (++guard > 100000) {
			printf("# no progress at %#lx\n", addr);
			return -1;
		}
		if (first && nth)
			set_fail_nth(nth);
		n = process_memwatch(pidfd, &arg, sizeof(arg),
				     MEMWATCH_CLEAR_SOFT_DIRTY);
		err = errno;
		if (first && nth) {
			injected = fail_nth_injected();
			set_fail_nth(0);
		}
		st->calls++;
		if (n < 0) {
			if (!(first && injected && err == ENOMEM)) {
				printf("# call at %#lx: %s%s\n", addr,
				       strerror(err), injected ?
				       " (allocation failed)" : "");
				st->bad_errno++;
				return -1;
			}
			st->enomem++;
			/* Failed before writing walk_end, or wrote start */
			if (arg.walk_end != addr &&
			    arg.walk_end != WALK_END_UNSET) {
				printf("# ENOMEM with walk_end %#llx, start %#lx\n",
				       (unsigned long long)arg.walk_end, addr);
				st->bad_walk_end++;
				return -1;
			}
			first = false;
			continue;
		}
		if (first && injected)
			st->short_ok++;
		first = false;
		if (arg.walk_end <= addr || arg.walk_end > end) {
			printf("# walk_end %#llx after a call at %#lx\n",
			       (unsigned long long)arg.walk_end, addr);
			st->bad_walk_end++;
			return -1;
		}
		for (i = 0; i < n; i++)
			for (a = vec[i].start; a < vec[i].end; a += PAGE)
				if (a >= addr && a < arg.walk_end)
					rep[(a - (unsigned long)region) / PAGE] = true;
		addr = arg.walk_end;
	}
	return injected;
}

/* Pages still soft-dirty after a pass, by a report-only call */
static long residual(int pidfd)
{
	static struct page_region all[NPAGES];
	struct memwatch_arg arg = {
		.start = (uintptr_t)region,
		.end = (uintptr_t)region + LEN,
		.vec = (uintptr_t)all,
		.vec_len = NPAGES,
		.category_mask = SD,
		.return_mask = SD,
	};
	long n, i, pages = 0;

	n = process_memwatch(pidfd, &arg, sizeof(arg), 0);
	if (n < 0)
		return -1;
	for (i = 0; i < n; i++)
		pages += (all[i].end - all[i].start) / PAGE;
	return pages;
}

static void run_scenario(enum scenario sc, int pidfd, unsigned int max_sites,
			 uint64_t seed)
{
	static bool w[NPAGES], rep[NPAGES];
	uint64_t s = seed ^ (sc + 1) * 0x9E3779B97F4A7C15ULL;
	struct stats st = { 0 };
	unsigned int nth;
	bool ok = true;
	int inj;

	/* nth 0 first: a clean pass, so that later rounds start clean */
	for (nth = 0; nth <= max_sites; nth++) {
		struct child_cmd c = {
			.op = CHILD_WRITE,
			.seed = rnd_next(&s),
			.count = 1 + rnd_below(&s, NPAGES / 4),
		};
		long res, i;

		if (sc != SC_PTES || nth == 0) {
			struct child_cmd f = {
				.op = CHILD_FRESH,
				.thp = sc == SC_THP,
			};

			if (!child_do(&f)) {
				printf("# %s: the child cannot map\n",
				       sc_names[sc]);
				ok = false;
				break;
			}
		}
		if (!child_do(&c)) {
			ok = false;
			break;
		}
		written_pages(&c, w);
		/*
		 * A THP round writes every page. The holes of a new mapping
		 * hold no write: the first clear that reaches it moves
		 * VM_SOFTDIRTY into the entries, and the holes it does not
		 * report read clean from then on (soft-dirty.rst, "Mappings
		 * marked soft-dirty as a whole"), so only written pages must
		 * be reported.
		 */
		if (sc == SC_THP)
			memset(w, 1, sizeof(w));

		st.rounds++;
		inj = pass(pidfd, nth, &s, rep, &st);
		if (inj < 0) {
			ok = false;
			break;
		}
		st.injected += inj;
		for (i = 0; i < (long)NPAGES; i++) {
			if (w[i] && !rep[i]) {
				if (st.lost++ < 8)
					printf("# %s: nth %u: page %ld written, not reported\n",
					       sc_names[sc], nth, i);
			}
		}
		res = residual(pidfd);
		if (res < 0) {
			ok = false;
			break;
		}
		st.false_pos += res;
		if (res && !inj) {
			printf("# %s: nth %u: %ld pages still soft-dirty after a clean pass\n",
			       sc_names[sc], nth, res);
			st.residual++;
		}
		/* Start the next round clean, false positives or not */
		if (res && pass(pidfd, 0, &s, rep, &st) < 0) {
			ok = false;
			break;
		}
		if (verbose)
			printf("# %s: nth %u: injected %d, residual %ld\n",
			       sc_names[sc], nth, inj, res);
		if (nth && !inj) {
			st.sites = nth - 1;
			break;
		}
	}
	if (ok && !st.sites && nth > max_sites) {
		printf("# %s: more than %u allocation sites\n", sc_names[sc],
		       max_sites);
		st.sites = max_sites;
	}
	printf("# %s: %lu rounds, %lu calls, %u allocation sites, %lu failures injected: %lu ENOMEM, %lu short or full results; %lu false positives\n",
	       sc_names[sc], st.rounds, st.calls, st.sites, st.injected,
	       st.enomem, st.short_ok, st.false_pos);
	tap_result(ok && st.sites, "failnth: %s: every allocation site fails in turn",
		   sc_names[sc]);
	tap_result(ok && !st.bad_errno && !st.bad_walk_end,
		   "failnth: %s: failures are ENOMEM before any change",
		   sc_names[sc]);
	tap_result(ok && !st.residual,
		   "failnth: %s: a pass without failures clears what it reports",
		   sc_names[sc]);
	tap_result(ok && !st.lost, "failnth: %s: lost=%lu", sc_names[sc],
		   st.lost);
}

int main(int argc, char **argv)
{
	unsigned int max_sites = 64;
	uint64_t seed = 1;
	const char *why;
	int opt, pidfd, sc;
	pid_t pid;

	while ((opt = getopt(argc, argv, "n:s:v")) != -1) {
		switch (opt) {
		case 'n':
			max_sites = strtoul(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			fprintf(stderr, "usage: %s [-n MAX_SITES] [-s SEED] [-v]\n",
				argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	tap_plan(4 * NR_SC);
	printf("# seed %llu, at most %u sites a call\n",
	       (unsigned long long)seed, max_sites);

	why = !memwatch_supported() ? "no process_memwatch()" :
					setup_injection();
	if (why) {
		for (sc = 0; sc < 4 * NR_SC; sc++)
			tap_skip("failnth: %s", why);
		return tap_exit();
	}

	/* A reservation between PROT_NONE guards: the child's VMAs never merge */
	region = mmap(NULL, LEN + 2 * PMD_SIZE, PROT_NONE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED || pipe(cmd_pipe) || pipe(ack_pipe))
		return KSFT_FAIL;
	region = (char *)(((uintptr_t)region + PMD_SIZE) & ~(PMD_SIZE - 1));

	pid = fork();
	if (pid < 0)
		return KSFT_FAIL;
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		child_loop();
	}
	pidfd = sys_pidfd_open(pid, 0);
	if (pidfd < 0)
		return KSFT_FAIL;
	/* No page fault of ours may take the failure meant for the call */
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		printf("# mlockall: %s\n", strerror(errno));

	for (sc = 0; sc < NR_SC; sc++)
		run_scenario(sc, pidfd, max_sites, seed);

	{
		struct child_cmd c = { .op = CHILD_EXIT };

		if (write(cmd_pipe[1], &c, sizeof(c)) != sizeof(c))
			kill(pid, SIGKILL);
	}
	waitpid(pid, NULL, 0);
	return tap_exit();
}
