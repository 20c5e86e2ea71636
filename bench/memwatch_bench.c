// SPDX-License-Identifier: GPL-2.0
/*
 * Cost of finding and re-arming written pages: process_memwatch() against
 * PAGEMAP_SCAN + clear_refs, /proc/PID/pagemap + clear_refs, uffd-wp async
 * and mprotect + SIGSEGV, all measured in the same run.
 *
 * Usage: memwatch_bench ratios [quick]   tables of medians (run under -icount)
 *        memwatch_bench latency [quick]  mmap/munmap latency during a walk
 *
 * Output, one line per measurement (times in ns):
 *   result GROUP SIZE PCT PATTERN MECH MEDIAN MIN MAX REPS PAGES
 *   mismatch GROUP SIZE PCT PATTERN MECH PAGES EXPECTED
 *   info TEXT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/memwatch.h>
#include <linux/userfaultfd.h>

#ifndef __NR_process_memwatch
#define __NR_process_memwatch 463
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif

#define PAGE		4096UL
#define HPAGE		(2UL << 20)
#define MIB		(1UL << 20)
#define GIB		(1UL << 30)
#define VEC_LEN		(1UL << 18)	/* one entry per page of 1 GiB */
#define SPARSE_LEN	(16UL << 40)
#define SPARSE_PAGES	1000

enum kind { SOFTDIRTY, UFFD, MPROTECT };
enum pattern { SCATTERED, CLUSTERED };

enum mech {
	MW,		/* process_memwatch CLEAR_SOFT_DIRTY on self */
	MW_PIDFD,	/* the same on a child, through its pidfd */
	SCAN_CR,	/* PAGEMAP_SCAN soft-dirty, then clear_refs 4 */
	PREAD_CR,	/* pread pagemap bit 55, then clear_refs 4 */
	UFFD_WP,	/* PAGEMAP_SCAN WRITTEN + WP_MATCHING */
	MPROT,		/* mprotect + SIGSEGV */
	MW_SD,		/* report only, soft-dirty mask */
	SCAN_SD,
	MW_WRITTEN,	/* report only, written mask (uffd-wp region) */
	SCAN_WRITTEN,
	CLEAR_REFS,	/* first-write only: reset by clear_refs */
	NONE,		/* first-write only: no tracking */
};

static const char *const mech_name[] = {
	[MW] = "memwatch", [MW_PIDFD] = "memwatch-pidfd",
	[SCAN_CR] = "scan+clear_refs", [PREAD_CR] = "pagemap+clear_refs",
	[UFFD_WP] = "uffd-wp-async", [MPROT] = "mprotect+sigsegv",
	[MW_SD] = "memwatch-report-sd", [SCAN_SD] = "scan-report-sd",
	[MW_WRITTEN] = "memwatch-report-written",
	[SCAN_WRITTEN] = "scan-report-written",
	[CLEAR_REFS] = "clear_refs", [NONE] = "no-tracking",
};

/* A range of memory, ours or the child's */
struct region {
	char *base;
	unsigned long len;
	enum kind kind;
	int uffd;
	int remote;		/* owned by the child */
	int thp;
};

/* Child commands */
enum op { OP_ALLOC, OP_DIRTY, OP_FREE, OP_LOOP, OP_EXIT };

struct cmd {
	int op, pct, pattern, thp;
	unsigned long len;
	double seconds;
};

static int pagemap_fd, clear_refs_fd, self_pidfd, child_pidfd;
static int to_child, from_child;
static pid_t child;
static struct page_region *vec;
static uint64_t *pm_buf;
static int reps = 7, quick;
static int have_mw;		/* the kernel has process_memwatch() */
static unsigned long calls;	/* PAGEMAP_SCAN calls */
static uint64_t t_start;

/* mprotect + SIGSEGV state: the pages that faulted since the last reset */
static char *mp_base;
static unsigned long mp_len, mp_nr;
static uint32_t *mp_list;

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("error: ");
	vprintf(fmt, ap);
	printf(": %s\n", strerror(errno));
	va_end(ap);
	fflush(stdout);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static const char *size_name(unsigned long len)
{
	static char buf[32];

	if (!(len % (1UL << 40)))
		snprintf(buf, sizeof(buf), "%luT", len >> 40);
	else if (!(len % GIB))
		snprintf(buf, sizeof(buf), "%luG", len / GIB);
	else
		snprintf(buf, sizeof(buf), "%luM", len / MIB);
	return buf;
}

/* A memwatch mechanism: skipped on a kernel without the system call */
static int needs_mw(enum mech m)
{
	return m == MW || m == MW_PIDFD || m == MW_SD || m == MW_WRITTEN;
}

static const char *pattern_name(int pct, int pattern)
{
	if (pct == 0)
		return "none";
	if (pct == 100)
		return "all";
	return pattern == SCATTERED ? "scattered" : "clustered";
}

/* Pages written by dirty(): scattered evenly, or one contiguous run */
static unsigned long nr_written(unsigned long npages, int pct)
{
	return npages * pct / 100;
}

static unsigned long written_page(unsigned long npages, int pct,
				  int pattern, unsigned long i)
{
	unsigned long n = nr_written(npages, pct);

	if (pattern == CLUSTERED)
		return (npages - n) / 2 + i;
	return i * (npages / n);
}

static void write_pages(char *base, unsigned long len, int pct, int pattern)
{
	unsigned long npages = len / PAGE, n = nr_written(npages, pct), i;

	for (i = 0; i < n; i++)
		base[written_page(npages, pct, pattern, i) * PAGE] += 1;
}

/* Pages a PMD-granular tracker reports after write_pages() on THPs */
static unsigned long thp_expected(unsigned long len, int pct, int pattern)
{
	unsigned long npages = len / PAGE, n = nr_written(npages, pct);
	unsigned long i, last = -1UL, huge = 0, pg;

	for (i = 0; i < n; i++) {
		pg = written_page(npages, pct, pattern, i) / 512;
		if (pg != last)
			huge++;
		last = pg;
	}
	return huge * 512;
}

static long process_memwatch(int pidfd, struct memwatch_arg *arg,
			     unsigned int flags)
{
	return syscall(__NR_process_memwatch, pidfd, arg, sizeof(*arg), flags);
}

/*
 * Pages in the first @n regions of vec that lie at or after *@seen, which
 * moves to the end of the last one: PAGEMAP_SCAN may return a walk_end
 * below the end of regions it reported, and report them again when the
 * caller resumes there.
 */
static unsigned long count_regions(long n, unsigned long *seen)
{
	unsigned long pages = 0, start;
	long i;

	for (i = 0; i < n; i++) {
		start = vec[i].start > *seen ? vec[i].start : *seen;
		if (vec[i].end > start)
			pages += (vec[i].end - start) / PAGE;
		if (vec[i].end > *seen)
			*seen = vec[i].end;
	}
	return pages;
}

/* process_memwatch over the region; returns the pages reported */
static unsigned long mw(int pidfd, struct region *r, unsigned int flags,
			unsigned long mask)
{
	struct memwatch_arg arg = {
		.start = (unsigned long)r->base,
		.end = (unsigned long)r->base + r->len,
		.vec = (unsigned long)vec,
		.vec_len = VEC_LEN,
		.category_mask = mask,
		.return_mask = mask,
	};
	unsigned long pages = 0, seen = 0;
	long n;

	do {
		n = process_memwatch(pidfd, &arg, flags);
		if (n < 0)
			die("process_memwatch");
		pages += count_regions(n, &seen);
		arg.start = arg.walk_end;
	} while (arg.walk_end < arg.end);
	return pages;
}

static unsigned long scan(struct region *r, unsigned long flags,
			  unsigned long mask)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = flags,
		.start = (unsigned long)r->base,
		.end = (unsigned long)r->base + r->len,
		.vec = (unsigned long)vec,
		.vec_len = VEC_LEN,
		.category_mask = mask,
		.return_mask = mask,
	};
	unsigned long pages = 0, seen = 0;
	long n;

	do {
		n = ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);
		if (n < 0)
			die("PAGEMAP_SCAN");
		calls++;
		pages += count_regions(n, &seen);
		arg.start = arg.walk_end;
	} while (arg.walk_end < arg.end);
	return pages;
}

static void clear_refs(void)
{
	if (pwrite(clear_refs_fd, "4", 1, 0) != 1)
		die("clear_refs");
}

static unsigned long pagemap_read(struct region *r)
{
	unsigned long npages = r->len / PAGE, pages = 0, i;
	off_t off = (unsigned long)r->base / PAGE * 8;

	if (pread(pagemap_fd, pm_buf, npages * 8, off) != (ssize_t)(npages * 8))
		die("pread pagemap");
	for (i = 0; i < npages; i++)
		pages += (pm_buf[i] >> 55) & 1;
	return pages;
}

static unsigned long mprotect_reset(struct region *r)
{
	unsigned long pages = mp_nr;

	if (mprotect(r->base, r->len, PROT_READ))
		die("mprotect");
	mp_nr = 0;
	return pages;
}

static void segv(int sig, siginfo_t *si, void *uc)
{
	char *page = (char *)((unsigned long)si->si_addr & ~(PAGE - 1));

	if (page < mp_base || page >= mp_base + mp_len)
		abort();
	mp_list[mp_nr++] = (page - mp_base) / PAGE;
	mprotect(page, PAGE, PROT_READ | PROT_WRITE);
}

/*
 * Leave the state the SIGSEGV handler leaves after write_pages(), without
 * a signal per page (they would take most of the run): the first-write
 * test measures the handler itself.
 */
static void mprotect_dirty(struct region *r, int pct, int pattern)
{
	unsigned long npages = r->len / PAGE, n = nr_written(npages, pct);
	unsigned long i, pg;

	if (pct == 100 && mprotect(r->base, r->len, PROT_READ | PROT_WRITE))
		die("mprotect");
	for (i = 0; i < n; i++) {
		pg = written_page(npages, pct, pattern, i);
		if (pct < 100 && mprotect(r->base + pg * PAGE, PAGE,
					  PROT_READ | PROT_WRITE))
			die("mprotect");
		mp_list[mp_nr++] = pg;
	}
	write_pages(r->base, r->len, pct, pattern);
}

/* The timed operation; returns the number of pages it found */
static unsigned long run(enum mech m, struct region *r)
{
	switch (m) {
	case MW:
		return mw(self_pidfd, r, MEMWATCH_CLEAR_SOFT_DIRTY,
			  PAGE_IS_SOFT_DIRTY);
	case MW_PIDFD:
		return mw(child_pidfd, r, MEMWATCH_CLEAR_SOFT_DIRTY,
			  PAGE_IS_SOFT_DIRTY);
	case SCAN_CR: {
		unsigned long pages = scan(r, 0, PAGE_IS_SOFT_DIRTY);

		clear_refs();
		return pages;
	}
	case PREAD_CR: {
		unsigned long pages = pagemap_read(r);

		clear_refs();
		return pages;
	}
	case UFFD_WP:
		return scan(r, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			    PAGE_IS_WRITTEN);
	case MPROT:
		return mprotect_reset(r);
	case MW_SD:
		return mw(self_pidfd, r, 0, PAGE_IS_SOFT_DIRTY);
	case SCAN_SD:
		return scan(r, 0, PAGE_IS_SOFT_DIRTY);
	case MW_WRITTEN:
		return mw(self_pidfd, r, 0, PAGE_IS_WRITTEN);
	case SCAN_WRITTEN:
		return scan(r, 0, PAGE_IS_WRITTEN);
	case CLEAR_REFS:
		clear_refs();
		return 0;
	case NONE:
		return 0;
	}
	return 0;
}

static void send_cmd(struct cmd *c)
{
	char ack;

	if (write(to_child, c, sizeof(*c)) != sizeof(*c) ||
	    read(from_child, &ack, 1) != 1)
		die("child");
}

static void dirty(struct region *r, int pct, int pattern)
{
	struct cmd c = { .op = OP_DIRTY, .pct = pct, .pattern = pattern };

	if (r->remote)
		send_cmd(&c);
	else if (r->kind == MPROTECT)
		mprotect_dirty(r, pct, pattern);
	else
		write_pages(r->base, r->len, pct, pattern);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void print_result(const char *group, const char *size, int pct,
			 const char *pattern, const char *mech, uint64_t *t,
			 int n, unsigned long pages)
{
	qsort(t, n, sizeof(*t), cmp_u64);
	printf("result %s %s %d %s %s %llu %llu %llu %d %lu\n", group, size,
	       pct, pattern, mech, (unsigned long long)t[n / 2],
	       (unsigned long long)t[0], (unsigned long long)t[n - 1], n,
	       pages);
	fflush(stdout);
}

/*
 * Time @m on @r: one warm-up, then reps runs, each after writing the
 * pattern (untimed) when @redirty. Every run must find @expected pages.
 */
static void measure(const char *group, struct region *r, int pct,
		    int pattern, enum mech m, int redirty,
		    unsigned long expected)
{
	const char *pat = pattern_name(pct, pattern);
	uint64_t t[64], t0;
	unsigned long pages = 0;
	int i, bad = 0;

	if (!have_mw && needs_mw(m))
		return;
	calls = 0;
	for (i = -1; i < reps; i++) {
		if (redirty)
			dirty(r, pct, pattern);
		t0 = now_ns();
		pages = run(m, r);
		if (i >= 0)
			t[i] = now_ns() - t0;
		if (i >= 0 && pages != expected && !bad++)
			printf("mismatch %s %s %d %s %s %lu %lu\n", group,
			       size_name(r->len), pct, pat, mech_name[m],
			       pages, expected);
	}
	print_result(group, size_name(r->len), pct, pat, mech_name[m], t,
		     reps, pages);
	if (calls > (unsigned long)reps + 1)
		printf("info %s %s %d %s %s: %.1f PAGEMAP_SCAN calls per run\n",
		       group, size_name(r->len), pct, pat, mech_name[m],
		       (double)calls / (reps + 1));
}

static void elapsed(const char *what)
{
	printf("info %s done at %.1f s (guest clock)\n", what,
	       (now_ns() - t_start) / 1e9);
}

/* Clear soft-dirty on the whole region, with what the kernel has */
static void reset_sd(struct region *r)
{
	if (have_mw)
		run(MW, r);
	else
		clear_refs();
}

/* Map and populate a region of @kind; the first reset clears everything */
static void region_map(struct region *r, unsigned long len, enum kind kind,
		       int thp, int sparse)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
	};
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_WP };
	char *p;

	memset(r, 0, sizeof(*r));
	p = mmap(NULL, len + HPAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		die("mmap %lu", len);
	r->base = (char *)(((unsigned long)p + HPAGE - 1) & ~(HPAGE - 1));
	r->len = len;
	r->kind = kind;
	r->thp = thp;
	madvise(r->base, len, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	if (!sparse && madvise(r->base, len, MADV_POPULATE_WRITE))
		die("MADV_POPULATE_WRITE");

	switch (kind) {
	case SOFTDIRTY:
		reset_sd(r);
		break;
	case UFFD:
		r->uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		if (r->uffd < 0 || ioctl(r->uffd, UFFDIO_API, &api))
			die("userfaultfd");
		reg.range.start = (unsigned long)r->base;
		reg.range.len = len;
		if (ioctl(r->uffd, UFFDIO_REGISTER, &reg))
			die("UFFDIO_REGISTER");
		run(UFFD_WP, r);
		break;
	case MPROTECT:
		mp_base = r->base;
		mp_len = len;
		mp_list = realloc(mp_list, len / PAGE * sizeof(*mp_list));
		mprotect_reset(r);
		break;
	}
}

static void region_unmap(struct region *r)
{
	struct cmd c = { .op = OP_FREE };

	if (r->remote) {
		send_cmd(&c);
		return;
	}
	if (r->kind == UFFD)
		close(r->uffd);
	munmap(r->base, r->len);
}

static void child_region(struct region *r, unsigned long len, int thp)
{
	struct cmd c = { .op = OP_ALLOC, .len = len, .thp = thp };

	memset(r, 0, sizeof(*r));
	if (write(to_child, &c, sizeof(c)) != sizeof(c) ||
	    read(from_child, &r->base, sizeof(r->base)) != sizeof(r->base))
		die("child alloc");
	r->len = len;
	r->remote = 1;
	mw(child_pidfd, r, MEMWATCH_CLEAR_SOFT_DIRTY, PAGE_IS_SOFT_DIRTY);
}

/* Worst and 99th percentile time of mmap + touch + munmap for @seconds */
static void mmap_loop(double seconds, int out)
{
	static uint64_t lat[1 << 20];
	uint64_t end = now_ns() + seconds * 1e9, t0, t1;
	unsigned long n = 0;
	char *p;

	do {
		t0 = now_ns();
		p = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			die("mmap");
		p[0] = 1;
		munmap(p, 16 * PAGE);
		t1 = now_ns();
		if (n < (1 << 20))
			lat[n++] = t1 - t0;
	} while (t1 < end);
	qsort(lat, n, sizeof(*lat), cmp_u64);
	t0 = lat[n - 1];
	t1 = lat[n * 99 / 100];
	if (write(out, &t0, 8) != 8 || write(out, &t1, 8) != 8 ||
	    write(out, &n, 8) != 8)
		die("loop result");
}

static void child_main(int in, int out)
{
	struct region r = { 0 };
	struct cmd c;
	char ack = 0;

	while (read(in, &c, sizeof(c)) == sizeof(c)) {
		switch (c.op) {
		case OP_ALLOC:
			r.base = mmap(NULL, c.len, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (r.base == MAP_FAILED)
				die("child mmap");
			r.len = c.len;
			madvise(r.base, c.len, c.thp ? MADV_HUGEPAGE :
						      MADV_NOHUGEPAGE);
			/* Latency test (pct): zero pages, pct% written */
			if (madvise(r.base, c.len, c.pct ? MADV_POPULATE_READ :
						   MADV_POPULATE_WRITE))
				die("child populate");
			if (c.pct)
				write_pages(r.base, r.len, c.pct, SCATTERED);
			if (write(out, &r.base, sizeof(r.base)) !=
			    sizeof(r.base))
				die("child");
			continue;
		case OP_DIRTY:
			write_pages(r.base, r.len, c.pct, c.pattern);
			break;
		case OP_FREE:
			munmap(r.base, r.len);
			break;
		case OP_LOOP:
			mmap_loop(c.seconds, out);
			continue;
		case OP_EXIT:
			exit(0);
		}
		if (write(out, &ack, 1) != 1)
			die("child");
	}
	exit(0);
}

static void start_child(void)
{
	int down[2], up[2];

	if (pipe(down) || pipe(up))
		die("pipe");
	child = fork();
	if (child < 0)
		die("fork");
	if (!child) {
		close(down[1]);
		close(up[0]);
		child_main(down[0], up[1]);
	}
	close(down[0]);
	close(up[1]);
	to_child = down[1];
	from_child = up[0];
	child_pidfd = syscall(__NR_pidfd_open, child, 0);
	if (child_pidfd < 0)
		die("pidfd_open");
}

static void stop_child(void)
{
	struct cmd c = { .op = OP_EXIT };

	if (write(to_child, &c, sizeof(c)) != sizeof(c))
		die("child exit");
	waitpid(child, NULL, 0);
}

static const int pcts[] = { 0, 1, 10, 100 };
#define NR_PCTS		(int)(sizeof(pcts) / sizeof(pcts[0]))

/* One pattern for nothing or everything written, two otherwise */
static int one_pattern(int pct)
{
	return pct == 0 || pct == 100;
}


/* find + reset at @len: every mechanism, every density and pattern */
static void bench_reset(unsigned long len)
{
	struct region r, c;
	unsigned long exp;
	int i, pat;

	region_map(&r, len, SOFTDIRTY, 0, 0);
	/* The child's copy serves process_memwatch through a pidfd only */
	if (have_mw)
		child_region(&c, len, 0);
	for (i = 0; i < NR_PCTS; i++) {
		for (pat = SCATTERED; pat <= CLUSTERED; pat++) {
			if (one_pattern(pcts[i]) && pat == CLUSTERED)
				break;
			exp = nr_written(len / PAGE, pcts[i]);
			measure("reset", &r, pcts[i], pat, MW, 1, exp);
			measure("reset", &c, pcts[i], pat, MW_PIDFD, 1, exp);
			measure("reset", &r, pcts[i], pat, SCAN_CR, 1, exp);
			measure("reset", &r, pcts[i], pat, PREAD_CR, 1, exp);
			/* Report alone, on the same written state */
			dirty(&r, pcts[i], pat);
			measure("report", &r, pcts[i], pat, SCAN_SD, 0, exp);
			measure("report", &r, pcts[i], pat, MW_SD, 0, exp);
			reset_sd(&r);
		}
	}
	if (have_mw)
		region_unmap(&c);
	region_unmap(&r);

	region_map(&r, len, UFFD, 0, 0);
	for (i = 0; i < NR_PCTS; i++) {
		for (pat = SCATTERED; pat <= CLUSTERED; pat++) {
			if (one_pattern(pcts[i]) && pat == CLUSTERED)
				break;
			exp = nr_written(len / PAGE, pcts[i]);
			measure("reset", &r, pcts[i], pat, UFFD_WP, 1, exp);
			dirty(&r, pcts[i], pat);
			measure("report", &r, pcts[i], pat, SCAN_WRITTEN, 0,
				exp);
			measure("report", &r, pcts[i], pat, MW_WRITTEN, 0, exp);
			run(UFFD_WP, &r);
		}
	}
	region_unmap(&r);

	region_map(&r, len, MPROTECT, 0, 0);
	for (i = 0; i < NR_PCTS; i++) {
		for (pat = SCATTERED; pat <= CLUSTERED; pat++) {
			if (one_pattern(pcts[i]) && pat == CLUSTERED)
				break;
			exp = nr_written(len / PAGE, pcts[i]);
			measure("reset", &r, pcts[i], pat, MPROT, 1, exp);
		}
	}
	region_unmap(&r);
}

static unsigned long anon_huge_kb(void)
{
	char line[128];
	unsigned long kb = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %lu", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

/* THP-backed memory: soft-dirty trackers report a whole PMD */
static void bench_thp(unsigned long len)
{
	static const enum mech mechs[] = { MW, SCAN_CR, PREAD_CR, UFFD_WP, MPROT };
	static const enum kind kinds[] = { SOFTDIRTY, SOFTDIRTY, SOFTDIRTY,
					   UFFD, MPROTECT };
	struct region r;
	unsigned long exp;
	int i, m;

	for (m = 0; m < 5; m++) {
		if (!have_mw && needs_mw(mechs[m]))
			continue;
		region_map(&r, len, kinds[m], 1, 0);
		printf("info thp %s AnonHugePages %lu kB\n", mech_name[mechs[m]],
		       anon_huge_kb());
		for (i = 1; i < NR_PCTS; i++) {
			/* uffd-wp async splits a THP at its first write */
			exp = mechs[m] == MPROT || mechs[m] == UFFD_WP ?
			      nr_written(len / PAGE, pcts[i]) :
			      thp_expected(len, pcts[i], SCATTERED);
			measure("thp", &r, pcts[i], SCATTERED, mechs[m], 1, exp);
		}
		region_unmap(&r);
	}
}

/*
 * 1,000 pages scattered over 16 TiB (a PMD table and a PTE table each),
 * over 2000 MiB (a PTE table each) and in 4 MiB (two PTE tables).
 */
static void bench_sparse(void)
{
	static const enum mech mechs[] = { MW, MW_SD, SCAN_SD, SCAN_CR };
	unsigned long lens[] = { SPARSE_LEN, SPARSE_PAGES * HPAGE, 4 * MIB };
	struct region r;
	int l, m;

	for (l = 0; l < 3; l++) {
		region_map(&r, lens[l], SOFTDIRTY, 0, 1);
		for (m = 0; m < 4; m++) {
			unsigned long i, npages = r.len / PAGE, pages = 0;
			uint64_t t[64], t0;
			int k, bad = 0;

			if (!have_mw && needs_mw(mechs[m]))
				continue;
			calls = 0;
			for (k = -1; k < reps; k++) {
				for (i = 0; i < SPARSE_PAGES; i++)
					r.base[i * (npages / SPARSE_PAGES) *
					       PAGE] = 1;
				t0 = now_ns();
				pages = run(mechs[m], &r);
				if (k >= 0)
					t[k] = now_ns() - t0;
				if (k >= 0 && pages != SPARSE_PAGES && !bad++)
					printf("mismatch sparse %s %s %lu %d\n",
					       size_name(r.len),
					       mech_name[mechs[m]], pages,
					       SPARSE_PAGES);
			}
			print_result("sparse", size_name(r.len), 0, "1000pages",
				     mech_name[mechs[m]], t, reps, pages);
			if (calls > (unsigned long)reps + 1)
				printf("info sparse %s %s: %.1f PAGEMAP_SCAN calls per run\n",
				       size_name(r.len), mech_name[mechs[m]],
				       (double)calls / (reps + 1));
		}
		region_unmap(&r);
	}
}

/* Cost of the first write to a page after a reset, per page */
static void bench_first_write(unsigned long len)
{
	static const enum mech mechs[] = { MW, CLEAR_REFS, UFFD_WP, MPROT, NONE };
	static const enum kind kinds[] = { SOFTDIRTY, SOFTDIRTY, UFFD,
					   MPROTECT, SOFTDIRTY };
	unsigned long n = 1000, stride = len / PAGE / n, i;
	struct region r;
	uint64_t t[64], t0;
	int m, k;

	for (m = 0; m < 5; m++) {
		if (!have_mw && needs_mw(mechs[m]))
			continue;
		region_map(&r, len, kinds[m], 0, 0);
		for (k = -1; k < reps; k++) {
			run(mechs[m], &r);
			t0 = now_ns();
			for (i = 0; i < n; i++)
				r.base[i * stride * PAGE] += 1;
			if (k >= 0)
				t[k] = (now_ns() - t0) / n;
		}
		print_result("firstwrite", size_name(len), 0, "1000pages",
			     mech_name[mechs[m]], t, reps, n);
		region_unmap(&r);
	}
}

static void bench_ratios(void)
{
	unsigned long sizes[] = { 64 * MIB, 256 * MIB, GIB };
	int s;

	for (s = 0; s < 3; s++) {
		if (quick && s)
			break;
		/* 1 GiB runs take long under TCG: fewer repetitions */
		reps = sizes[s] > 256 * MIB ? 7 : 9;
		bench_reset(sizes[s]);
		elapsed(size_name(sizes[s]));
	}
	reps = 9;
	bench_thp(quick ? 32 * MIB : 256 * MIB);
	elapsed("thp");
	bench_sparse();
	elapsed("sparse");
	bench_first_write(quick ? 32 * MIB : 256 * MIB);
	elapsed("firstwrite");
}

/*
 * Worst latency of mmap/munmap in the target, alone and while the monitor
 * walks 4 GiB of it (zero pages, 1% written) again and again. The worst
 * case follows the host's load, so each of the three runs is repeated in
 * rounds, interleaved: the report takes the median of the rounds.
 */
static void bench_latency(void)
{
	static const enum mech walks[] = { NONE, MW_PIDFD, SCAN_SD };
	unsigned long len = quick ? 256 * MIB : 4 * GIB;
	int rounds = quick ? 1 : 5;
	double seconds = quick ? 2 : 3;
	struct cmd c = { .op = OP_ALLOC, .len = len, .pct = 1 };
	struct region r = { .len = len, .remote = 1 };
	uint64_t worst, p99, n, walks_done, t_walk;
	int w, fd, round;
	char path[64];

	if (write(to_child, &c, sizeof(c)) != sizeof(c) ||
	    read(from_child, &r.base, sizeof(r.base)) != sizeof(r.base))
		die("child alloc");
	mw(child_pidfd, &r, MEMWATCH_CLEAR_SOFT_DIRTY, PAGE_IS_SOFT_DIRTY);
	/* PAGEMAP_SCAN needs the child's pagemap */
	snprintf(path, sizeof(path), "/proc/%d/pagemap", child);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		die("open %s", path);

	for (round = 1; round <= rounds; round++) {
		for (w = 0; w < 3; w++) {
			c.op = OP_LOOP;
			c.seconds = seconds;
			if (write(to_child, &c, sizeof(c)) != sizeof(c))
				die("child loop");
			walks_done = 0;
			t_walk = 0;
			if (walks[w] != NONE) {
				uint64_t end = now_ns() + seconds * 1e9, t0;
				int tmp = pagemap_fd;

				pagemap_fd = fd;
				while ((t0 = now_ns()) < end) {
					if (walks[w] == MW_PIDFD)
						mw(child_pidfd, &r,
						   MEMWATCH_CLEAR_SOFT_DIRTY,
						   PAGE_IS_SOFT_DIRTY);
					else
						scan(&r, 0, PAGE_IS_SOFT_DIRTY);
					t_walk += now_ns() - t0;
					walks_done++;
				}
				pagemap_fd = tmp;
			}
			if (read(from_child, &worst, 8) != 8 ||
			    read(from_child, &p99, 8) != 8 ||
			    read(from_child, &n, 8) != 8)
				die("loop result");
			printf("latency %s %s worst %llu p99 %llu loops %llu walks %llu walk_ns %llu round %d\n",
			       size_name(len), walks[w] == NONE ? "no-walk" :
			       mech_name[walks[w]], (unsigned long long)worst,
			       (unsigned long long)p99, (unsigned long long)n,
			       (unsigned long long)walks_done,
			       (unsigned long long)(walks_done ?
						    t_walk / walks_done : 0),
			       round);
			fflush(stdout);
		}
	}
	close(fd);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_sigaction = segv, .sa_flags = SA_SIGINFO };
	int latency = argc > 1 && !strcmp(argv[1], "latency");

	t_start = now_ns();
	quick = argc > 2 && !strcmp(argv[2], "quick");
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (sigaction(SIGSEGV, &sa, NULL))
		die("sigaction");
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	clear_refs_fd = open("/proc/self/clear_refs", O_WRONLY);
	self_pidfd = syscall(__NR_pidfd_open, getpid(), 0);
	if (pagemap_fd < 0 || clear_refs_fd < 0 || self_pidfd < 0)
		die("open");
	vec = mmap(NULL, VEC_LEN * sizeof(*vec), PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	pm_buf = mmap(NULL, GIB / PAGE * 8, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (vec == MAP_FAILED || pm_buf == MAP_FAILED)
		die("mmap");
	/* The probe: EINVAL with the system call, ENOSYS without */
	have_mw = syscall(__NR_process_memwatch, -1, NULL, 0, 0) < 0 &&
		  errno == EINVAL;
	printf("info process_memwatch %s\n", have_mw ? "yes" : "no");
	start_child();
	if (latency)
		bench_latency();
	else
		bench_ratios();
	stop_child();
	printf("info done\n");
	return 0;
}
