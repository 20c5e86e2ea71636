// SPDX-License-Identifier: GPL-2.0
/*
 * Guest program of bench/profile/run: set up one state, then scan it
 * ITERS times, so that two boots with different ITERS differ by the scans
 * alone. Every tenth page is written, as "10% scattered" in memwatch_bench.
 *
 * Usage: scan MODE PCT ITERS
 *   wr      PAGEMAP_SCAN PAGE_IS_WRITTEN report of 1 GiB, uffd-wp async
 *   sd      PAGEMAP_SCAN PAGE_IS_SOFT_DIRTY report of 1 GiB
 *   wp      PAGEMAP_SCAN PAGE_IS_WRITTEN + PM_SCAN_WP_MATCHING, then the
 *           pages are written again (the faults count too)
 *   mw      process_memwatch(MEMWATCH_CLEAR_SOFT_DIRTY), then the pages
 *           are written again
 *   thp     PAGEMAP_SCAN PAGE_IS_SOFT_DIRTY report of 256 MiB of THPs
 *   sparse  the same over 16 TiB of MAP_NORESERVE with 1,000 pages written
 *   msparse process_memwatch(MEMWATCH_CLEAR_SOFT_DIRTY) of those 16 TiB,
 *           then the 1,000 pages are written again
 * PCT is the share of pages written (1 of every 100 / PCT) for wr, sd,
 * wp and mw.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
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

#define PG		4096UL
#define HPAGE		(2UL << 20)
#define VEC_LEN		(1UL << 18)

static struct page_region vec[VEC_LEN];
static int pagemap;

/* Guest time: under -icount shift=0, one nanosecond per instruction */
static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* PAGEMAP_SCAN over [p, p + len) until the end; returns the regions */
static long scan(char *p, size_t len, unsigned long flags, unsigned long mask)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg), .flags = flags,
		.start = (unsigned long)p, .end = (unsigned long)p + len,
		.vec = (unsigned long)vec, .vec_len = VEC_LEN,
		.category_mask = mask, .return_mask = mask,
	};
	long n, total = 0;

	while (arg.start < arg.end) {
		n = ioctl(pagemap, PAGEMAP_SCAN, &arg);
		if (n < 0)
			die("PAGEMAP_SCAN");
		total += n;
		arg.start = arg.walk_end;
	}
	return total;
}

static void clear_refs(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY);

	if (fd < 0 || write(fd, "4", 1) != 1)
		die("clear_refs");
	close(fd);
}

static void uffd_wp_async(char *p, size_t len)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
	};
	struct uffdio_register reg = {
		.mode = UFFDIO_REGISTER_MODE_WP,
		.range = { (unsigned long)p, len },
	};
	int uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) ||
	    ioctl(uffd, UFFDIO_REGISTER, &reg))
		die("userfaultfd");
	scan(p, len, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
	     PAGE_IS_WRITTEN);
}

static long memwatch_clear(int pidfd, char *p, size_t len)
{
	struct memwatch_arg arg = {
		.start = (unsigned long)p, .end = (unsigned long)p + len,
		.vec = (unsigned long)vec, .vec_len = VEC_LEN,
		.category_mask = PAGE_IS_SOFT_DIRTY,
		.return_mask = PAGE_IS_SOFT_DIRTY,
	};
	long n = syscall(__NR_process_memwatch, pidfd, &arg, sizeof(arg),
			 MEMWATCH_CLEAR_SOFT_DIRTY);

	if (n < 0)
		die("process_memwatch");
	return n;
}

static char *map(size_t len, int flags)
{
	char *p = mmap(NULL, len + HPAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);

	if (p == MAP_FAILED)
		die("mmap");
	return (char *)(((unsigned long)p + HPAGE - 1) & ~(HPAGE - 1));
}

int main(int argc, char **argv)
{
	size_t len = 1UL << 30, i, stride;
	const char *mode;
	int iters, it, pidfd = -1;
	double t = 0, t0;
	long n = 0;
	char *p;

	if (argc != 4)
		return fprintf(stderr, "usage: scan MODE PCT ITERS\n"), 2;
	mode = argv[1];
	stride = atoi(argv[2]) ? 100 / atoi(argv[2]) : 0;
	iters = atoi(argv[3]);
	pagemap = open("/proc/self/pagemap", O_RDONLY);
	if (pagemap < 0)
		die("pagemap");

	if (!strcmp(mode, "thp") || !strcmp(mode, "sparse") ||
	    !strcmp(mode, "msparse")) {
		int thp = !strcmp(mode, "thp"), mw = !strcmp(mode, "msparse");

		len = thp ? 256UL << 20 : 1UL << 44;
		p = map(len, thp ? 0 : MAP_NORESERVE);
		madvise(p, len, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
		for (i = 0; i < len; i += thp ? PG : len / 1024)
			p[i] = 1;
		if (!thp) {
			clear_refs();
			for (i = 0; i < 1000; i++)
				p[len / 1024 * i] = 2;
		}
		if (mw) {
			pidfd = syscall(__NR_pidfd_open, getpid(), 0);
			if (pidfd < 0)
				die("pidfd_open");
		}
		for (it = 0; it < iters; it++) {
			if (!mw) {
				n = scan(p, len, 0, PAGE_IS_SOFT_DIRTY);
				continue;
			}
			n = memwatch_clear(pidfd, p, len);
			for (i = 0; i < 1000; i++)
				p[len / 1024 * i] = 3;
		}
		printf("scan %s: %ld regions\n", mode, n);
		return 0;
	}

	p = map(len, MAP_NORESERVE);
	madvise(p, len, MADV_NOHUGEPAGE);
	memset(p, 1, len);
	if (!strcmp(mode, "wr") || !strcmp(mode, "wp"))
		uffd_wp_async(p, len);
	else
		clear_refs();
	if (!strcmp(mode, "mw")) {
		pidfd = syscall(__NR_pidfd_open, getpid(), 0);
		if (pidfd < 0)
			die("pidfd_open");
	}
	for (i = 0; stride && i < len / PG; i += stride)
		p[i * PG] = 2;
	for (it = 0; it < iters; it++) {
		t0 = now_ns();
		if (!strcmp(mode, "wr"))
			n = scan(p, len, 0, PAGE_IS_WRITTEN);
		else if (!strcmp(mode, "sd"))
			n = scan(p, len, 0, PAGE_IS_SOFT_DIRTY);
		else if (!strcmp(mode, "wp"))
			n = scan(p, len, PM_SCAN_WP_MATCHING, PAGE_IS_WRITTEN);
		else if (!strcmp(mode, "mw"))
			n = memwatch_clear(pidfd, p, len);
		else
			return fprintf(stderr, "scan: unknown mode %s\n", mode), 2;
		t += now_ns() - t0;
		if (!strcmp(mode, "wp") || !strcmp(mode, "mw"))
			for (i = 0; stride && i < len / PG; i += stride)
				p[i * PG] = 3;
	}
	printf("scan %s %s: %ld regions, %.2f ns per PTE in the scans\n",
	       mode, argv[2], n, iters ? t / iters / (len / PG) : 0);
	return 0;
}
