/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * process_memwatch(2): report which pages of a process were written and
 * atomically re-arm soft-dirty tracking on exactly the reported pages.
 *
 * The page categories (PAGE_IS_*) and struct page_region are the ones of
 * the PAGEMAP_SCAN ioctl in <linux/fs.h>, with the same meaning.
 *
 * Differences from PAGEMAP_SCAN, each for a reason given in
 * process_memwatch(2):
 * - An unpopulated page is PAGE_IS_WRITTEN only in a non-hugetlb VMA
 *   registered for uffd-wp, with or without a page table; PAGEMAP_SCAN
 *   also counts an empty PTE of an existing table in any VMA.
 * - max_pages applies with or without vec.
 * - A changing call whose first page is a hugetlb page only partly inside
 *   the range (or beyond max_pages) fails with EINVAL; a range ending
 *   inside a hugetlb page stops at walk_end before it, and a resume there
 *   fails the same way. Round such ranges to the huge page size.
 * - walk_end is end exactly when the whole range was examined, and keeps
 *   the tag bits of start; addresses are untagged for the target's mm.
 * - end below start is EINVAL, and no error is returned once a page
 *   changed.
 * - A file THP only partly inside a changing range is reported and left
 *   unchanged, not split.
 * Both skip only VM_PFNMAP VMAs.
 */
#ifndef _UAPI_LINUX_MEMWATCH_H
#define _UAPI_LINUX_MEMWATCH_H

#include <linux/types.h>
#include <linux/fs.h>

/**
 * struct memwatch_arg - arguments of process_memwatch(2)
 * @start:		First address to examine; must be page aligned.
 *			Untagged with the target's address tagging.
 * @end:		End of the range (exclusive); rounded up to a page.
 *			Give it the same tag as @start.
 * @walk_end:		Output: address just after the last page examined.
 *			Equal to @end exactly when the whole range was
 *			examined; otherwise the caller resumes there.
 *			Carries the tag bits of @start (arm64 TBI, x86 LAM),
 *			so that a resume loop ends; the addresses stored in
 *			@vec are untagged.
 * @vec:		Address of an array of struct page_region that
 *			receives the matching regions, or 0.
 * @vec_len:		Number of entries in @vec; must be 0 when @vec is 0.
 * @max_pages:		Stop after this many matching pages; 0 means no
 *			limit. Applies without @vec too, so it also bounds
 *			the pages a call changes.
 * @category_inverted:	PAGE_IS_* bits whose value is inverted before the
 *			other masks are applied.
 * @category_mask:	PAGE_IS_* bits that must all be set for a page to
 *			match.
 * @category_anyof_mask: PAGE_IS_* bits of which at least one must be set
 *			for a page to match, when non-zero.
 * @return_mask:	PAGE_IS_* bits reported in page_region.categories.
 *
 * Every field is a __u64, so the structure has the same layout for 32-bit
 * and 64-bit callers.  It is extensible: the size of the version a caller
 * knows is passed to the system call, and fields added later are zero for
 * old callers.  Only @walk_end is ever written by the kernel.
 */
struct memwatch_arg {
	__u64 start;
	__u64 end;
	__u64 walk_end;
	__u64 vec;
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};

/* Size of the first published struct memwatch_arg */
#define MEMWATCH_ARG_SIZE_VER0		80

/*
 * Operation flags of process_memwatch(2).
 *
 * MEMWATCH_CLEAR_SOFT_DIRTY: clear the soft-dirty state of every matching
 *	page, atomically with reporting it, so that the next write to the page
 *	makes it soft-dirty again. Pages that do not match, whatever the masks,
 *	keep their state. A page that may be pinned for DMA (checked after its
 *	entry is write-protected) stays writable and soft-dirty; shared hugetlb
 *	is reported but never cleared. The call never splits or merges VMAs:
 *	in a VMA with VM_SOFTDIRTY it first makes every entry of the whole VMA
 *	soft-dirty, then clears the flag on the whole VMA under the mmap write
 *	lock; the holes of that VMA that the call did not report then read
 *	as not soft-dirty, which loses no write: a hole has no content
 *	written through the mapping, and the write that fills it faults.
 * MEMWATCH_WP_MATCHING: write-protect every matching page that lies in a
 *	range registered for asynchronous userfaultfd write-protection, as
 *	PAGEMAP_SCAN's PM_SCAN_WP_MATCHING does.
 * MEMWATCH_CHECK_WPASYNC: fail with EPERM if the range holds a mapping
 *	that is not registered for asynchronous userfaultfd write-protection,
 *	as PAGEMAP_SCAN's PM_SCAN_CHECK_WPASYNC does.
 */
#define MEMWATCH_CLEAR_SOFT_DIRTY	(1U << 0)
#define MEMWATCH_WP_MATCHING		(1U << 1)
#define MEMWATCH_CHECK_WPASYNC		(1U << 2)

#endif /* _UAPI_LINUX_MEMWATCH_H */
