// SPDX-License-Identifier: GPL-2.0
/*
 * scanfail: PAGEMAP_SCAN's write-protect when kernel allocations fail.
 *
 * The memory is two PMDs of anonymous memory registered for asynchronous
 * uffd-wp with unpopulated markers. The first has 16 written pages, and
 * so a page table; the second has none, so PAGEMAP_SCAN's walk meets it
 * as a hole and write-protects it with uffd_wp_range(), which allocates
 * the page tables for the markers. Each round maps the memory anew and
 * calls PAGEMAP_SCAN with PM_SCAN_WP_MATCHING and an output vector over
 * both PMDs; in round N, the N-th failslab or fail_page_alloc site that
 * the call reaches fails (/proc/thread-self/fail-nth), until a round's
 * call reaches fewer than N sites.
 *
 * Rule: a page that is no longer written after the call is in a region
 * the call returned. A call that fails returns none, so it must have
 * changed nothing; walk_end must not be before the last region's end.
 * And the hole's allocation must have failed in some round, with pages
 * of the second PMD left written, or the test did not test it.
 *
 * fail-nth also fails user copies where CONFIG_FAULT_INJECTION_USERCOPY
 * is set, which this test is not about: it skips there.
 *
 * Needs root, debugfs mounted at /sys/kernel/debug, and
 * CONFIG_FAULT_INJECTION, FAILSLAB, FAIL_PAGE_ALLOC and
 * FAULT_INJECTION_DEBUG_FS; skips otherwise.
 *
 * Usage: scanfail [-n MAX_SITES]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/userfaultfd.h>

#include "common.h"
#include "failinject.h"

#define WRITTEN		16
#define VEC_LEN		64

/* A page, a PMD's worth of pages (a page table of 8-byte entries) */
static unsigned long page, pmd_size, len, npages;
static int pagemap_fd;
static char *mem;

static long scan(unsigned long flags, struct page_region *vec, long vec_len,
		 uint64_t *walk_end)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = flags,
		.start = (uintptr_t)mem,
		.end = (uintptr_t)mem + len,
		.vec = (uintptr_t)vec,
		.vec_len = vec_len,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN,
	};
	long ret = ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);

	if (walk_end)
		*walk_end = arg.walk_end;
	return ret;
}

/* Mark the written pages of mem in @w, without changing anything */
static void written(bool *w)
{
	static struct page_region *vec;
	unsigned long p;
	long i, n;

	if (!vec)
		vec = calloc(npages, sizeof(*vec));
	if (!vec)
		abort();
	memset(w, 0, npages);
	n = scan(0, vec, npages, NULL);
	if (n < 0) {
		printf("# report: %s\n", strerror(errno));
		exit(KSFT_FAIL);
	}
	for (i = 0; i < n; i++)
		for (p = vec[i].start; p < vec[i].end; p += page)
			w[(p - (uintptr_t)mem) / page] = true;
}

/* Map the two PMDs anew, register them, write the first 16 pages */
static int map_fresh(int uffd)
{
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_WP };
	static char *area;

	if (area)
		munmap(area, len + pmd_size);
	area = mmap(NULL, len + pmd_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (area == MAP_FAILED)
		return -1;
	mem = (char *)(((uintptr_t)area + pmd_size - 1) & ~(pmd_size - 1));
	if (madvise(mem, len, MADV_NOHUGEPAGE))
		return -1;
	reg.range.start = (uintptr_t)mem;
	reg.range.len = len;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		return -1;
	memset(mem, 1, WRITTEN * page);
	return 0;
}

static int uffd_open(void)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_WP_ASYNC,
	};
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (uffd < 0)
		return -1;
	if (ioctl(uffd, UFFDIO_API, &api)) {
		close(uffd);
		return -1;
	}
	return uffd;
}

int main(int argc, char **argv)
{
	unsigned int nth, max_sites = 200, sites = 0;
	unsigned long lost = 0, failed = 0, bad_walk_end = 0, kept = 0, p;
	bool *before, *after, *reported;
	struct page_region vec[VEC_LEN];
	const char *why;
	uint64_t walk_end;
	long ret, i;
	int uffd, opt, err;

	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt != 'n') {
			fprintf(stderr, "usage: %s [-n MAX_SITES]\n", argv[0]);
			return 2;
		}
		max_sites = atoi(optarg);
	}

	page = sysconf(_SC_PAGESIZE);
	pmd_size = page * (page / 8);
	len = 2 * pmd_size;
	npages = len / page;
	before = calloc(npages, 1);
	after = calloc(npages, 1);
	reported = calloc(npages, 1);
	if (!before || !after || !reported)
		return KSFT_FAIL;
	/* Touched before the first call, whose fault-in must not allocate */
	memset(vec, 0, sizeof(vec));

	tap_plan(2);
	why = setup_injection();
	if (!why && !access(DEBUGFS "/fail_usercopy", F_OK))
		why = "fail-nth would fail user copies too";
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	uffd = uffd_open();
	if (!why && pagemap_fd < 0)
		why = "no /proc/self/pagemap";
	if (!why && uffd < 0)
		why = "no asynchronous uffd-wp";
	if (why) {
		tap_skip("scanfail: write-protect under allocation failure: %s",
			 why);
		tap_skip("scanfail: every site reached, the hole's among them: %s",
			 why);
		return tap_exit();
	}

	for (nth = 1; nth <= max_sites; nth++) {
		if (map_fresh(uffd)) {
			printf("# map: %s\n", strerror(errno));
			return KSFT_FAIL;
		}
		written(before);
		set_fail_nth(nth);
		ret = scan(PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			   vec, VEC_LEN, &walk_end);
		err = errno;
		if (!fail_nth_injected()) {
			set_fail_nth(0);
			break;
		}
		set_fail_nth(0);
		sites = nth;
		written(after);

		memset(reported, 0, npages);
		for (i = 0; i < ret; i++)
			for (p = vec[i].start; p < vec[i].end; p += page)
				reported[(p - (uintptr_t)mem) / page] = true;
		if (ret < 0)
			failed++;
		if (ret > 0 && walk_end < vec[ret - 1].end)
			bad_walk_end++;
		/* The hole's allocation failed, and the call returned */
		if (ret > 0 && after[npages - 1])
			kept++;
		for (i = 0; i < (long)npages; i++) {
			if (!before[i] || after[i] || reported[i])
				continue;
			if (!lost++)
				printf("# site %u: ret %ld (%s), page %ld no longer written and not reported\n",
				       nth, ret, ret < 0 ? strerror(err) : "ok",
				       i);
		}
	}

	tap_result(!lost && !bad_walk_end,
		   "scanfail: write-protect under allocation failure: %u sites, %lu calls failed, %lu pages lost, %lu bad walk_end",
		   sites, failed, lost, bad_walk_end);
	tap_result(sites && nth <= max_sites && kept,
		   "scanfail: every site reached, the hole's among them (%u of at most %u; %lu returned with the hole written)",
		   sites, max_sites, kept);
	return tap_exit();
}
