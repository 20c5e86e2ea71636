// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz: seeded, bounded argument fuzzer for process_memwatch().
 *
 * Each call draws a pidfd (self, a thread of self, a live child that
 * churns its memory, an exited child, kthreadd, init, non-pidfd fds,
 * -1, a closed or huge fd number), a range (zero, unaligned, wrapping,
 * kernel addresses, beyond the task size, huge), flags (known and
 * unknown bits), a struct size (below, at and above VER0, zero and
 * non-zero tails, above a page), masks with unknown bits, and an arg and
 * vec that are valid, NULL, unmapped, read-only, kernel addresses, inside
 * the range being scanned, overlapping a guard page, or unmapped by
 * another thread during the call.  Half of the clearing calls use a
 * filter a user would (CRIU's inverted FILE | PFNZERO, SOFT_DIRTY with
 * SWAPPED, PRESENT, FILE or HUGE, anyof combinations, clean pages, a
 * mask that matches nothing), with random inversions on top; the others
 * draw each mask at random.  The arena the self-addressed calls walk has
 * private anonymous memory with THPs, read-only, PROT_NONE and unmapped
 * parts, shared memory (MAP_SHARED | MAP_ANONYMOUS and a memfd) and a
 * private 2 MiB hugetlb page (when one can be had).  Masks with known
 * bits only never change the predicted errno: the check order puts them
 * before the pidfd, and only unknown bits fail there.
 *
 * Properties (one TAP line each):
 * 1. every failure has an errno of the documented set;
 * 2. when one of the checks done before the pidfd lookup must fail, or
 *    the pidfd is bad, the errno is the one the SPEC's check order gives;
 * 3. successful calls return at most vec_len regions, walk_end within
 *    [start, end rounded up], and sorted, non-empty regions inside
 *    [start, walk_end) whose categories are within return_mask;
 * 4. no field of *arg but walk_end is ever written;
 * 5. no call hangs (a 60 s alarm per call, and a watchdog thread for a
 *    call that loops in the kernel and never returns to take the alarm;
 *    either prints the call; the worst call time is printed).
 * A histogram of the results is printed.  Kernel reports are caught by
 * checks/kernel-log on the console log.
 *
 * Usage: fuzz [-n CALLS] [-s SEED] [-v]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "common.h"

#define PAGE		4096UL
#define ARENA_SIZE	(16UL << 20)
#define HPAGE		(2UL << 20)
#define SHM_HALF	(512UL << 10)	/* memfd, then shared anonymous */
#define VEC_ENTRIES	64
#define KNOWN_CATS	0xffULL
#define KNOWN_FLAGS	(MEMWATCH_CLEAR_SOFT_DIRTY | MEMWATCH_WP_MATCHING | \
			 MEMWATCH_CHECK_WPASYNC)
#define TOP47		(1ULL << 47)	/* x86-64, 4-level page tables */
#define TOP56		(1ULL << 56)	/* 5-level page tables (LA57) */
#define UNKNOWN		(-1)		/* no errno predicted */

enum pidfd_kind {
	PK_SELF, PK_THREAD, PK_CHILD, PK_EXITED, PK_KTHREAD, PK_INIT,
	PK_DEVNULL, PK_PIPE, PK_MINUS1, PK_CLOSED, PK_HUGE, NR_PK
};

static const char * const pk_names[NR_PK] = {
	"self", "thread", "child", "exited", "kthread", "init",
	"devnull", "pipe", "-1", "closed", "huge",
};

static int pidfds[NR_PK];
static char *arena, *argpage, *ropage, *vecpage, *victim;
static uint64_t s;
static int verbose;
static uint64_t user_top;	/* TASK_SIZE_MAX + PAGE: TOP47 or TOP56 */
static volatile const char *cur_desc = "";
static atomic_int stop_victim;
static bool have_hugetlb;

/* results: index 0 is success, else errno */
static uint64_t hist[4096];
static uint64_t bad_errno, order_checked, order_bad, success_checked,
		success_bad, arg_written, worst_ns, filtered;

static bool documented(int e)
{
	switch (e) {
	case EINVAL: case E2BIG: case EFAULT: case EBADF: case ESRCH:
	case EPERM: case ENOMEM: case EINTR: case EOPNOTSUPP:
		return true;
	}
	return false;
}

/* The call being made, for the watchdog */
static char call_desc[512];
static atomic_ullong call_t0;

static void hung(void)
{
	static const char msg[] = "not ok 5 fuzz: a call hung for 60 s: ";

	if (write(1, msg, sizeof(msg) - 1) < 0 ||
	    write(1, call_desc, strlen(call_desc)) < 0)
		_exit(1);
	_exit(1);
}

static void on_alarm(int sig)
{
	hung();
}

/*
 * A call that loops in the kernel checking only for fatal signals never
 * returns to take SIGALRM: from another thread, _exit() kills it.
 */
static void *watchdog_thread(void *unused)
{
	for (;;) {
		uint64_t t0 = atomic_load(&call_t0);

		if (t0 && now_ns() - t0 > 60000000000ULL)
			hung();
		sleep(1);
	}
	return NULL;
}

/* Maps and unmaps the "victim" pages, used as a vec during calls */
static void *victim_thread(void *unused)
{
	while (!atomic_load(&stop_victim)) {
		munmap(victim, 4 * PAGE);
		usleep(50);
		if (mmap(victim, 4 * PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
		    MAP_FAILED)
			abort();
		usleep(50);
	}
	return NULL;
}

static void *idle_thread(void *arg)
{
	*(pid_t *)arg = syscall(SYS_gettid);
	for (;;)
		pause();
	return NULL;
}

/* A child that keeps changing its copy of the arena */
static void churn_child(void)
{
	uint64_t cs = s ^ 0x1234;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* its own copy, all read-write (the parent's has RO and NONE parts) */
	if (mmap(arena, ARENA_SIZE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		_exit(1);
	memset(arena, 1, ARENA_SIZE / 2);
	for (;;) {
		char *p = arena + rnd_below(&cs, ARENA_SIZE / PAGE) * PAGE;
		size_t len = (1 + rnd_below(&cs, 64)) * PAGE;

		if (p + len > arena + ARENA_SIZE)
			len = arena + ARENA_SIZE - p;
		switch (rnd_below(&cs, 4)) {
		case 0:
			madvise(p, len, MADV_DONTNEED);
			break;
		case 1:
			mprotect(p, len, PROT_READ);
			mprotect(p, len, PROT_READ | PROT_WRITE);
			break;
		case 2:
			mmap(p, len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			break;
		default:
			memset(p, 1, len);
			break;
		}
		usleep(100);
	}
}

static int setup(void)
{
	pthread_t t;
	static pid_t tid;
	int p[2], fd;
	pid_t pid;
	char *g, *shm;

	/* 2 MiB aligned, for its THPs and its hugetlb page */
	arena = mmap(NULL, ARENA_SIZE + HPAGE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (arena != MAP_FAILED)
		arena = (char *)(((uintptr_t)arena + HPAGE - 1) & ~(HPAGE - 1));
	/*
	 * arg page + guard, read-only page + guard, vec page + guard,
	 * 4 victim pages, guard
	 */
	g = mmap(NULL, 11 * PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (arena == MAP_FAILED || g == MAP_FAILED)
		return -1;
	argpage = g;
	ropage = g + 2 * PAGE;
	vecpage = g + 4 * PAGE;
	victim = g + 6 * PAGE;
	munmap(g + PAGE, PAGE);
	munmap(g + 5 * PAGE, PAGE);
	mprotect(g + 10 * PAGE, PAGE, PROT_NONE);
	/* the read-only arg: a valid struct, walk_end cannot be written */
	((struct memwatch_arg *)ropage)->start = (uintptr_t)arena;
	((struct memwatch_arg *)ropage)->end = (uintptr_t)arena + ARENA_SIZE;
	mprotect(ropage, PAGE, PROT_READ);
	mprotect(ropage + PAGE, PAGE, PROT_NONE);

	/* populate: some pages, a THP, a read-only and a PROT_NONE part */
	madvise(arena, 4UL << 20, MADV_HUGEPAGE);
	memset(arena, 1, 4UL << 20);
	for (fd = 0; fd < (int)(ARENA_SIZE / PAGE); fd += 3)
		arena[fd * PAGE] = 1;
	mprotect(arena + (8UL << 20), 1UL << 20, PROT_READ);
	mprotect(arena + (10UL << 20), 1UL << 20, PROT_NONE);
	munmap(arena + (12UL << 20), 1UL << 20);
	/*
	 * Shared memory at 13 MiB (a memfd, then MAP_SHARED | MAP_ANONYMOUS),
	 * some pages read, some written; a private hugetlb page at 14 MiB.
	 */
	shm = arena + (13UL << 20);
	fd = memfd_create("fuzz-shm", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, SHM_HALF) ||
	    mmap(shm, SHM_HALF, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED ||
	    mmap(shm + SHM_HALF, SHM_HALF, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		return -1;
	close(fd);
	for (fd = 0; fd < (int)(2 * SHM_HALF / PAGE); fd += 2)
		shm[fd * PAGE] = 1;
	for (fd = 1; fd < (int)(2 * SHM_HALF / PAGE); fd += 4)
		(void)*(volatile char *)&shm[fd * PAGE];
	if (mmap(arena + (14UL << 20), HPAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_FIXED, -1, 0) ==
	    MAP_FAILED) {
		printf("# no hugetlb page in the arena: %s\n", strerror(errno));
	} else {
		arena[14UL << 20] = 1;	/* reserved at mmap() */
		have_hugetlb = true;
	}

	pidfds[PK_SELF] = sys_pidfd_open(getpid(), 0);
	if (pthread_create(&t, NULL, idle_thread, &tid))
		return -1;
	while (!__atomic_load_n(&tid, __ATOMIC_ACQUIRE))
		usleep(100);
	pidfds[PK_THREAD] = sys_pidfd_open(tid, PIDFD_THREAD);
	pid = fork();
	if (pid == 0)
		churn_child();
	pidfds[PK_CHILD] = sys_pidfd_open(pid, 0);
	pid = fork();
	if (pid == 0)
		_exit(0);
	pidfds[PK_EXITED] = sys_pidfd_open(pid, 0);
	waitpid(pid, NULL, 0);
	pidfds[PK_KTHREAD] = sys_pidfd_open(2, 0);
	pidfds[PK_INIT] = sys_pidfd_open(1, 0);
	pidfds[PK_DEVNULL] = open("/dev/null", O_RDONLY);
	if (pipe(p))
		return -1;
	pidfds[PK_PIPE] = p[0];
	pidfds[PK_MINUS1] = -1;
	pidfds[PK_CLOSED] = p[1];
	close(p[1]);
	pidfds[PK_HUGE] = 1 << 20;
	for (fd = 0; fd < NR_PK; fd++)
		if (pidfds[fd] == -1 && fd != PK_MINUS1) {
			printf("# cannot open pidfd %s: %s\n", pk_names[fd],
			       strerror(errno));
			return -1;
		}
	return pthread_create(&t, NULL, victim_thread, NULL);
}

static uint64_t pick_addr(void)
{
	switch (rnd_below(&s, 12)) {
	case 0: return 0;
	case 1: return (uintptr_t)arena + rnd_below(&s, ARENA_SIZE);
	case 2: return (rnd_below(&s, 2) ? TOP47 : TOP56) - PAGE;
	case 3: return rnd_below(&s, 2) ? TOP47 : TOP56;
	case 4: return 0xffff888000000000ULL;
	case 5: return ~0ULL & ~(PAGE - 1);
	case 6: return ~0ULL;
	case 7: return rnd_next(&s);
	case 8: return rnd_next(&s) & (TOP47 - 1) & ~(PAGE - 1);
	default:
		return (uintptr_t)arena + rnd_below(&s, ARENA_SIZE / PAGE) * PAGE;
	}
}

static uint64_t pick_end(uint64_t start)
{
	switch (rnd_below(&s, 12)) {
	case 0: return start;
	case 1: return start - PAGE;
	case 2: return ~0ULL;
	case 3: return ~0ULL & ~(PAGE - 1);
	case 4: return rnd_below(&s, 2) ? TOP47 : TOP56;
	case 5: return (rnd_below(&s, 2) ? TOP47 : TOP56) + PAGE;
	case 6: return 1ULL << 56;
	case 7: return start + rnd_below(&s, 1ULL << 40);
	case 8: return rnd_next(&s);
	case 9: return start + 1 + rnd_below(&s, 3 * PAGE);
	default: return start + rnd_below(&s, ARENA_SIZE + PAGE);
	}
}

/* The filters users pass (see churn.c), before random inversions */
static const uint64_t filters[][3] = {	/* inverted, mask, anyof */
	{ 0, SD, 0 },
	{ PAGE_IS_FILE | PAGE_IS_PFNZERO, PAGE_IS_FILE | PAGE_IS_PFNZERO, 0 },
	{ PAGE_IS_FILE | PAGE_IS_PFNZERO, PAGE_IS_FILE | PAGE_IS_PFNZERO,
	  PAGE_IS_PRESENT | PAGE_IS_SWAPPED },
	{ 0, SD | PAGE_IS_SWAPPED, 0 },
	{ 0, SD | PAGE_IS_PRESENT, 0 },
	{ PAGE_IS_PRESENT, SD | PAGE_IS_PRESENT, 0 },
	{ 0, SD | PAGE_IS_FILE, 0 },
	{ PAGE_IS_FILE, SD | PAGE_IS_FILE, 0 },
	{ 0, SD | PAGE_IS_HUGE, 0 },
	{ PAGE_IS_HUGE, SD | PAGE_IS_HUGE, 0 },
	{ 0, SD, PAGE_IS_SWAPPED | PAGE_IS_PFNZERO },
	{ 0, 0, PAGE_IS_PRESENT | PAGE_IS_SWAPPED },
	{ SD, SD, 0 },
	{ 0, PAGE_IS_PRESENT | PAGE_IS_SWAPPED, 0 },
};

#define NR_FILTERS	(sizeof(filters) / sizeof(filters[0]))

/* A user's filter, sometimes with random known bits inverted */
static void pick_filter(struct memwatch_arg *a)
{
	const uint64_t *f = filters[rnd_below(&s, NR_FILTERS)];

	a->category_inverted = f[0];
	a->category_mask = f[1];
	a->category_anyof_mask = f[2];
	if (!rnd_below(&s, 4))
		a->category_inverted ^= rnd_next(&s) & KNOWN_CATS;
}

static uint64_t pick_mask(void)
{
	switch (rnd_below(&s, 8)) {
	case 0: case 1: case 2: return 0;
	case 3: return rnd_below(&s, 2) ? 1ULL << (8 + rnd_below(&s, 56)) :
			rnd_next(&s);	/* unknown bits */
	default: return rnd_next(&s) & KNOWN_CATS;
	}
}

static unsigned int pick_flags(void)
{
	switch (rnd_below(&s, 10)) {
	case 0: return 0;
	case 1: return 1U << (3 + rnd_below(&s, 29));	/* unknown */
	case 2: return rnd_next(&s);
	case 3: return MEMWATCH_CHECK_WPASYNC;
	default: return rnd_below(&s, 4);	/* CLEAR and/or WP */
	}
}

enum arg_kind { AK_START, AK_FIT, AK_OVER, AK_RO, AK_NULL, AK_KERNEL,
		AK_UNMAPPED };

int main(int argc, char **argv)
{
	uint64_t ncalls = 20000, i, seed = time(NULL);
	int opt, e;
	struct sigaction sa = { .sa_handler = on_alarm };

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "n:s:v")) != -1) {
		switch (opt) {
		case 'n': ncalls = strtoull(optarg, NULL, 0); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'v': verbose = 1; break;
		default:
			fprintf(stderr, "usage: %s [-n CALLS] [-s SEED] [-v]\n",
				argv[0]);
			return 2;
		}
	}
	s = seed ? seed : 1;
	tap_plan(5);
	printf("# fuzz: seed %llu, %llu calls\n", (unsigned long long)seed,
	       (unsigned long long)ncalls);
	if (!memwatch_supported()) {
		for (i = 0; i < 5; i++)
			tap_skip("fuzz: process_memwatch not supported");
		return tap_exit();
	}
	if (setup()) {
		for (i = 0; i < 5; i++)
			tap_result(false, "fuzz: setup failed");
		return tap_exit();
	}
	sigaction(SIGALRM, &sa, NULL);
	{
		pthread_t wd;

		if (pthread_create(&wd, NULL, watchdog_thread, NULL)) {
			for (i = 0; i < 5; i++)
				tap_result(false, "fuzz: no watchdog");
			return tap_exit();
		}
	}
	/* the task size: 56 bits when a hint above 47 bits can be mapped */
	user_top = TOP47;
	{
		void *hi = mmap((void *)(1ULL << 50), PAGE, PROT_READ,
				MAP_PRIVATE | MAP_ANONYMOUS |
				MAP_FIXED_NOREPLACE, -1, 0);

		if (hi != MAP_FAILED) {
			user_top = TOP56;
			munmap(hi, PAGE);
		}
	}
	printf("# user address space: %d bits, %s hugetlb page\n",
	       user_top == TOP56 ? 56 : 47, have_hugetlb ? "a" : "no");

	for (i = 0; i < ncalls; i++) {
		struct memwatch_arg a = { 0 }, before;
		enum pidfd_kind pk = rnd_below(&s, NR_PK);
		enum arg_kind ak;
		unsigned int flags = pick_flags();
		size_t size, fit;
		char *argp = NULL;
		bool tail_nonzero = false, arg_readable = true, vec_stable = false;
		int predicted = 0;
		uint64_t t0, t;
		long ret;

		/* a mostly self-addressed mix: self, child and thread matter */
		if (rnd_below(&s, 2))
			pk = rnd_below(&s, 3);

		switch (rnd_below(&s, 12)) {
		case 0: size = 0; break;
		case 1: size = rnd_below(&s, MEMWATCH_ARG_SIZE_VER0); break;
		case 2: size = 88; break;
		case 3: size = PAGE; break;
		case 4: size = PAGE + 1 + rnd_below(&s, 2); break;
		case 5: size = rnd_next(&s); break;
		case 6: size = MEMWATCH_ARG_SIZE_VER0 + 8 * rnd_below(&s, 8); break;
		default: size = MEMWATCH_ARG_SIZE_VER0; break;
		}

		a.start = pick_addr();
		if (rnd_below(&s, 8) == 0)
			a.start |= 1 + rnd_below(&s, PAGE - 1);	/* unaligned */
		a.end = pick_end(a.start);
		a.walk_end = 0xdeadbeef;
		a.max_pages = rnd_below(&s, 3) ? 0 : rnd_below(&s, 3) ?
			      1 + rnd_below(&s, 100) : rnd_next(&s);
		if ((flags & MEMWATCH_CLEAR_SOFT_DIRTY) && rnd_below(&s, 2)) {
			pick_filter(&a);
			filtered++;
		} else {
			a.category_inverted = pick_mask();
			a.category_mask = pick_mask();
			a.category_anyof_mask = pick_mask();
		}
		a.return_mask = rnd_below(&s, 4) ? KNOWN_CATS : pick_mask();

		switch (rnd_below(&s, 10)) {
		case 0:
			a.vec = 0;
			a.vec_len = rnd_below(&s, 3) ? 0 : rnd_next(&s);
			break;
		case 1:	/* unmapped (guard page) */
			a.vec = (uintptr_t)vecpage + PAGE;
			a.vec_len = 1 + rnd_below(&s, 8);
			break;
		case 2:	/* read-only */
			a.vec = (uintptr_t)ropage + 128;
			a.vec_len = 1 + rnd_below(&s, 8);
			break;
		case 3:	/* inside the range being scanned */
			a.vec = (uintptr_t)arena + rnd_below(&s, 4UL << 20);
			a.vec &= ~7ULL;
			a.vec_len = 1 + rnd_below(&s, 16);
			vec_stable = true;
			break;
		case 4:	/* unmapped by another thread during the call */
			a.vec = (uintptr_t)victim + rnd_below(&s, 2 * PAGE);
			a.vec_len = 1 + rnd_below(&s, 300);
			break;
		case 5:	/* kernel address, or a length beyond user space */
			if (rnd_below(&s, 2)) {
				a.vec = 0xffffffff81000000ULL;
				a.vec_len = 1 + rnd_below(&s, 8);
			} else {
				a.vec = (uintptr_t)vecpage;
				a.vec_len = 1ULL << (53 + rnd_below(&s, 11));
			}
			break;
		case 6:	/* runs into the guard page when enough is found */
			a.vec = (uintptr_t)vecpage + PAGE -
				sizeof(struct page_region) * 4;
			a.vec_len = 4 + rnd_below(&s, 64);
			break;
		default:
			a.vec = (uintptr_t)vecpage + PAGE -
				sizeof(struct page_region) * VEC_ENTRIES;
			a.vec_len = 1 + rnd_below(&s, VEC_ENTRIES);
			vec_stable = true;
			break;
		}

		/*
		 * Place the struct: at the start of a page followed by a
		 * guard page, ending exactly at the guard, running 8 bytes
		 * into it, read-only, NULL, a kernel address or unmapped.
		 * What lies beyond VER0 is the tail, zero unless chosen.
		 */
		ak = rnd_below(&s, 4) ? AK_START : rnd_below(&s, 7);
		fit = size >= sizeof(a) && size <= PAGE ? size : sizeof(a);
		switch (ak) {
		case AK_FIT:
			argp = argpage + PAGE - fit;
			break;
		case AK_OVER:
			argp = argpage + PAGE - fit + 8;
			arg_readable = false;
			break;
		case AK_RO:
			argp = ropage;
			memcpy(&a, ropage, sizeof(a));
			break;
		case AK_NULL:
			argp = NULL;
			arg_readable = false;
			break;
		case AK_KERNEL:
			argp = (char *)0xffffffff81000000UL;
			arg_readable = false;
			break;
		case AK_UNMAPPED:
			argp = argpage + PAGE;
			arg_readable = false;
			break;
		default:
			argp = argpage;
			break;
		}
		if (argp && argp >= argpage && argp < argpage + PAGE) {
			size_t avail = argpage + PAGE - argp;

			memset(argp, 0, avail);
			memcpy(argp, &a, avail < sizeof(a) ? avail : sizeof(a));
			if (arg_readable && size > sizeof(a) && size <= PAGE &&
			    rnd_below(&s, 2)) {
				argp[sizeof(a) + rnd_below(&s, size - sizeof(a))] = 1;
				tail_nonzero = true;
			}
			if (arg_readable)
				memcpy(&before, argp, sizeof(before));
		}

		/* the errno the SPEC's check order gives, if one is certain */
		if (flags & ~KNOWN_FLAGS)
			predicted = EINVAL;
		else if (size < MEMWATCH_ARG_SIZE_VER0)
			predicted = EINVAL;
		else if (size > PAGE)
			predicted = E2BIG;
		else if (!arg_readable)
			predicted = EFAULT;
		else if (tail_nonzero)
			predicted = E2BIG;
		else {
			struct memwatch_arg *p = (struct memwatch_arg *)argp;
			uint64_t masks = p->category_inverted | p->category_mask |
					 p->category_anyof_mask | p->return_mask;
			uint64_t vend = p->vec + p->vec_len *
					sizeof(struct page_region);

			if (masks & ~KNOWN_CATS)
				predicted = EINVAL;
			else if (p->start & (PAGE - 1))
				predicted = EINVAL;
			else if (p->end < p->start)
				predicted = EINVAL;
			else if (p->end > (~0ULL & ~(PAGE - 1)))
				predicted = EFAULT;
			else if (!p->vec && p->vec_len)
				predicted = EINVAL;
			else if (p->vec_len && (p->vec >= user_top ||
				 p->vec_len >= (1ULL << 52) || vend > user_top))
				predicted = EFAULT;
			else if (pk >= PK_DEVNULL)
				predicted = EBADF;
			else if (pk == PK_EXITED || pk == PK_KTHREAD)
				predicted = ESRCH;
			else if (argp == ropage)
				predicted = EFAULT;	/* walk_end not writable */
			else if (p->end > user_top - PAGE)
				predicted = EFAULT;	/* beyond the task size */
			else
				predicted = UNKNOWN;
		}

		cur_desc = pk_names[pk];
		snprintf(call_desc, sizeof(call_desc), "call %llu: pidfd %s "
			 "flags %#x size %zu arg %p start %#llx end %#llx "
			 "vec %#llx len %#llx max_pages %#llx inverted %#llx "
			 "mask %#llx anyof %#llx return %#llx (arena %p)\n",
			 (unsigned long long)i, pk_names[pk], flags, size,
			 argp, a.start, a.end, a.vec, a.vec_len, a.max_pages,
			 a.category_inverted, a.category_mask,
			 a.category_anyof_mask, a.return_mask, arena);
		if (verbose)
			printf("# %s", call_desc);
		alarm(60);
		t0 = now_ns();
		atomic_store(&call_t0, t0);
		ret = process_memwatch(pidfds[pk], (struct memwatch_arg *)argp,
				       size, flags);
		e = ret < 0 ? errno : 0;
		t = now_ns() - t0;
		atomic_store(&call_t0, 0);
		alarm(0);
		if (t > worst_ns)
			worst_ns = t;

		hist[e < 4096 ? e : 4095]++;
		if (ret < 0 && !documented(e)) {
			if (bad_errno++ < 10)
				printf("# undocumented errno %d (%s): pidfd %s flags "
				       "%#x size %zu start %#llx end %#llx\n", e,
				       strerror(e), pk_names[pk], flags, size,
				       a.start, a.end);
		}
		if (predicted > 0) {
			order_checked++;
			if (e != predicted && order_bad++ < 10)
				printf("# expected %s, got %s: pidfd %s flags %#x "
				       "size %zu arg kind %d start %#llx end %#llx "
				       "vec %#llx len %#llx\n", strerror(predicted),
				       e ? strerror(e) : "success", pk_names[pk],
				       flags, size, ak, a.start, a.end, a.vec,
				       a.vec_len);
		}
		if (ret >= 0 && argp != ropage && arg_readable) {
			struct memwatch_arg *p = (struct memwatch_arg *)argp;
			uint64_t rend = (p->end + PAGE - 1) & ~(PAGE - 1);
			struct page_region *v = (struct page_region *)p->vec;
			bool bad = (uint64_t)ret > p->vec_len ||
				   p->walk_end < p->start || p->walk_end > rend;
			long k;

			success_checked++;
			before.walk_end = p->walk_end;
			if (memcmp(&before, p, sizeof(before)) && arg_written++ < 10)
				printf("# a field other than walk_end changed\n");
			for (k = 0; !bad && vec_stable && k < ret; k++)
				bad = v[k].start >= v[k].end ||
				      v[k].start < p->start ||
				      v[k].end > p->walk_end ||
				      (k && v[k].start < v[k - 1].end) ||
				      (v[k].categories & ~p->return_mask);
			if (bad && success_bad++ < 10)
				printf("# inconsistent success: ret %ld start %#llx "
				       "end %#llx walk_end %#llx vec_len %llu\n",
				       ret, p->start, p->end, p->walk_end,
				       p->vec_len);
		}
	}
	atomic_store(&stop_victim, 1);

	printf("# results:");
	for (e = 0; e < 4096; e++)
		if (hist[e])
			printf(" %s=%llu", e ? strerrorname_np(e) : "success",
			       (unsigned long long)hist[e]);
	printf("\n# clearing calls with a user's filter: %llu\n",
	       (unsigned long long)filtered);
	printf("# worst call %.3f ms\n", worst_ns / 1e6);
	tap_result(!bad_errno, "fuzz: %llu calls, every errno documented "
		   "(%llu undocumented)", (unsigned long long)ncalls,
		   (unsigned long long)bad_errno);
	tap_result(!order_bad, "fuzz: errno follows the check order "
		   "(%llu predicted, %llu differ)",
		   (unsigned long long)order_checked,
		   (unsigned long long)order_bad);
	tap_result(!success_bad, "fuzz: %llu successful calls consistent",
		   (unsigned long long)success_checked);
	tap_result(!arg_written, "fuzz: only walk_end written in *arg");
	tap_result(true, "fuzz: no call hung (worst %.3f ms)", worst_ns / 1e6);
	return tap_exit();
}
