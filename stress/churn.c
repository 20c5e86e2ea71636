// SPDX-License-Identifier: GPL-2.0
/*
 * churn: process_memwatch() must not lose a write while the target's
 * address space churns, whatever masks the clearing calls use.
 *
 * A target process (forked child) maps three kinds of slots in one
 * window: private anonymous memory (with THPs), shared memory (a
 * MAP_SHARED | MAP_ANONYMOUS mapping or a mapped memfd, drawn at each
 * fresh mapping) and private 2 MiB hugetlb (MAP_PRIVATE | MAP_HUGETLB;
 * left out, with the reason printed, when no hugetlb page can be had).
 * Writer threads store unique sequence numbers into random pages of every
 * kind (from user space and through pread(2), a kernel write) and read
 * others (read faults map pages clean); one burst in 256 goes to a
 * hugetlb page, else each huge page, one soft-dirty unit for 512 small
 * pages, would be written again within milliseconds of every clear and a
 * lost move could never be seen.  Churn threads munmap and re-mmap,
 * mremap(MREMAP_MAYMOVE | MREMAP_FIXED) between slots of the same kind
 * (whole PMD-aligned 2 MiB moves and small unaligned ones; hugetlb moves
 * one or two whole huge pages), mprotect RO and back, discard
 * (MADV_DONTNEED, MADV_REMOVE on shared memory), MADV_PAGEOUT,
 * MADV_COLLAPSE, split THPs and fork.  The monitor (the parent) loops
 * clearing rounds through a pidfd with small vecs, random max_pages and
 * walk_end resumes, and keeps a shadow copy of the window with
 * process_vm_readv() (or /proc/PID/mem).
 *
 * Every call clears (MEMWATCH_CLEAR_SOFT_DIRTY), with its own filter: the
 * plain one (category_mask = PAGE_IS_SOFT_DIRTY) or one that excludes
 * some pages or all of them: CRIU's (FILE | PFNZERO inverted, with or
 * without anyof PRESENT | SWAPPED), SOFT_DIRTY with SWAPPED, PRESENT,
 * FILE or HUGE (plain or inverted), anyof combinations, the clean pages
 * (SOFT_DIRTY inverted), a mask that matches nothing (PRESENT | SWAPPED),
 * or random masks, inversions and anyof.  The return_mask is random too,
 * mostly with PRESENT | SWAPPED | SOFT_DIRTY in it.  A call that starts on
 * a hugetlb page with max_pages below its size fails with EINVAL (the
 * SPEC: a partial hugetlb page first); it is retried without max_pages.
 *
 * The rule.  A call re-arms exactly the pages it reports (SPEC guarantee
 * 2): a page it did not report keeps its tracking state, so a write to it
 * since its last report must still be reported by a later call, and the
 * plain round of each checkpoint is that later call.  So the monitor
 * updates the shadow of a page only from a call that reported it:
 *  - reported with SOFT_DIRTY in return_mask but not in its categories:
 *    the page was clean, there was nothing to re-arm; the shadow stays
 *    (its content must still be the one copied at its last re-arm);
 *  - otherwise (soft-dirty, or return_mask without SOFT_DIRTY, so it may
 *    have been): re-armed; the page is read after the call, or is zero
 *    when the call reported it neither PRESENT nor SWAPPED in a private
 *    slot (return_mask with both; SPEC guarantee 1); shared slots and a
 *    return_mask without PRESENT | SWAPPED are always read, and a page
 *    that cannot be read because it was unmapped meanwhile is zero;
 *  - not reported: nothing changes, whatever the filter excluded.
 * At a checkpoint every target thread is parked (shared flag and
 * counter), so nothing writes or changes mappings; the monitor runs one
 * more round with the plain filter (every call of it category_mask =
 * PAGE_IS_SOFT_DIRTY, no inversion, no anyof), which reports every page
 * whose tracking says it changed, and then compares each mapped page of
 * the target with the shadow.  A page that differs and is not all zero
 * is a lost write.
 *
 * Why this is sound (no false alarm): the content of a mapped page of the
 * window changes only by (a) a write by the target through its own page
 * tables, user or kernel, (b) a move by mremap(), (c) a new mapping, or
 * (d) a discard (MADV_DONTNEED of private memory, MADV_REMOVE of shared
 * memory, munmap), which leaves zeroes.  Swap-out and in, THP split and
 * collapse, migration, mprotect and COW after fork keep the content.
 * Nothing else writes the shared slots: fork children write only private
 * slots, each shared mapping is its own object (its memfd is closed once
 * mapped, nothing maps it twice), and shared slots are never zapped
 * (MADV_DONTNEED, MADV_PAGEOUT, MADV_COLLAPSE): zapping a shared PTE
 * forgets its soft-dirty bit while the content stays in the page cache,
 * which soft-dirty has never tracked (a copier takes shared memory from
 * the object, as CRIU does).  (a) makes the page soft-dirty (guarantee
 * 1), (b) sets soft-dirty on every moved entry (move_soft_dirty_pte/pmd,
 * and for hugetlb move_huge_pte()) and (c) has VM_SOFTDIRTY, so each of
 * them leaves the page soft-dirty until a call reports it, and that
 * call's copy is taken after its clear, so it sees the new content or a
 * later one; the calls that do not report the page leave it soft-dirty
 * (guarantee 2, whatever their masks), up to the plain round of the next
 * checkpoint.  A page reported clean had no (a)-(c) since its last copy,
 * so keeping the shadow is right.  Each page's shadow thus reflects every
 * (a)-(c) event before the checkpoint round, and the content can differ
 * from it only by a later discard, i.e. the page is all zero.  A write
 * stores a non-zero value and no write can make a page all zero again, so
 * a non-zero page that differs from the shadow had a write (or move) that
 * no call reported: a lost write.  (Writes lost and then discarded are not
 * caught: the check is sound, not complete.  Not copying pages reported
 * clean keeps it from hiding a lost write behind a later report.)
 *
 * Output: rounds, calls, writes, reports, calls and pages per filter and
 * lost=N, then TAP "ok 1 churn: no lost writes".
 *
 * Usage: churn [-d SECONDS] [-c CHECKPOINT_MS] [-s SEED] [-w WRITERS]
 *	       [-C CHURNERS] [-n] [-p] [-H] [-T] [-v]
 *
 * -n: never mremap() a whole PMD-aligned page table (move_normal_pmd()
 *     loses soft-dirty: see repro/mremap_pmd.c), move entry by entry.
 * -p: plain filter on every call, as before random masks.
 * -H: no hugetlb slots.
 * -T: target only: run the writers and churners in this process for -d
 *     seconds (or until killed) with no process_memwatch() call of its
 *     own, for an outside monitor such as tools/mm/memwatch (soft-dirty
 *     has one consumer: a call here would re-arm the monitor's pages).
 */
#define _GNU_SOURCE
/* __u64 is unsigned long long on ppc64 and mips64 too, as %llx expects */
#define __SANE_USERSPACE_TYPES__
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "common.h"

#ifndef MAP_HUGETLB
#define MAP_HUGETLB	0x40000
#endif
#ifndef MADV_REMOVE
#define MADV_REMOVE	9
#endif

/* the base page size: 4 KiB on x86, 64 KiB on ppc64le */
#define PAGE		page_size
#define PMD_SIZE	(2UL << 20)
#define HPAGE		PMD_SIZE	/* the hugetlb page size used */
#define SLOT_SIZE	(2 * PMD_SIZE)
#define NPRIV		8		/* slots 0-7: private anonymous */
#define NSHARED		2		/* slots 8-9: shared memory */
#define NHUGE		2		/* slots 10-11: private hugetlb */
#define NSLOTS		(NPRIV + NSHARED + NHUGE)
#define REGION_SIZE	(NSLOTS * SLOT_SIZE)
#define MAX_THREADS	16
#define MOVE_PAGES	(SLOT_SIZE / PAGE / 2 < 64 ? SLOT_SIZE / PAGE / 2 : 64)
#define MAX_LOST_SHOWN	16

#define CATS_KNOWN	0xffULL
#define PRESENT		PAGE_IS_PRESENT
#define SWAPPED		PAGE_IS_SWAPPED

enum kind { K_PRIV, K_SHARED, K_HUGE, NR_KINDS };

static const char * const kind_names[NR_KINDS] = {
	"private", "shared", "hugetlb",
};

enum op {
	OP_REMAP, OP_MREMAP, OP_MPROTECT, OP_DONTNEED, OP_PAGEOUT,
	OP_COLLAPSE, OP_SPLIT, OP_FORK, OP_HUGEPAGE, NR_OPS
};

static const char * const op_names[NR_OPS] = {
	"remap", "mremap", "mprotect", "dontneed", "pageout",
	"collapse", "split", "fork", "hugepage",
};

/* Shared between the monitor and the target */
struct ctl {
	atomic_int ready;
	atomic_int pause;
	atomic_int paused;
	atomic_int stop;
	atomic_ullong seq;
	atomic_ullong writes;
	atomic_ullong kwrites;
	atomic_ullong reads;
	atomic_ullong faults;
	atomic_ullong ops[NR_OPS];
	atomic_ullong ops_failed[NR_OPS];
	atomic_ullong kind_ops[NR_KINDS];
	atomic_ullong kind_failed[NR_KINDS];
	atomic_ullong memfds;
};

static unsigned long page_size;
static struct ctl *ctl;
static char *region;
static int nthreads;
static uint64_t seed = 1;
static int verbose;
static int no_pmd_move;
static int plain_only;
static int nslots = NSLOTS;	/* NPRIV + NSHARED without hugetlb */

static enum kind slot_kind(int slot)
{
	if (slot < NPRIV)
		return K_PRIV;
	return slot < NPRIV + NSHARED ? K_SHARED : K_HUGE;
}

static int kind_first(enum kind k)
{
	return k == K_PRIV ? 0 : k == K_SHARED ? NPRIV : NPRIV + NSHARED;
}

static int kind_slots(enum kind k)
{
	return k == K_PRIV ? NPRIV : k == K_SHARED ? NSHARED : NHUGE;
}

/* ---------------------------------------------------------------- target */

static __thread sigjmp_buf fault_jmp;
static __thread volatile int fault_armed;

static void fault_handler(int sig, siginfo_t *si, void *uc)
{
	if (fault_armed)
		siglongjmp(fault_jmp, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Park while the monitor holds a checkpoint */
static void pause_point(void)
{
	if (!atomic_load(&ctl->pause))
		return;
	atomic_fetch_add(&ctl->paused, 1);
	while (atomic_load(&ctl->pause))
		usleep(200);
	atomic_fetch_sub(&ctl->paused, 1);
}

static void *writer(void *arg)
{
	uint64_t s = seed ^ (uintptr_t)arg * 0x9E3779B97F4A7C15ULL;
	uint64_t npages = nslots * SLOT_SIZE / PAGE;
	uint64_t npages_small = (NPRIV + NSHARED) * SLOT_SIZE / PAGE;
	char name[16];
	int fd;

	snprintf(name, sizeof(name), "w%lu", (unsigned long)(uintptr_t)arg);
	fd = memfd_create(name, 0);
	if (fd < 0)
		abort();
	while (!atomic_load(&ctl->stop)) {
		uint64_t page = rnd_below(&s, npages_small);
		int burst = 1 + rnd_below(&s, 8);

		/* hugetlb: sparse, see the comment above */
		if (npages > npages_small && !rnd_below(&s, 256)) {
			page = npages_small + rnd_below(&s, npages - npages_small);
			burst = 1;
		}
		pause_point();
		/* a burst of writes to neighbouring pages, often in one THP */
		while (burst--) {
			uint64_t v = atomic_fetch_add(&ctl->seq, 1) + 1;
			volatile uint64_t *p;
			int how = rnd_below(&s, 16);	/* 0 kernel, 1 read */

			if (page < npages_small)
				page = (page + rnd_below(&s, 4)) % npages_small;
			p = (uint64_t *)(region + page * PAGE) +
			    rnd_below(&s, PAGE / 8);
			if (!how && pwrite(fd, &v, 8, 0) != 8)
				abort();
			if (sigsetjmp(fault_jmp, 0) == 0) {
				fault_armed = 1;
				if (how == 1) {
					/* a read fault maps the page clean */
					(void)*p;
					atomic_fetch_add(&ctl->reads, 1);
				} else if (how) {
					*p = v;
					atomic_fetch_add(&ctl->writes, 1);
				} else if (pread(fd, (void *)p, 8, 0) == 8) {
					atomic_fetch_add(&ctl->kwrites, 1);
				} else {
					atomic_fetch_add(&ctl->faults, 1);
				}
				fault_armed = 0;
			} else {
				fault_armed = 0;
				atomic_fetch_add(&ctl->faults, 1);
			}
		}
	}
	close(fd);
	return NULL;
}

static char *slot_addr(int slot)
{
	return region + (size_t)slot * SLOT_SIZE;
}

/*
 * Map fresh memory of @kind at [@addr, @addr + @len): shared memory is
 * MAP_SHARED | MAP_ANONYMOUS or a new memfd, closed once mapped so that
 * nothing else can write it; hugetlb needs 2 MiB alignment.
 */
static int map_fresh(uint64_t *s, enum kind kind, char *addr, size_t len)
{
	int prot = PROT_READ | PROT_WRITE, fd;
	void *p;

	switch (kind) {
	case K_SHARED:
		if (rnd_below(s, 2)) {
			p = mmap(addr, len, prot,
				 MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			break;
		}
		fd = memfd_create("churn-shm", MFD_CLOEXEC);
		if (fd < 0)
			return -1;
		if (ftruncate(fd, len)) {
			close(fd);
			return -1;
		}
		p = mmap(addr, len, prot, MAP_SHARED | MAP_FIXED, fd, 0);
		close(fd);
		atomic_fetch_add(&ctl->memfds, 1);
		break;
	case K_HUGE:
		p = mmap(addr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS |
			 MAP_HUGETLB | MAP_FIXED, -1, 0);
		break;
	default:
		p = mmap(addr, len, prot,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		break;
	}
	return p == MAP_FAILED ? -1 : 0;
}

static int pick_slot(uint64_t *s, enum kind kind)
{
	return kind_first(kind) + rnd_below(s, kind_slots(kind));
}

static enum kind pick_kind(uint64_t *s)
{
	/* half of the ops on private memory, as before */
	if (rnd_below(s, 2))
		return K_PRIV;
	return nslots == NSLOTS ? 1 + rnd_below(s, 2) : K_SHARED;
}

/*
 * A random page-aligned sub-range [*addr, *addr + *len) of one slot of
 * @kind; whole huge pages for hugetlb.
 */
static void pick_range(uint64_t *s, enum kind kind, char **addr, size_t *len)
{
	size_t off, max;

	*addr = slot_addr(pick_slot(s, kind));
	if (kind == K_HUGE) {
		off = rnd_below(s, SLOT_SIZE / HPAGE) * HPAGE;
		*addr += off;
		*len = off ? HPAGE : (1 + rnd_below(s, 2)) * HPAGE;
		return;
	}
	off = rnd_below(s, SLOT_SIZE / PAGE) * PAGE;
	max = SLOT_SIZE - off;
	*addr += off;
	*len = (1 + rnd_below(s, rnd_below(s, 2) ? 8 : max / PAGE)) * PAGE;
	if (*len > max)
		*len = max;
}

/* A random page of the private slots (the only ones fork children write) */
static char *priv_page(uint64_t *s)
{
	return region + rnd_below(s, NPRIV * SLOT_SIZE / PAGE) * PAGE;
}

static int do_op(uint64_t *s, enum op op, enum kind *kindp)
{
	enum kind kind = pick_kind(s);
	char *addr, *dst;
	size_t len;
	pid_t pid;
	int ret = 0, i, j;

	/* ops that only make sense on (or are only sound for) private memory */
	if (op == OP_PAGEOUT || op == OP_COLLAPSE || op == OP_SPLIT ||
	    op == OP_HUGEPAGE || op == OP_FORK)
		kind = K_PRIV;
	*kindp = kind;

	switch (op) {
	case OP_REMAP:
		i = pick_slot(s, kind);
		addr = slot_addr(i);
		if (munmap(addr, SLOT_SIZE) || map_fresh(s, kind, addr, SLOT_SIZE))
			return -1;
		if (kind == K_PRIV && rnd_below(s, 2))
			ret = madvise(addr, SLOT_SIZE, MADV_HUGEPAGE);
		break;
	case OP_MREMAP:
		/* move part of a slot into another of its kind, refill it */
		i = rnd_below(s, kind_slots(kind));
		j = (i + 1 + rnd_below(s, kind_slots(kind) - 1)) %
		    kind_slots(kind);
		addr = slot_addr(kind_first(kind) + i);
		dst = slot_addr(kind_first(kind) + j);
		if (kind == K_HUGE) {
			/* one or both huge pages, to either half */
			len = (1 + rnd_below(s, 2)) * HPAGE;
			if (len == HPAGE) {
				addr += rnd_below(s, 2) * HPAGE;
				dst += rnd_below(s, 2) * HPAGE;
			}
		} else if (rnd_below(s, 2)) {
			len = PMD_SIZE;		/* may move a whole PMD */
			if (no_pmd_move)	/* unaligned: entry by entry */
				dst += PAGE;
			else if (rnd_below(s, 2))
				addr += PMD_SIZE;
		} else {
			/* up to 64 pages, and half a slot at most */
			len = (1 + rnd_below(s, MOVE_PAGES)) * PAGE;
			addr += rnd_below(s, (SLOT_SIZE - len) / PAGE) * PAGE;
			dst += rnd_below(s, (SLOT_SIZE - len) / PAGE) * PAGE;
		}
		if (mremap(addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
			   dst) == MAP_FAILED)
			ret = -1;
		if (rnd_below(s, 4) && map_fresh(s, kind, addr, len))
			ret = -1;
		break;
	case OP_MPROTECT:
		pick_range(s, kind, &addr, &len);
		if (mprotect(addr, len, PROT_READ))
			return -1;
		if (rnd_below(s, 2))
			usleep(rnd_below(s, 2000));
		else
			sched_yield();
		ret = mprotect(addr, len, PROT_READ | PROT_WRITE);
		break;
	case OP_DONTNEED:
		/* a discard: shared memory is punched (zapping keeps it) */
		pick_range(s, kind, &addr, &len);
		ret = madvise(addr, len, kind == K_SHARED ? MADV_REMOVE :
							    MADV_DONTNEED);
		break;
	case OP_PAGEOUT:
		pick_range(s, kind, &addr, &len);
		ret = madvise(addr, len, MADV_PAGEOUT);
		break;
	case OP_COLLAPSE:
		addr = region + rnd_below(s, NPRIV * SLOT_SIZE / PMD_SIZE) *
				PMD_SIZE;
		ret = madvise(addr, PMD_SIZE, MADV_COLLAPSE);
		break;
	case OP_HUGEPAGE:
		addr = slot_addr(pick_slot(s, K_PRIV));
		ret = madvise(addr, SLOT_SIZE, MADV_HUGEPAGE);
		break;
	case OP_SPLIT:
		/* split a (possibly PMD-mapped) THP in one of four ways */
		addr = region + rnd_below(s, NPRIV * SLOT_SIZE / PMD_SIZE) *
				PMD_SIZE + rnd_below(s, PMD_SIZE / PAGE) * PAGE;
		len = (1 + rnd_below(s, 16)) * PAGE;
		if (((uintptr_t)addr & (PMD_SIZE - 1)) + len > PMD_SIZE)
			len = PMD_SIZE - ((uintptr_t)addr & (PMD_SIZE - 1));
		switch (rnd_below(s, 4)) {
		case 0:
			ret = madvise(addr, len, MADV_NOHUGEPAGE);
			break;
		case 1:
			if (munmap(addr, len))
				return -1;
			if (rnd_below(s, 2))
				ret = map_fresh(s, K_PRIV, addr, len);
			break;
		case 2:
			if (mprotect(addr, len, PROT_READ))
				return -1;
			ret = mprotect(addr, len, PROT_READ | PROT_WRITE);
			break;
		default:
			ret = madvise(addr, len, MADV_DONTNEED);
			break;
		}
		break;
	case OP_FORK:
		pid = fork();
		if (pid < 0)
			return -1;
		if (pid == 0) {
			/* COW-break some private pages in the child, then go */
			for (i = 0; i < 8; i++) {
				volatile char *p = priv_page(s);

				if (sigsetjmp(fault_jmp, 0) == 0) {
					fault_armed = 1;
					*p = 1;
				}
				fault_armed = 0;
			}
			_exit(0);
		}
		if (rnd_below(s, 2))
			usleep(rnd_below(s, 1000));
		ret = waitpid(pid, NULL, 0) == pid ? 0 : -1;
		break;
	default:
		break;
	}
	return ret;
}

static void *churner(void *arg)
{
	uint64_t s = seed ^ (0xC0FFEEULL + (uintptr_t)arg) * 0xBF58476D1CE4E5B9ULL;

	while (!atomic_load(&ctl->stop)) {
		enum op op = rnd_below(&s, NR_OPS);
		enum kind kind;
		bool failed;

		pause_point();
		failed = do_op(&s, op, &kind);
		if (failed) {
			atomic_fetch_add(&ctl->ops_failed[op], 1);
			atomic_fetch_add(&ctl->kind_failed[kind], 1);
		}
		atomic_fetch_add(&ctl->ops[op], 1);
		atomic_fetch_add(&ctl->kind_ops[kind], 1);
		usleep(rnd_below(&s, 2000));
	}
	return NULL;
}

static void target(int nwriters, int nchurners)
{
	struct sigaction sa = {
		.sa_sigaction = fault_handler,
		.sa_flags = SA_SIGINFO | SA_NODEFER,
	};
	pthread_t tid[MAX_THREADS];
	uint64_t s = seed ^ 0x5EED;
	int i, n = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	for (i = 0; i < nslots; i++) {
		if (map_fresh(&s, slot_kind(i), slot_addr(i), SLOT_SIZE))
			_exit(2);
		if (i < NPRIV && (i & 1))
			madvise(slot_addr(i), SLOT_SIZE, MADV_HUGEPAGE);
	}
	for (i = 0; i < nwriters; i++)
		if (pthread_create(&tid[n++], NULL, writer, (void *)(uintptr_t)i))
			_exit(3);
	for (i = 0; i < nchurners; i++)
		if (pthread_create(&tid[n++], NULL, churner, (void *)(uintptr_t)i))
			_exit(3);
	atomic_store(&ctl->ready, 1);
	for (i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
	_exit(0);
}

/* --------------------------------------------------------------- monitor */

/*
 * The filters of the clearing calls. "plain" is what every call of a
 * checkpoint round uses; "random" draws its masks at each call.
 */
struct filter {
	const char *name;
	uint64_t inverted, mask, anyof;
};

static const struct filter filters[] = {
	{ "plain", 0, SD, 0 },
	{ "criu", PAGE_IS_FILE | PAGE_IS_PFNZERO,
	  PAGE_IS_FILE | PAGE_IS_PFNZERO, 0 },
	{ "criu-anyof", PAGE_IS_FILE | PAGE_IS_PFNZERO,
	  PAGE_IS_FILE | PAGE_IS_PFNZERO, PRESENT | SWAPPED },
	{ "criu-sd", PAGE_IS_FILE | PAGE_IS_PFNZERO,
	  SD | PAGE_IS_FILE | PAGE_IS_PFNZERO, 0 },
	{ "sd-swapped", 0, SD | SWAPPED, 0 },
	{ "sd-present", 0, SD | PRESENT, 0 },
	{ "sd-absent", PRESENT, SD | PRESENT, 0 },
	{ "sd-file", 0, SD | PAGE_IS_FILE, 0 },
	{ "sd-anon", PAGE_IS_FILE, SD | PAGE_IS_FILE, 0 },
	{ "sd-huge", 0, SD | PAGE_IS_HUGE, 0 },
	{ "sd-small", PAGE_IS_HUGE, SD | PAGE_IS_HUGE, 0 },
	{ "sd-anyof-swapped-pfnzero", 0, SD, SWAPPED | PAGE_IS_PFNZERO },
	{ "anyof-present-swapped", 0, 0, PRESENT | SWAPPED },
	{ "anyof-sd-huge", 0, 0, SD | PAGE_IS_HUGE },
	{ "clean", SD, SD, 0 },
	{ "nothing", 0, PRESENT | SWAPPED, 0 },
	{ "random", 0, 0, 0 },
};

#define NR_FILTERS	(sizeof(filters) / sizeof(filters[0]))
#define FILTER_RANDOM	(NR_FILTERS - 1)

static pid_t tpid;
static int pidfd;
static char *shadow, *cmpbuf;
static uint64_t rounds, calls, regions, reported_pages, copied_pages,
		zero_pages, clean_pages, checkpoints, compared_pages,
		discarded_pages, unmapped_pages, lost, call_errors,
		huge_retries, huge_skips;
static uint64_t filter_calls[NR_FILTERS], filter_pages[NR_FILTERS];
static uint64_t ms;	/* the monitor's PRNG state */
static uint64_t read_errors;
/* per page: the last call that reported it, its filter and categories */
static uint32_t *last_call;
static uint8_t *last_filter, *last_cats;

/*
 * Copy [addr, addr + len) of the target to buf; unreadable pages are 0.
 * process_vm_readv(), or /proc/PID/mem on a kernel without
 * CONFIG_CROSS_MEMORY_ATTACH (the test guest's): both read through GUP.
 */
static int memfd_target = -1;

static ssize_t read_some(char *buf, uintptr_t addr, size_t len)
{
	struct iovec l = { buf, len };
	struct iovec r = { (void *)addr, len };
	ssize_t n;

	if (memfd_target < 0) {
		n = process_vm_readv(tpid, &l, 1, &r, 1, 0);
		if (n >= 0 || errno != ENOSYS)
			return n;
		snprintf(buf, len, "/proc/%d/mem", tpid);
		memfd_target = open(buf, O_RDONLY);
		if (memfd_target < 0) {
			printf("# cannot open %s: %s\n", buf, strerror(errno));
			exit(KSFT_FAIL);
		}
		printf("# no process_vm_readv (ENOSYS): reading /proc/%d/mem\n",
		       tpid);
	}
	return pread(memfd_target, buf, len, addr);
}

static void read_target(char *buf, uintptr_t addr, size_t len,
			uint64_t *unreadable)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read_some(buf + done, addr + done, len - done);

		if (n > 0) {
			done += n;
			continue;
		}
		if (n < 0 && errno != EFAULT && errno != EIO && !read_errors++)
			printf("# reading %#lx, %zu bytes: %s\n",
			       addr + done, len - done, strerror(errno));
		memset(buf + done, 0, PAGE);
		if (unreadable)
			(*unreadable)++;
		done += PAGE;
	}
}

/* Draw the masks of one call: the plain filter about 40% of the time */
static int pick_filter(struct memwatch_arg *arg, bool plain)
{
	int f = plain || plain_only || rnd_below(&ms, 5) < 2 ? 0 :
		1 + rnd_below(&ms, NR_FILTERS - 1);

	arg->category_inverted = filters[f].inverted;
	arg->category_mask = filters[f].mask;
	arg->category_anyof_mask = filters[f].anyof;
	if (f == FILTER_RANDOM) {
		arg->category_inverted = rnd_below(&ms, 2) ? 0 :
					 rnd_next(&ms) & CATS_KNOWN;
		arg->category_mask = rnd_next(&ms) & rnd_next(&ms) & CATS_KNOWN;
		arg->category_anyof_mask = rnd_below(&ms, 2) ? 0 :
					   rnd_next(&ms) & rnd_next(&ms) &
					   CATS_KNOWN;
	}
	if (plain)
		arg->return_mask = SD | PRESENT | SWAPPED | PAGE_IS_HUGE |
				   (rnd_next(&ms) & CATS_KNOWN);
	else if (rnd_below(&ms, 4))
		arg->return_mask = SD | PRESENT | SWAPPED |
				   (rnd_next(&ms) & CATS_KNOWN);
	else
		arg->return_mask = rnd_next(&ms) & CATS_KNOWN;
	return f;
}

/* A region must match the masks, as far as return_mask shows them */
static bool region_matches(const struct memwatch_arg *a, uint64_t cats)
{
	uint64_t seen = (cats ^ a->category_inverted) & a->return_mask;
	uint64_t mask = a->category_mask & a->return_mask;

	if (cats & ~a->return_mask)
		return false;
	if ((seen & mask) != mask)
		return false;
	if (a->category_anyof_mask && !(a->category_anyof_mask & ~a->return_mask))
		return seen & a->category_anyof_mask;
	return true;
}

static int slot_of(uintptr_t addr)
{
	return (addr - (uintptr_t)region) / SLOT_SIZE;
}

/* Bring the shadow up to date for one region a call reported (the rule) */
static void update_shadow(const struct memwatch_arg *a,
			  const struct page_region *r, int f)
{
	uint64_t cats = r->categories;
	bool known_absent = (a->return_mask & (PRESENT | SWAPPED)) ==
			    (PRESENT | SWAPPED) &&
			    !(cats & (PRESENT | SWAPPED));
	uintptr_t addr, next;

	for (addr = r->start; addr < r->end; addr += PAGE) {
		size_t pg = (addr - (uintptr_t)region) / PAGE;

		last_call[pg] = calls;
		last_filter[pg] = f;
		last_cats[pg] = cats;
	}
	if ((a->return_mask & SD) && !(cats & SD)) {
		/* reported clean: nothing was re-armed, the shadow stays */
		clean_pages += (r->end - r->start) / PAGE;
		return;
	}
	for (addr = r->start; addr < r->end; addr = next) {
		int slot = slot_of(addr);
		size_t off = addr - (uintptr_t)region;

		next = (uintptr_t)slot_addr(slot + 1);
		if (next > r->end)
			next = r->end;
		if (known_absent && slot_kind(slot) != K_SHARED) {
			memset(shadow + off, 0, next - addr);
			zero_pages += (next - addr) / PAGE;
		} else {
			read_target(shadow + off, addr, next - addr, NULL);
			copied_pages += (next - addr) / PAGE;
		}
	}
}

/*
 * One clearing pass over the window: small vecs, sometimes max_pages,
 * resume at walk_end until the whole window was examined. Each call draws
 * its filter, or uses the plain one in a checkpoint round (@plain).
 */
static int memwatch_round(bool plain)
{
	uintptr_t start = (uintptr_t)region, end = start + nslots * SLOT_SIZE;
	uintptr_t addr = start;
	struct page_region vec[8];

	while (addr < end) {
		bool huge = slot_kind(slot_of(addr)) == K_HUGE;
		struct memwatch_arg arg = {
			.start = addr,
			.end = end,
			.vec = (uintptr_t)vec,
			.vec_len = 1 + rnd_below(&ms, 8),
			.max_pages = rnd_below(&ms, 4) || (plain && huge) ? 0 :
				     1 + rnd_below(&ms, 64),
		};
		int f = pick_filter(&arg, plain);
		long n = process_memwatch(pidfd, &arg, sizeof(arg),
					  MEMWATCH_CLEAR_SOFT_DIRTY);
		long i;

		calls++;
		filter_calls[f]++;
		if (n < 0 && errno == EINVAL && huge) {
			/*
			 * A hugetlb page only partly inside what the call
			 * may clear (max_pages, or a resume inside it after
			 * a partly reported hole was faulted in): EINVAL,
			 * nothing changed. Again without max_pages, else
			 * go on at the next huge page (not in a checkpoint
			 * round: the target is parked, nothing faults in).
			 */
			huge_retries++;
			arg.max_pages = 0;
			n = process_memwatch(pidfd, &arg, sizeof(arg),
					     MEMWATCH_CLEAR_SOFT_DIRTY);
			calls++;
			filter_calls[f]++;
			if (n < 0 && errno == EINVAL && !plain &&
			    (addr & (HPAGE - 1))) {
				huge_skips++;
				addr = (addr + HPAGE - 1) & ~(HPAGE - 1);
				continue;
			}
		}
		if (n < 0) {
			printf("# process_memwatch failed at %#lx: %s (filter "
			       "%s: inverted %#llx mask %#llx anyof %#llx, "
			       "max_pages %llu)\n", addr, strerror(errno),
			       filters[f].name, arg.category_inverted,
			       arg.category_mask, arg.category_anyof_mask,
			       arg.max_pages);
			call_errors++;
			return -1;
		}
		if (arg.walk_end <= addr || arg.walk_end > end ||
		    n > (long)arg.vec_len) {
			printf("# bad result: start %#lx walk_end %#llx n %ld\n",
			       addr, arg.walk_end, n);
			call_errors++;
			return -1;
		}
		for (i = 0; i < n; i++) {
			struct page_region *r = &vec[i];

			if (r->start < addr || r->end > arg.walk_end ||
			    r->start >= r->end || (r->start & (PAGE - 1)) ||
			    (r->end & (PAGE - 1)) ||
			    !region_matches(&arg, r->categories) ||
			    (i && r->start < vec[i - 1].end)) {
				printf("# bad region %#llx-%#llx cat %#llx "
				       "(filter %s: inverted %#llx mask %#llx "
				       "anyof %#llx return %#llx)\n",
				       r->start, r->end, r->categories,
				       filters[f].name, arg.category_inverted,
				       arg.category_mask,
				       arg.category_anyof_mask, arg.return_mask);
				call_errors++;
				return -1;
			}
			regions++;
			reported_pages += (r->end - r->start) / PAGE;
			filter_pages[f] += (r->end - r->start) / PAGE;
			update_shadow(&arg, r, f);
		}
		addr = arg.walk_end;
	}
	rounds++;
	return 0;
}

static bool all_zero(const char *p)
{
	const uint64_t *q = (const uint64_t *)p;
	size_t i;

	for (i = 0; i < PAGE / 8; i++)
		if (q[i])
			return false;
	return true;
}

/* Print the target's VMA holding addr, with its VmFlags ("sd": soft-dirty) */
static void show_vma(uintptr_t addr)
{
	unsigned long start, end;
	char path[64], line[256];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", tpid);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
			found = start <= addr && addr < end;
			if (found)
				printf("#   vma %s", line);
		} else if (found && !strncmp(line, "VmFlags:", 8)) {
			printf("#   %s", line);
			break;
		}
	}
	fclose(f);
}

static void show_lost(uintptr_t addr, const char *mem, const char *old)
{
	const uint64_t *m = (const uint64_t *)mem, *o = (const uint64_t *)old;
	size_t pg = (addr - (uintptr_t)region) / PAGE;
	struct page_region r = { 0 };
	struct memwatch_arg arg = {
		.start = addr,
		.end = addr + PAGE,
		.vec = (uintptr_t)&r,
		.vec_len = 1,
		.return_mask = SD | PAGE_IS_PRESENT | PAGE_IS_SWAPPED |
			       PAGE_IS_HUGE | PAGE_IS_PFNZERO | PAGE_IS_FILE,
	};
	long n = process_memwatch(pidfd, &arg, sizeof(arg), 0);
	size_t i;

	for (i = 0; i < PAGE / 8 && m[i] == o[i]; i++)
		;
	printf("# LOST: page %#lx (offset %#lx in region, %s slot %d): word "
	       "%zu is %#llx, shadow %#llx; now reported n=%ld categories "
	       "%#llx\n", addr, addr - (uintptr_t)region,
	       kind_names[slot_kind(slot_of(addr))], slot_of(addr), i,
	       (unsigned long long)m[i], (unsigned long long)o[i], n,
	       n > 0 ? r.categories : 0ULL);
	if (last_call[pg])
		printf("#   last reported by call %u of %llu, filter %s, "
		       "categories %#x\n", last_call[pg],
		       (unsigned long long)calls, filters[last_filter[pg]].name,
		       last_cats[pg]);
	else
		printf("#   never reported\n");
	show_vma(addr);
}

/* Park the target, run a plain round, compare every mapped page */
static int checkpoint(void)
{
	uint64_t deadline = now_ns() + 60000000000ULL;
	size_t slot, pg;
	int ret = 0;

	atomic_store(&ctl->pause, 1);
	while (atomic_load(&ctl->paused) < nthreads) {
		if (now_ns() > deadline) {
			printf("# target did not park\n");
			atomic_store(&ctl->pause, 0);
			return -1;
		}
		usleep(200);
	}
	if (memwatch_round(true))
		ret = -1;
	for (slot = 0; slot < (size_t)nslots && !ret; slot++) {
		uintptr_t base = (uintptr_t)slot_addr(slot);
		uint64_t before = unmapped_pages;

		read_target(cmpbuf, base, SLOT_SIZE, &unmapped_pages);
		for (pg = 0; pg < SLOT_SIZE / PAGE; pg++) {
			size_t off = slot * SLOT_SIZE + pg * PAGE;
			char *mem = cmpbuf + pg * PAGE;

			compared_pages++;
			if (!memcmp(mem, shadow + off, PAGE))
				continue;
			if (all_zero(mem)) {
				/* discarded, or unmapped (read as zero) */
				discarded_pages++;
			} else {
				if (lost < MAX_LOST_SHOWN)
					show_lost(base + pg * PAGE, mem,
						  shadow + off);
				lost++;
			}
			memcpy(shadow + off, mem, PAGE);
		}
		compared_pages -= unmapped_pages - before;
	}
	checkpoints++;
	atomic_store(&ctl->pause, 0);
	while (atomic_load(&ctl->paused))
		usleep(100);
	return ret;
}

/*
 * Whether the target can have its private hugetlb slots: enough free
 * 2 MiB pages (its slots, and as many again for COW after fork), and a
 * test mapping that faults one in. NULL, or why not.
 */
static const char *hugetlb_unavailable(void)
{
	static char why[128];
	unsigned long nfree = 0;
	unsigned long need = 2 * NHUGE * SLOT_SIZE / HPAGE;
	FILE *f;
	char *p;

	f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages",
		  "r");
	if (!f)
		return "no 2 MiB hugetlb pages (hugepages-2048kB missing)";
	if (fscanf(f, "%lu", &nfree) != 1)
		nfree = 0;
	fclose(f);
	if (nfree < need) {
		snprintf(why, sizeof(why), "%lu free 2 MiB hugetlb pages, "
			 "%lu needed (vm.nr_hugepages)", nfree, need);
		return why;
	}
	p = mmap(NULL, HPAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (p == MAP_FAILED) {
		snprintf(why, sizeof(why), "MAP_HUGETLB: %s", strerror(errno));
		return why;
	}
	*(volatile char *)p = 1;
	munmap(p, HPAGE);
	return NULL;
}

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-d SECONDS] [-c CHECKPOINT_MS] [-s SEED] "
		"[-w WRITERS] [-C CHURNERS] [-n] [-p] [-H] [-T] [-v]\n", argv0);
	exit(2);
}

/* -T: stop the target's threads after @arg seconds */
static void *stop_after(void *arg)
{
	sleep((uintptr_t)arg);
	atomic_store(&ctl->stop, 1);
	return NULL;
}

int main(int argc, char **argv)
{
	int duration = 60, interval_ms = 2000, nwriters = 2, nchurners = 2;
	uint64_t t0, next_cp, end;
	int opt, status, i, err = 0, no_huge = 0, target_only = 0;
	pthread_t timer;
	const char *why;
	size_t f;
	void *res;

	setvbuf(stdout, NULL, _IOLBF, 0);
	page_size = sysconf(_SC_PAGESIZE);
	seed = time(NULL);
	while ((opt = getopt(argc, argv, "d:c:s:w:C:npHTv")) != -1) {
		switch (opt) {
		case 'd': duration = atoi(optarg); break;
		case 'c': interval_ms = atoi(optarg); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'w': nwriters = atoi(optarg); break;
		case 'C': nchurners = atoi(optarg); break;
		case 'n': no_pmd_move = 1; break;
		case 'p': plain_only = 1; break;
		case 'H': no_huge = 1; break;
		case 'T': target_only = 1; break;
		case 'v': verbose = 1; break;
		default: usage(argv[0]);
		}
	}
	if (nwriters < 1 || nchurners < 0 ||
	    nwriters + nchurners > MAX_THREADS || duration < 1 ||
	    interval_ms < 1)
		usage(argv[0]);
	if (!seed)
		seed = 1;
	ms = seed * 0x94D049BB133111EBULL | 1;
	nthreads = nwriters + nchurners;

	if (!target_only)
		tap_plan(1);
	printf("# churn: seed %llu, %d s, checkpoint every %d ms, %d writers, "
	       "%d churners, region %lu MiB, %s filters\n",
	       (unsigned long long)seed, duration, interval_ms, nwriters,
	       nchurners, REGION_SIZE >> 20,
	       plain_only ? "plain" : "random");
	if (!target_only && !memwatch_supported()) {
		tap_skip("churn: no lost writes (process_memwatch not supported)");
		return tap_exit();
	}
	why = no_huge ? "-H" : hugetlb_unavailable();
	if (why) {
		nslots = NPRIV + NSHARED;
		printf("# hugetlb slots left out: %s\n", why);
	}
	printf("# slots: %d private, %d shared, %d hugetlb (%lu MiB each)\n",
	       NPRIV, NSHARED, nslots - NPRIV - NSHARED, SLOT_SIZE >> 20);

	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	/* reserve a PMD-aligned window; the target maps its slots there */
	res = mmap(NULL, REGION_SIZE + PMD_SIZE, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	shadow = calloc(1, REGION_SIZE);
	cmpbuf = malloc(SLOT_SIZE);
	last_call = calloc(REGION_SIZE / PAGE, sizeof(*last_call));
	last_filter = calloc(REGION_SIZE / PAGE, 1);
	last_cats = calloc(REGION_SIZE / PAGE, 1);
	if (ctl == MAP_FAILED || res == MAP_FAILED || !shadow || !cmpbuf ||
	    !last_call || !last_filter || !last_cats) {
		tap_result(false, "churn: no lost writes (setup: %s)",
			   strerror(errno));
		return tap_exit();
	}
	region = (char *)(((uintptr_t)res + PMD_SIZE - 1) & ~(PMD_SIZE - 1));
	if (target_only) {
		printf("# target only: pid %d, region %p\n", getpid(), region);
		if (pthread_create(&timer, NULL, stop_after,
				   (void *)(uintptr_t)duration))
			return 3;
		target(nwriters, nchurners);
	}

	tpid = fork();
	if (tpid < 0) {
		tap_result(false, "churn: no lost writes (fork: %s)",
			   strerror(errno));
		return tap_exit();
	}
	if (tpid == 0)
		target(nwriters, nchurners);
	pidfd = sys_pidfd_open(tpid, 0);
	while (!atomic_load(&ctl->ready) && waitpid(tpid, &status, WNOHANG) == 0)
		usleep(1000);
	if (pidfd < 0 || !atomic_load(&ctl->ready)) {
		kill(tpid, SIGKILL);
		tap_result(false, "churn: no lost writes (target setup failed)");
		return tap_exit();
	}

	t0 = now_ns();
	end = t0 + duration * 1000000000ULL;
	next_cp = t0 + interval_ms * 1000000ULL;
	while (!err) {
		uint64_t t = now_ns();

		if (t >= end) {
			err = checkpoint();
			break;
		}
		if (t >= next_cp) {
			err = checkpoint();
			next_cp = now_ns() + interval_ms * 1000000ULL;
			if (verbose)
				printf("# checkpoint %llu: rounds %llu lost %llu\n",
				       (unsigned long long)checkpoints,
				       (unsigned long long)rounds,
				       (unsigned long long)lost);
			continue;
		}
		err = memwatch_round(false);
		if (rnd_below(&ms, 2))
			usleep(rnd_below(&ms, 3000));
	}
	atomic_store(&ctl->stop, 1);
	waitpid(tpid, &status, 0);

	printf("# rounds %llu, calls %llu, checkpoints %llu\n",
	       (unsigned long long)rounds, (unsigned long long)calls,
	       (unsigned long long)checkpoints);
	printf("# writes %llu (user %llu, kernel %llu), reads %llu, "
	       "faulted accesses %llu\n",
	       (unsigned long long)(ctl->writes + ctl->kwrites),
	       (unsigned long long)ctl->writes,
	       (unsigned long long)ctl->kwrites,
	       (unsigned long long)ctl->reads,
	       (unsigned long long)ctl->faults);
	printf("# reports: %llu regions, %llu pages (%llu copied, %llu zero, "
	       "%llu clean)\n",
	       (unsigned long long)regions, (unsigned long long)reported_pages,
	       (unsigned long long)copied_pages,
	       (unsigned long long)zero_pages,
	       (unsigned long long)clean_pages);
	printf("# filters (calls/pages):");
	for (f = 0; f < NR_FILTERS; f++)
		printf(" %s=%llu/%llu", filters[f].name,
		       (unsigned long long)filter_calls[f],
		       (unsigned long long)filter_pages[f]);
	printf("\n# hugetlb EINVAL retries %llu, skips %llu\n",
	       (unsigned long long)huge_retries,
	       (unsigned long long)huge_skips);
	printf("# compared %llu pages, %llu discarded, %llu unmapped\n",
	       (unsigned long long)compared_pages,
	       (unsigned long long)discarded_pages,
	       (unsigned long long)unmapped_pages);
	printf("# churn ops:");
	for (i = 0; i < NR_OPS; i++)
		printf(" %s=%llu/%llu", op_names[i],
		       (unsigned long long)ctl->ops[i],
		       (unsigned long long)ctl->ops_failed[i]);
	printf(" (done/failed)\n# by kind:");
	for (i = 0; i < NR_KINDS; i++)
		printf(" %s=%llu/%llu", kind_names[i],
		       (unsigned long long)ctl->kind_ops[i],
		       (unsigned long long)ctl->kind_failed[i]);
	printf(" (done/failed), %llu memfds\n",
	       (unsigned long long)ctl->memfds);
	printf("# target exit: %s %d\n",
	       WIFEXITED(status) ? "status" : "signal",
	       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	printf("# lost=%llu\n", (unsigned long long)lost);

	if (err || !WIFEXITED(status) || WEXITSTATUS(status))
		tap_result(false, "churn: no lost writes (run failed: "
			   "call errors %llu, target %s)",
			   (unsigned long long)call_errors,
			   WIFEXITED(status) && !WEXITSTATUS(status) ?
			   "ok" : "died");
	else
		tap_result(!lost && checkpoints > 0 && ctl->writes > 0,
			   "churn: no lost writes (%llu checkpoints, lost=%llu)",
			   (unsigned long long)checkpoints,
			   (unsigned long long)lost);
	return tap_exit();
}
