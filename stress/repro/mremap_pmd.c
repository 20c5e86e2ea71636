// SPDX-License-Identifier: GPL-2.0
/*
 * Reproducer: mremap() of a PMD-aligned 2 MiB range of 4 KiB pages moves
 * the whole page table (move_normal_pmd(), CONFIG_HAVE_MOVE_PMD) without
 * marking the moved PTEs soft-dirty, unlike move_ptes(); the destination
 * VMA is a copy of the (cleared) source VMA, so it lacks VM_SOFTDIRTY.
 * process_memwatch() then reports none of the moved pages, although
 * their content at the destination changed.  The unaligned move (page
 * tables copied entry by entry) is reported, as a control.
 *
 * Prints TAP: "ok 1 ..." for the control, "ok 2 ..." when the PMD move is
 * reported.
 */
#define _GNU_SOURCE
#include <sys/mman.h>

#include "../common.h"

#define PMD	(2UL << 20)

static long count_sd(int pidfd, char *p, size_t len)
{
	struct page_region vec[64];
	struct memwatch_arg arg = {
		.start = (uintptr_t)p, .end = (uintptr_t)p + len,
		.vec = (uintptr_t)vec, .vec_len = 64,
		.category_mask = SD, .return_mask = SD,
	};
	long n = process_memwatch(pidfd, &arg, sizeof(arg), 0), i, pages = 0;

	for (i = 0; i < n; i++)
		pages += (vec[i].end - vec[i].start) / 4096;
	return n < 0 ? -errno : pages;
}

static long moved_sd(int pidfd, size_t dst_off)
{
	char *res, *src, *dst;
	struct memwatch_arg arg = { 0 };
	long n;

	res = mmap(NULL, 8 * PMD, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	src = (char *)(((uintptr_t)res + PMD - 1) & ~(PMD - 1));
	dst = src + 4 * PMD + dst_off;
	mmap(src, PMD, PROT_READ | PROT_WRITE,
	     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	madvise(src, PMD, MADV_NOHUGEPAGE);
	memset(src, 1, PMD);
	arg.start = (uintptr_t)src;
	arg.end = (uintptr_t)src + PMD;
	process_memwatch(pidfd, &arg, sizeof(arg), MEMWATCH_CLEAR_SOFT_DIRTY);
	if (count_sd(pidfd, src, PMD))
		printf("# clear did not clear\n");
	if (mremap(src, PMD, PMD, MREMAP_MAYMOVE | MREMAP_FIXED, dst) != dst)
		return -1;
	n = count_sd(pidfd, dst, PMD);
	munmap(res, 9 * PMD);
	return n;
}

int main(void)
{
	int pidfd = sys_pidfd_open(getpid(), 0);
	long n;

	tap_plan(2);
	n = moved_sd(pidfd, 4096);
	tap_result(n == 512, "mremap by PTEs: %ld of 512 moved pages soft-dirty", n);
	n = moved_sd(pidfd, 0);
	tap_result(n == 512, "mremap of a PMD table: %ld of 512 moved pages soft-dirty", n);
	return tap_exit();
}
