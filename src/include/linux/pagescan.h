/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The page-scan engine of PAGEMAP_SCAN (fs/proc/task_mmu.c) and
 * process_memwatch() (mm/memwatch.c): report the pages of a range of an mm
 * that match PAGE_IS_* categories as struct page_region, and change the
 * pages it reports, atomically with the report, when asked to.
 */
#ifndef _LINUX_PAGESCAN_H
#define _LINUX_PAGESCAN_H

#include <linux/bits.h>
#include <linux/types.h>
#include <uapi/linux/fs.h>

struct mm_struct;

/* uffd write-protect the matching written pages (PM_SCAN_WP_MATCHING) */
#define PAGESCAN_WP			BIT(0)
/* fail, before any change, on a VMA without async uffd-wp */
#define PAGESCAN_CHECK_WPASYNC		BIT(1)
/* clear the soft-dirty state of the matching pages */
#define PAGESCAN_CLEAR_SOFT_DIRTY	BIT(2)
/*
 * process_memwatch()'s two category rules that differ from PAGEMAP_SCAN's:
 * an empty entry of a page table is categorised as a missing page table
 * (written only in a uffd-wp VMA), and a file THP only part of which is
 * reported is left whole, never split (splitting unmaps it and drops its
 * soft-dirty bit).
 */
#define PAGESCAN_EMPTY_AS_HOLE		BIT(3)
#define PAGESCAN_KEEP_FILE_THP		BIT(4)

#define PAGESCAN_CHANGE		(PAGESCAN_WP | PAGESCAN_CLEAR_SOFT_DIRTY)

struct pagescan {
	/* [start, end): page aligned, untagged, inside the mm */
	unsigned long start, end;
	/* Stop once this many pages are reported: ULONG_MAX for no limit */
	unsigned long max_pages;
	unsigned long inverted, mask, anyof, return_mask;
	unsigned int flags;		/* PAGESCAN_* */
	struct page_region __user *vec;
	u64 vec_len;
	/* Regions gathered between two copies to vec: 0 for a default */
	unsigned int buf_len;

	/* Results, valid whatever pagescan() returns */
	unsigned long walk_end;		/* nothing at or after it changed */
	long nr_out;			/* regions copied to vec */
	bool changed;			/* an entry or VMA flag changed */
	bool lost;			/* regions found could not be copied */
};

int pagescan(struct mm_struct *mm, struct pagescan *scan);

#endif /* _LINUX_PAGESCAN_H */
