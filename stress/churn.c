// SPDX-License-Identifier: GPL-2.0
/*
 * churn: process_memwatch() must not lose a write while the target's
 * address space churns.
 *
 * A target process (forked child) runs writer threads that store unique
 * sequence numbers into random pages of a watched region (from user space
 * and through pread(2), a kernel write), and churn threads that munmap and
 * re-mmap, mremap, mprotect RO and back, MADV_DONTNEED, MADV_PAGEOUT,
 * MADV_COLLAPSE, split THPs and fork.  The monitor (the parent) loops
 * get+clear rounds through a pidfd with small vecs, random max_pages and
 * walk_end resumes, and keeps a shadow copy of the region with
 * process_vm_readv().
 *
 * The rule.  After each call the monitor re-copies exactly the reported
 * pages into the shadow: pages reported PRESENT or SWAPPED are read with
 * process_vm_readv(), pages reported neither are zero (SPEC guarantee 1;
 * a page that cannot be read because it was unmapped meanwhile is zero
 * too).  At a checkpoint every target thread is parked (shared flag and
 * counter), so nothing writes or changes mappings; the monitor runs one
 * more full get+clear round and then compares each mapped page of the
 * target with the shadow.  A page that differs and is not all zero is a
 * lost write.
 *
 * Why this is sound (no false alarm): the content of a mapped private
 * anonymous page changes only by (a) a write by the target, user or
 * kernel, (b) a move by mremap(), (c) a new mapping, or (d) a discard
 * (MADV_DONTNEED, munmap), which leaves zeroes.  Swap-out and in, THP
 * split and collapse, migration, mprotect and COW after fork keep the
 * content.  (a) makes the page soft-dirty (guarantee 1), (b) sets
 * soft-dirty on every moved entry (move_soft_dirty_pte/pmd) and (c) has
 * VM_SOFTDIRTY, so each of them is reported by the first call whose
 * clear comes after it, and the monitor's copy for that report is taken
 * after that clear, so it sees the new content or a later one.  Each
 * page's last copy thus reflects every (a)-(c) event before the
 * checkpoint round, and the content can differ from it only by a later
 * discard, i.e. the page is all zero.  A write stores a non-zero value
 * and no write can make a page all zero again, so a non-zero page that
 * differs from the shadow had a write (or move) that no call reported:
 * a lost write.  (Writes lost and then discarded are not caught: the
 * check is sound, not complete.)
 *
 * Output: rounds, calls, writes, reports and lost=N, then TAP
 * "ok 1 churn: no lost writes".
 *
 * Usage: churn [-d SECONDS] [-c CHECKPOINT_MS] [-s SEED] [-w WRITERS]
 *	       [-C CHURNERS] [-n] [-v]
 *
 * -n: never mremap() a whole PMD-aligned page table (move_normal_pmd()
 *     loses soft-dirty: see repro/mremap_pmd.c), move entry by entry.
 */
#define _GNU_SOURCE
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

#define PAGE		4096UL
#define PMD_SIZE	(2UL << 20)
#define SLOT_SIZE	(2 * PMD_SIZE)
#define NSLOTS		8
#define REGION_SIZE	(NSLOTS * SLOT_SIZE)
#define NPAGES		(REGION_SIZE / PAGE)
#define MAX_THREADS	16
#define MAX_LOST_SHOWN	16

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
	atomic_ullong faults;
	atomic_ullong ops[NR_OPS];
	atomic_ullong ops_failed[NR_OPS];
};

static struct ctl *ctl;
static char *region;
static int nthreads;
static uint64_t seed = 1;
static int verbose;
static int no_pmd_move;

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
	char name[16];
	int fd;

	snprintf(name, sizeof(name), "w%lu", (unsigned long)(uintptr_t)arg);
	fd = memfd_create(name, 0);
	if (fd < 0)
		abort();
	while (!atomic_load(&ctl->stop)) {
		uint64_t page = rnd_below(&s, NPAGES);
		int burst = 1 + rnd_below(&s, 8);

		pause_point();
		/* a burst of writes to neighbouring pages, often in one THP */
		while (burst--) {
			uint64_t v = atomic_fetch_add(&ctl->seq, 1) + 1;
			volatile uint64_t *p;
			bool kernel = !rnd_below(&s, 16);

			page = (page + rnd_below(&s, 4)) % NPAGES;
			p = (uint64_t *)(region + page * PAGE) +
			    rnd_below(&s, PAGE / 8);
			if (kernel && pwrite(fd, &v, 8, 0) != 8)
				abort();
			if (sigsetjmp(fault_jmp, 0) == 0) {
				fault_armed = 1;
				if (!kernel) {
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

static int map_fresh(char *addr, size_t len)
{
	void *p = mmap(addr, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

	return p == MAP_FAILED ? -1 : 0;
}

/* A random page-aligned sub-range [*addr, *addr + *len) of one slot */
static void pick_range(uint64_t *s, char **addr, size_t *len)
{
	size_t off = rnd_below(s, SLOT_SIZE / PAGE) * PAGE;
	size_t max = SLOT_SIZE - off;

	*addr = slot_addr(rnd_below(s, NSLOTS)) + off;
	*len = (1 + rnd_below(s, rnd_below(s, 2) ? 8 : max / PAGE)) * PAGE;
	if (*len > max)
		*len = max;
}

static int do_op(uint64_t *s, enum op op)
{
	char *addr, *dst;
	size_t len;
	pid_t pid;
	int ret = 0, i;

	switch (op) {
	case OP_REMAP:
		addr = slot_addr(rnd_below(s, NSLOTS));
		if (munmap(addr, SLOT_SIZE) || map_fresh(addr, SLOT_SIZE))
			return -1;
		if (rnd_below(s, 2))
			ret = madvise(addr, SLOT_SIZE, MADV_HUGEPAGE);
		break;
	case OP_MREMAP:
		/* move part of a slot into another slot, refill the source */
		i = rnd_below(s, NSLOTS);
		addr = slot_addr(i);
		dst = slot_addr((i + 1 + rnd_below(s, NSLOTS - 1)) % NSLOTS);
		if (rnd_below(s, 2)) {
			len = PMD_SIZE;		/* may move a whole PMD */
			if (no_pmd_move)	/* unaligned: entry by entry */
				dst += PAGE;
		} else {
			len = (1 + rnd_below(s, 64)) * PAGE;
			addr += rnd_below(s, (SLOT_SIZE - len) / PAGE) * PAGE;
			dst += rnd_below(s, (SLOT_SIZE - len) / PAGE) * PAGE;
		}
		if (mremap(addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
			   dst) == MAP_FAILED)
			ret = -1;
		if (rnd_below(s, 4) && map_fresh(addr, len))
			ret = -1;
		break;
	case OP_MPROTECT:
		pick_range(s, &addr, &len);
		if (mprotect(addr, len, PROT_READ))
			return -1;
		if (rnd_below(s, 2))
			usleep(rnd_below(s, 2000));
		else
			sched_yield();
		ret = mprotect(addr, len, PROT_READ | PROT_WRITE);
		break;
	case OP_DONTNEED:
		pick_range(s, &addr, &len);
		ret = madvise(addr, len, MADV_DONTNEED);
		break;
	case OP_PAGEOUT:
		pick_range(s, &addr, &len);
		ret = madvise(addr, len, MADV_PAGEOUT);
		break;
	case OP_COLLAPSE:
		addr = region + rnd_below(s, REGION_SIZE / PMD_SIZE) * PMD_SIZE;
		ret = madvise(addr, PMD_SIZE, MADV_COLLAPSE);
		break;
	case OP_HUGEPAGE:
		addr = slot_addr(rnd_below(s, NSLOTS));
		ret = madvise(addr, SLOT_SIZE, MADV_HUGEPAGE);
		break;
	case OP_SPLIT:
		/* split a (possibly PMD-mapped) THP in one of four ways */
		addr = region + rnd_below(s, REGION_SIZE / PMD_SIZE) * PMD_SIZE +
		       rnd_below(s, PMD_SIZE / PAGE) * PAGE;
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
				ret = map_fresh(addr, len);
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
			/* COW-break some pages in the child, then go */
			for (i = 0; i < 8; i++) {
				volatile char *p = region +
					rnd_below(s, NPAGES) * PAGE;

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

		pause_point();
		if (do_op(&s, op))
			atomic_fetch_add(&ctl->ops_failed[op], 1);
		atomic_fetch_add(&ctl->ops[op], 1);
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
	int i, n = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	for (i = 0; i < NSLOTS; i++) {
		if (map_fresh(slot_addr(i), SLOT_SIZE))
			_exit(2);
		if (i & 1)
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

static pid_t tpid;
static int pidfd;
static char *shadow, *cmpbuf;
static uint64_t rounds, calls, regions, reported_pages, copied_pages,
		zero_pages, checkpoints, compared_pages,
		discarded_pages, unmapped_pages, lost, call_errors;
static uint64_t ms;	/* the monitor's PRNG state */
static uint64_t read_errors;

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

/*
 * One get+clear pass over the region: small vecs, sometimes max_pages,
 * resume at walk_end until the whole region was examined.
 */
static int memwatch_round(void)
{
	uintptr_t start = (uintptr_t)region, end = start + REGION_SIZE;
	uintptr_t addr = start;
	struct page_region vec[8];

	while (addr < end) {
		struct memwatch_arg arg = {
			.start = addr,
			.end = end,
			.vec = (uintptr_t)vec,
			.vec_len = 1 + rnd_below(&ms, 8),
			.max_pages = rnd_below(&ms, 4) ? 0 :
				     1 + rnd_below(&ms, 64),
			.category_mask = SD,
			.return_mask = SD | PAGE_IS_PRESENT | PAGE_IS_SWAPPED |
				       PAGE_IS_HUGE,
		};
		long n = process_memwatch(pidfd, &arg, sizeof(arg),
					  MEMWATCH_CLEAR_SOFT_DIRTY);
		long i;

		calls++;
		if (n < 0) {
			printf("# process_memwatch failed: %s\n",
			       strerror(errno));
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
			size_t off = r->start - start, len = r->end - r->start;

			if (r->start < addr || r->end > arg.walk_end ||
			    r->start >= r->end || (r->start & (PAGE - 1)) ||
			    !(r->categories & SD) ||
			    (i && r->start < vec[i - 1].end)) {
				printf("# bad region %#llx-%#llx cat %#llx\n",
				       r->start, r->end, r->categories);
				call_errors++;
				return -1;
			}
			regions++;
			reported_pages += len / PAGE;
			if (r->categories & (PAGE_IS_PRESENT | PAGE_IS_SWAPPED)) {
				read_target(shadow + off, r->start, len, NULL);
				copied_pages += len / PAGE;
			} else {
				memset(shadow + off, 0, len);
				zero_pages += len / PAGE;
			}
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
	struct page_region r = { 0 };
	struct memwatch_arg arg = {
		.start = addr,
		.end = addr + PAGE,
		.vec = (uintptr_t)&r,
		.vec_len = 1,
		.return_mask = SD | PAGE_IS_PRESENT | PAGE_IS_SWAPPED |
			       PAGE_IS_HUGE | PAGE_IS_PFNZERO,
	};
	long n = process_memwatch(pidfd, &arg, sizeof(arg), 0);
	size_t i;

	for (i = 0; i < PAGE / 8 && m[i] == o[i]; i++)
		;
	printf("# LOST: page %#lx (offset %#lx in region): word %zu is %#llx, "
	       "shadow %#llx; now reported n=%ld categories %#llx\n",
	       addr, addr - (uintptr_t)region, i,
	       (unsigned long long)m[i], (unsigned long long)o[i], n,
	       n > 0 ? r.categories : 0ULL);
	show_vma(addr);
}

/* Park the target, run a final round, compare every mapped page */
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
	if (memwatch_round())
		ret = -1;
	for (slot = 0; slot < NSLOTS && !ret; slot++) {
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

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-d SECONDS] [-c CHECKPOINT_MS] [-s SEED] "
		"[-w WRITERS] [-C CHURNERS] [-n] [-v]\n", argv0);
	exit(2);
}

int main(int argc, char **argv)
{
	int duration = 60, interval_ms = 2000, nwriters = 2, nchurners = 2;
	uint64_t t0, next_cp, end;
	int opt, status, i, err = 0;
	void *res;

	setvbuf(stdout, NULL, _IOLBF, 0);
	seed = time(NULL);
	while ((opt = getopt(argc, argv, "d:c:s:w:C:nv")) != -1) {
		switch (opt) {
		case 'd': duration = atoi(optarg); break;
		case 'c': interval_ms = atoi(optarg); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'w': nwriters = atoi(optarg); break;
		case 'C': nchurners = atoi(optarg); break;
		case 'n': no_pmd_move = 1; break;
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

	tap_plan(1);
	printf("# churn: seed %llu, %d s, checkpoint every %d ms, %d writers, "
	       "%d churners, region %lu MiB\n", (unsigned long long)seed,
	       duration, interval_ms, nwriters, nchurners, REGION_SIZE >> 20);
	if (!memwatch_supported()) {
		tap_skip("churn: no lost writes (process_memwatch not supported)");
		return tap_exit();
	}

	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	/* reserve a PMD-aligned window; the target maps its slots there */
	res = mmap(NULL, REGION_SIZE + PMD_SIZE, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	shadow = calloc(1, REGION_SIZE);
	cmpbuf = malloc(SLOT_SIZE);
	if (ctl == MAP_FAILED || res == MAP_FAILED || !shadow || !cmpbuf) {
		tap_result(false, "churn: no lost writes (setup: %s)",
			   strerror(errno));
		return tap_exit();
	}
	region = (char *)(((uintptr_t)res + PMD_SIZE - 1) & ~(PMD_SIZE - 1));

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
		err = memwatch_round();
		if (rnd_below(&ms, 2))
			usleep(rnd_below(&ms, 3000));
	}
	atomic_store(&ctl->stop, 1);
	waitpid(tpid, &status, 0);

	printf("# rounds %llu, calls %llu, checkpoints %llu\n",
	       (unsigned long long)rounds, (unsigned long long)calls,
	       (unsigned long long)checkpoints);
	printf("# writes %llu (user %llu, kernel %llu), faulted writes %llu\n",
	       (unsigned long long)(ctl->writes + ctl->kwrites),
	       (unsigned long long)ctl->writes,
	       (unsigned long long)ctl->kwrites,
	       (unsigned long long)ctl->faults);
	printf("# reports: %llu regions, %llu pages (%llu copied, %llu zero)\n",
	       (unsigned long long)regions, (unsigned long long)reported_pages,
	       (unsigned long long)copied_pages,
	       (unsigned long long)zero_pages);
	printf("# compared %llu pages, %llu discarded, %llu unmapped\n",
	       (unsigned long long)compared_pages,
	       (unsigned long long)discarded_pages,
	       (unsigned long long)unmapped_pages);
	printf("# churn ops:");
	for (i = 0; i < NR_OPS; i++)
		printf(" %s=%llu/%llu", op_names[i],
		       (unsigned long long)ctl->ops[i],
		       (unsigned long long)ctl->ops_failed[i]);
	printf(" (done/failed)\n");
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
