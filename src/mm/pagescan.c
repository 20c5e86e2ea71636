// SPDX-License-Identifier: GPL-2.0
/*
 * The page-scan engine: walk a range of an mm, report the pages that match
 * PAGE_IS_* categories as struct page_region, and change the pages it
 * reports under the page table lock of the report: install userfaultfd
 * write protection (PAGEMAP_SCAN's PM_SCAN_WP_MATCHING) and clear
 * soft-dirty state (process_memwatch()). Both interfaces are front-ends
 * that check their arguments and call pagescan().
 *
 * Copyright The process_memwatch authors.
 */

#include <linux/dirty_track.h>
#include <linux/hugetlb.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/pagescan.h>
#include <linux/pagewalk.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/swapops.h>
#include <linux/uaccess.h>
#include <linux/userfaultfd_k.h>
#include <asm/tlbflush.h>
#include "internal.h"

/*
 * Default entries of the bounce buffer: 512, as PAGEMAP_SCAN keeps with
 * 4 KiB pages (12 KiB). Each time it fills, the walk drops the mmap lock
 * and comes back down the page tables.
 */
#define PAGESCAN_BUF_LEN	512

/*
 * Work done under one hold of the mmap lock: page tables (or hugetlb pages,
 * holes and VMAs) examined, each PAGESCAN_UNIT, and PMD-mapped THPs, one
 * each. Missing tables inside a VMA are skipped by the page walker without
 * a callback and do not count.
 */
#define PAGESCAN_CHUNK_BUDGET	64
#define PAGESCAN_UNIT		8

/*
 * Address space one mmu notifier invalidation covers: it starts at the
 * first page table that may change and covers this much (or one huge page,
 * if larger); a page table beyond it ends that range and starts the next.
 */
#define PAGESCAN_NOTIFY_SPAN	(PAGESCAN_CHUNK_BUDGET * PMD_SIZE)

/*
 * The categories of a present PTE that come from its uffd-wp and soft-dirty
 * bits or from its VMA. When the masks see no other, none is inverted and
 * there is no any-of mask, a present PTE matches and is reported from those
 * bits alone (pagescan_pmd_entry()).
 */
#define PAGESCAN_SIMPLE_CATS	(PAGE_IS_PRESENT | PAGE_IS_WRITTEN |	\
				 PAGE_IS_SOFT_DIRTY | PAGE_IS_WPALLOWED)

/*
 * Categories no region can have: a present PTE of this kind cannot match
 * (pagescan_walk.present_out), and the sentinel before the bounce buffer,
 * which no region extends
 */
#define PAGESCAN_NO_MATCH	(~0UL)

/* The TLB flush a page table needs after its entries changed */
struct pagescan_flush {
	unsigned long start, end;
};

/* The loops of pagescan_fast(), by quick test and change */
enum pagescan_fast {
	PAGESCAN_SLOW,		/* none: the general loop */
	PAGESCAN_FAST_SD,	/* soft-dirty, reported */
	PAGESCAN_FAST_SD_CLEAR,	/* soft-dirty, reported and cleared */
	PAGESCAN_FAST_WR,	/* written, reported */
	PAGESCAN_FAST_WR_WP,	/* written, reported and write-protected */
};

/* Why the walk of a chunk stopped before the end of the range */
enum pagescan_stop {
	PAGESCAN_WALKING = 0,
	PAGESCAN_STOP_CHUNK,	/* bounce buffer full or budget spent */
	PAGESCAN_STOP_WRLOCK,	/* a VM_SOFTDIRTY VMA needs the write lock */
	PAGESCAN_STOP_FULL,	/* vec full or max_pages found */
	PAGESCAN_STOP_HUGE,	/* hugetlb page partly inside the range */
};

struct pagescan_walk {
	/* Arguments, untagged and normalised */
	unsigned long start, end;
	unsigned long inverted, mask, anyof, return_mask, interest;
	unsigned int flags;

	/* State of the VMA being walked */
	unsigned long vma_cats;
	unsigned long none_cats;	/* an empty entry of a page table */
	unsigned long none_out;		/* none_cats & return_mask */
	unsigned long hole_cats;	/* a missing page table */
	bool none_match, hole_match;
	bool clear_sd;		/* clear soft-dirty on matching pages */
	bool clear_vma;		/* clear VM_SOFTDIRTY of the whole VMA */
	bool wp;		/* uffd-wp matching pages */
	bool need_sd;		/* only soft-dirty entries can match */
	bool need_written;	/* only entries without uffd-wp can match */
	bool simple;		/* the masks see only PAGESCAN_SIMPLE_CATS */
	/*
	 * With simple masks: the categories of a present PTE by its uffd-wp
	 * (bit 0 of the index) and soft-dirty (bit 1 of it) bits, and a bit
	 * mask of those that match.
	 */
	unsigned long present_cats[4];
	unsigned long present_out[4];	/* & return_mask, or NO_MATCH */
	unsigned int present_match;

	/*
	 * Output: cur is the last, possibly open, region of buf (buf[-1]
	 * when there is none), and last the last of the buf_cap entries
	 * this chunk may fill
	 */
	struct page_region *buf, *cur, *last;
	unsigned long buf_len, buf_cap;
	unsigned long pages_left;	/* max_pages less the pages found */
	u64 vec_left;		/* entries of the user vec still free */
	struct page_region __user *vec_out;
	long nr_out;
	bool lost;		/* a copy to vec failed */

	/* Progress */
	struct mm_struct *mm;
	unsigned long walk_end;
	unsigned int budget;
	enum pagescan_stop stop;
	bool changed;		/* a page table or VMA was changed */
	bool wrlocked;		/* this chunk holds the mmap lock for write */
	bool notifying;		/* range is being invalidated */
	struct mmu_notifier_range range;
	/* The flush the page table being walked needs: pagescan_flush_add() */
	struct pagescan_flush tflush;
	const unsigned long *pin_word;	/* pagescan_pin_word() of the VMA */
	/* The TLB flush owed for changed entries: pagescan_flush_tlb() */
	struct vm_area_struct *flush_vma;
	unsigned long flush_start, flush_end;
	bool pending;		/* holds inc_tlb_flush_pending() */
	int err;
};

static __always_inline bool pagescan_match(const struct pagescan_walk *w,
					   unsigned long cats)
{
	cats ^= w->inverted;
	if ((cats & w->mask) != w->mask)
		return false;
	return !w->anyof || (cats & w->anyof);
}

static void pagescan_stop(struct pagescan_walk *w, unsigned long addr,
			  enum pagescan_stop why)
{
	w->walk_end = addr;
	w->stop = why;
}

/*
 * Count @cost of work; stop the chunk after @next when the budget is spent,
 * or early when a writer waits for the mmap lock held for read, so that an
 * mmap() or munmap() of the target waits for about one page table's work
 * at most: a writer is looked for once every PAGESCAN_UNIT of work.
 */
static __always_inline bool pagescan_spend_cost(struct pagescan_walk *w,
						unsigned long next,
						unsigned int cost)
{
	w->budget -= min(w->budget, cost);
	if (w->budget && cost < PAGESCAN_UNIT && w->budget % PAGESCAN_UNIT)
		return false;
	if (w->budget && (w->wrlocked || !mmap_lock_is_contended(w->mm)))
		return false;
	pagescan_stop(w, next, PAGESCAN_STOP_CHUNK);
	return true;
}

static bool pagescan_spend(struct pagescan_walk *w, unsigned long next)
{
	return pagescan_spend_cost(w, next, PAGESCAN_UNIT);
}

static inline enum mmu_notifier_event
pagescan_event(const struct pagescan_walk *w)
{
	if (w->flags & PAGESCAN_CLEAR_SOFT_DIRTY)
		return MMU_NOTIFY_SOFT_DIRTY;
	return MMU_NOTIFY_PROTECTION_VMA;
}

/*
 * The flush of a page table or THP whose entries changed is put off, and
 * done once per chunk (or per VMA or mmu notifier range, when the walk
 * goes on to the next) before the mmap lock is dropped, as
 * change_prot_numa() and uffd_wp_range() put theirs off under the read
 * lock: inc_tlb_flush_pending() is held from before the page table lock
 * of a change until the flush, so that whoever else changes or zaps these
 * entries meanwhile flushes them first. A hugetlb page flushes its own.
 */
static void pagescan_pend(struct pagescan_walk *w)
{
	if (w->pending)
		return;
	inc_tlb_flush_pending(w->mm);
	w->pending = true;
}

/* Stop holding inc_tlb_flush_pending() if no flush is owed */
static void pagescan_unpend(struct pagescan_walk *w)
{
	if (!w->pending || w->flush_end)
		return;
	dec_tlb_flush_pending(w->mm);
	w->pending = false;
}

/* Flush the TLB entries of the pages changed since the last flush */
static void pagescan_flush_tlb(struct pagescan_walk *w)
{
	if (w->flush_end) {
		flush_tlb_range(w->flush_vma, w->flush_start, w->flush_end);
		w->flush_end = 0;
	}
	pagescan_unpend(w);
}

/* Owe the flush of [@start, @end) of @vma, changed: see above */
static void pagescan_owe_flush(struct pagescan_walk *w,
			       struct vm_area_struct *vma,
			       unsigned long start, unsigned long end)
{
	if (w->flush_end && w->flush_vma != vma)
		pagescan_flush_tlb(w);
	if (!w->flush_end) {
		w->flush_vma = vma;
		w->flush_start = start;
	}
	w->flush_end = end;
	w->changed = true;
}

/*
 * Called before the entries of [@addr, @end) may change. Starts the mmu
 * notifier invalidation, from @addr over PAGESCAN_NOTIFY_SPAN from the
 * start of its PMD (or to @end, if further), and never past the end of the
 * range, so that a secondary MMU does not drop the mappings of what the
 * walk will not reach; unless the range started before covers @end. Such a
 * range ends here, once its changes are flushed from the TLB.
 */
static void pagescan_notify(struct pagescan_walk *w, unsigned long addr,
			    unsigned long end)
{
	unsigned long last;

	if (!(w->flags & PAGESCAN_CHANGE))
		return;
	if (w->notifying) {
		if (end <= w->range.end)
			return;
		pagescan_flush_tlb(w);
		mmu_notifier_invalidate_range_end(&w->range);
		w->notifying = false;
	}
	last = (addr & PMD_MASK) + PAGESCAN_NOTIFY_SPAN;
	if (last < addr || last > w->end)
		last = w->end;
	mmu_notifier_range_init(&w->range, pagescan_event(w), 0, w->mm, addr,
				max(last, end));
	mmu_notifier_invalidate_range_start(&w->range);
	w->notifying = true;
}

/* Whether a region from @addr with categories @out extends region @r */
static __always_inline bool pagescan_extends(const struct page_region *r,
					     unsigned long out,
					     unsigned long addr)
{
	return r->end == addr && r->categories == out;
}

/*
 * Report @n pages from @start with categories @out (masked by return_mask)
 * after the region *@cur of the bounce buffer: it extends that region or,
 * with room, opens the next one. Return: false, with nothing done, when
 * the buffer is full.
 */
static __always_inline bool pagescan_region_add(const struct pagescan_walk *w,
						struct page_region **cur,
						unsigned long start,
						unsigned long n,
						unsigned long out)
{
	struct page_region *r = *cur;

	if (!pagescan_extends(r, out, start)) {
		if (r == w->last)
			return false;
		*cur = ++r;
		r->start = start;
		r->categories = out;
	}
	r->end = start + n * PAGE_SIZE;
	return true;
}

/*
 * Return how much of [@addr, @end) can be reported with @cats: all of it,
 * a part cut short by max_pages, or nothing (@addr) when a new region is
 * needed and the buffer is full.
 */
static unsigned long pagescan_fit(const struct pagescan_walk *w,
				  unsigned long cats, unsigned long addr,
				  unsigned long end)
{
	unsigned long left = w->pages_left;

	if (left < (end - addr) >> PAGE_SHIFT)
		end = addr + (left << PAGE_SHIFT);
	if (end == addr || !w->buf)
		return end;

	if (pagescan_extends(w->cur, cats & w->return_mask, addr))
		return end;
	if (w->cur == w->last)
		return addr;
	return end;
}

/*
 * Report [@addr, @end), known to fit under max_pages: it extends the open
 * region or, with room in the buffer, opens the next one; or it is
 * counted, when there is no vec. Return: false, with nothing done, when
 * the buffer is full.
 */
static __always_inline bool pagescan_add_within(struct pagescan_walk *w,
						unsigned long cats,
						unsigned long addr,
						unsigned long end)
{
	if (w->buf && !pagescan_region_add(w, &w->cur, addr,
					   (end - addr) >> PAGE_SHIFT,
					   cats & w->return_mask))
		return false;
	w->pages_left -= (end - addr) >> PAGE_SHIFT;
	return true;
}

/* pagescan_add_within(), or false when [@addr, @end) exceeds max_pages */
static __always_inline bool pagescan_add(struct pagescan_walk *w,
					 unsigned long cats,
					 unsigned long addr, unsigned long end)
{
	if (w->pages_left < (end - addr) >> PAGE_SHIFT)
		return false;
	return pagescan_add_within(w, cats, addr, end);
}

/*
 * Report [@addr, *@end) as far as it fits. Returns true, with *@end moved
 * to where reporting stopped, when the walk must stop there.
 */
static bool pagescan_output(struct pagescan_walk *w, unsigned long cats,
			    unsigned long addr, unsigned long *end)
{
	unsigned long fit = pagescan_fit(w, cats, addr, *end);
	enum pagescan_stop why;

	/* What fits goes in whole: pagescan_fit() applied the same rules */
	if (fit != addr)
		pagescan_add_within(w, cats, addr, fit);
	if (fit == *end)
		return false;

	if (!w->pages_left || w->buf_cap >= w->vec_left)
		why = PAGESCAN_STOP_FULL;
	else
		why = PAGESCAN_STOP_CHUNK;
	pagescan_stop(w, fit, why);
	*end = fit;
	return true;
}

/*
 * A cheap necessary condition for a PTE to match: an empty one matches
 * where the categories of the VMA's empty entries do (computed once per
 * VMA); for another, the usual masks (PAGE_IS_SOFT_DIRTY or
 * PAGE_IS_WRITTEN) decide on one bit of the entry, so most entries are
 * skipped without computing their categories.
 */
static inline bool pagescan_pte_may_match(const struct pagescan_walk *w,
					  pte_t pte)
{
	if (pte_none(pte))
		return w->none_match;
	if (pte_present(pte))
		return (!w->need_sd || pte_soft_dirty(pte)) &&
		       (!w->need_written || !pte_uffd_wp(pte));
	return (!w->need_sd || pte_swp_soft_dirty(pte)) &&
	       (!w->need_written || !pte_swp_uffd_wp_any(pte));
}

/*
 * A quick test for the usual masks: an entry cannot match when the bits of
 * *@mask in its value are all clear, or all set if *@set. With @need_sd only
 * a soft-dirty entry can match (the caller has made sure that an empty one
 * cannot), with @need_written only one that is not write-protected.
 * Return: false where there is no such test, and every entry is tested on
 * its own.
 */
#ifdef CONFIG_X86_64
static inline bool pagescan_quick_test(bool need_sd, bool need_written,
				       u64 *mask, bool *set)
{
	/* Soft-dirty: _PAGE_SOFT_DIRTY if present, _PAGE_SWP_SOFT_DIRTY if not */
	if (need_sd && _PAGE_SOFT_DIRTY) {
		*mask = _PAGE_SOFT_DIRTY | _PAGE_SWP_SOFT_DIRTY;
		*set = false;
		return true;
	}
	/* Write-protected for sure: present with _PAGE_UFFD_WP */
	if (need_written && _PAGE_UFFD_WP) {
		*mask = _PAGE_PRESENT | _PAGE_UFFD_WP;
		*set = true;
		return true;
	}
	return false;
}
#else
static inline bool pagescan_quick_test(bool need_sd, bool need_written,
				       u64 *mask, bool *set)
{
	return false;
}
#endif

/*
 * Entries tested at once by pagescan_skip(): a quarter, or a group of four
 * quarters (128 bytes of 8-byte entries, two cache lines if aligned)
 */
#define PAGESCAN_QUARTER	4
#define PAGESCAN_GROUP		16

/*
 * The OR (the AND, if @set) of the values of four entries at @g. The reads
 * are plain, so that they fold into the arithmetic: they only pick the
 * entries that are read again, with ptep_get(), and tested on their own.
 */
static __always_inline u64 pagescan_fold4(const pte_t *g, bool set)
{
	if (set) {
		/* Racy reads: see above */
		return data_race(pte_val(g[0]) & pte_val(g[1]) &
				 pte_val(g[2]) & pte_val(g[3]));
	}
	/* Racy reads: see above */
	return data_race(pte_val(g[0]) | pte_val(g[1]) | pte_val(g[2]) |
			 pte_val(g[3]));
}

/* The value of the entry at @pte, read as pagescan_fold4() reads them */
static __always_inline u64 pagescan_peek(const pte_t *pte)
{
	/* Racy read: the entry is read again if it may match */
	return data_race(pte_val(*pte));
}

/* Whether a value, or the fold of values, may match: see pagescan_skip() */
static __always_inline bool pagescan_hit(u64 v, u64 mask, bool set)
{
	return (set ? ~v : v) & mask;
}

/*
 * Which of the four entries at @g hits first, when their fold does: the
 * fourth is not tested, the fold says it hits if the others do not. The
 * entries are read again, with ptep_get(): the values of the fold would
 * have to be kept in registers that the loop of a group needs.
 */
static __always_inline unsigned long pagescan_first4(pte_t *g,
						     u64 mask, bool set)
{
	if (pagescan_hit(pte_val(ptep_get(g)), mask, set))
		return 0;
	if (pagescan_hit(pte_val(ptep_get(g + 1)), mask, set))
		return 1;
	if (pagescan_hit(pte_val(ptep_get(g + 2)), mask, set))
		return 2;
	return 3;
}

/* Which of the four entries at @g has a bit of @mask set first, or 4 */
static __always_inline unsigned int pagescan_each4(pte_t *g, u64 mask)
{
	if (pagescan_peek(g) & mask)
		return 0;
	if (pagescan_peek(g + 1) & mask)
		return 1;
	if (pagescan_peek(g + 2) & mask)
		return 2;
	if (pagescan_peek(g + 3) & mask)
		return 3;
	return 4;
}

/*
 * The quick test: an entry whose bits of @mask are all clear (all set, if
 * @set) cannot match. pagescan_skip() finds the first entry from @p that
 * may, or @end: it tests the three quarters of a group that follow @p first,
 * since written pages cluster (pagescan_near(), which returns the index of
 * the entry, or 12), then a group at a time (pagescan_far()). The entries
 * of a group are tested on the OR (the AND, if @set) of their values, and
 * the quarter that hits, then the entry, picked from the folds without a
 * loop; near entries with a bit that must be set are tested one by one,
 * which costs no more than the fold. The reads are written out, so that
 * every build runs them unrolled. An entry returned may not match after
 * all: the caller reads it again and tests it in full.
 */
static __always_inline unsigned int pagescan_near(pte_t *p, u64 mask,
						  bool set)
{
	unsigned int k;

	if (!set) {
		k = pagescan_each4(p, mask);
		if (k < 4)
			return k;
		k = pagescan_each4(p + 4, mask);
		if (k < 4)
			return 4 + k;
		return 8 + pagescan_each4(p + 8, mask);
	}
	if (pagescan_hit(pagescan_fold4(p, set), mask, set))
		return pagescan_first4(p, mask, set);
	if (pagescan_hit(pagescan_fold4(p + 4, set), mask, set))
		return 4 + pagescan_first4(p + 4, mask, set);
	if (pagescan_hit(pagescan_fold4(p + 8, set), mask, set))
		return 8 + pagescan_first4(p + 8, mask, set);
	return 3 * PAGESCAN_QUARTER;
}

/* The first entry from @p to @end that may match, a group at a time */
static __always_inline pte_t *pagescan_far(pte_t *p, pte_t *end, u64 mask,
					   bool set)
{
	u64 q0, q1, q2, q3;

	for (; end - p >= PAGESCAN_GROUP; p += PAGESCAN_GROUP) {
		q0 = pagescan_fold4(p, set);
		q1 = pagescan_fold4(p + 4, set);
		q2 = pagescan_fold4(p + 8, set);
		q3 = pagescan_fold4(p + 12, set);
		if (!pagescan_hit(set ? q0 & q1 & q2 & q3 : q0 | q1 | q2 | q3,
				  mask, set))
			continue;
		if (pagescan_hit(q0, mask, set))
			return p + pagescan_first4(p, mask, set);
		if (pagescan_hit(q1, mask, set))
			return p + 4 + pagescan_first4(p + 4, mask, set);
		if (pagescan_hit(q2, mask, set))
			return p + 8 + pagescan_first4(p + 8, mask, set);
		return p + 12 + pagescan_first4(p + 12, mask, set);
	}
	for (; end - p >= PAGESCAN_QUARTER; p += PAGESCAN_QUARTER)
		if (pagescan_hit(pagescan_fold4(p, set), mask, set))
			return p + pagescan_first4(p, mask, set);
	for (; p < end; p++)
		if (pagescan_hit(pagescan_peek(p), mask, set))
			return p;
	return end;
}

/* The first entry from @p to @end that may match */
static __always_inline pte_t *pagescan_skip(pte_t *p, pte_t *end, u64 mask,
					    bool set)
{
	unsigned int k;

	if (p + 3 * PAGESCAN_QUARTER <= end) {
		k = pagescan_near(p, mask, set);
		if (k < 3 * PAGESCAN_QUARTER)
			return p + k;
		p += 3 * PAGESCAN_QUARTER;
	}
	return pagescan_far(p, end, mask, set);
}

/*
 * Whether PTE @b is present with the categories of present PTE @a, for
 * masks that see only PAGESCAN_SIMPLE_CATS; pagescan_same_bits4(), whether
 * the four PTEs at @b all are. On x86_64, a swap or empty entry has neither
 * _PAGE_PRESENT nor _PAGE_PROTNONE, and the four are tested on the OR of
 * their differences from @a.
 */
#ifdef CONFIG_X86_64
#define PAGESCAN_SAME_BITS	(_PAGE_PRESENT | _PAGE_PROTNONE | \
				 _PAGE_UFFD_WP | _PAGE_SOFT_DIRTY)

static inline bool pagescan_same_bits(pte_t a, pte_t b)
{
	return !((pte_val(a) ^ pte_val(b)) & PAGESCAN_SAME_BITS);
}

static __always_inline bool pagescan_same_bits4(pte_t a, pte_t *b)
{
	u64 v = pte_val(a);

	return !(((pte_val(ptep_get(b)) ^ v) | (pte_val(ptep_get(b + 1)) ^ v) |
		  (pte_val(ptep_get(b + 2)) ^ v) |
		  (pte_val(ptep_get(b + 3)) ^ v)) & PAGESCAN_SAME_BITS);
}
#else
static inline bool pagescan_same_bits(pte_t a, pte_t b)
{
	return pte_present(b) && !pte_uffd_wp(a) == !pte_uffd_wp(b) &&
	       !pte_soft_dirty(a) == !pte_soft_dirty(b);
}

static __always_inline bool pagescan_same_bits4(pte_t a, pte_t *b)
{
	return pagescan_same_bits(a, ptep_get(b)) &&
	       pagescan_same_bits(a, ptep_get(b + 1)) &&
	       pagescan_same_bits(a, ptep_get(b + 2)) &&
	       pagescan_same_bits(a, ptep_get(b + 3));
}
#endif

/*
 * Which of w->present_cats[] a present PTE has: bit 0 for uffd-wp, bit 1
 * for soft-dirty. On x86_64, the two bits are next to each other in the
 * entry.
 */
static __always_inline unsigned int pagescan_present_kind(pte_t pte)
{
#ifdef CONFIG_X86_64
	if (_PAGE_UFFD_WP && _PAGE_SOFT_DIRTY == _PAGE_UFFD_WP << 1)
		return (pte_val(pte) / (_PAGE_UFFD_WP ?: 1)) & 3;
#endif
	return (pte_uffd_wp(pte) ? 1 : 0) | (pte_soft_dirty(pte) ? 2 : 0);
}

static unsigned long pagescan_pte_cats(const struct pagescan_walk *w,
				       struct vm_area_struct *vma,
				       unsigned long addr, pte_t pte)
{
	unsigned long cats;

	if (pte_present(pte)) {
		struct page *page;

		cats = PAGE_IS_PRESENT;
		if (!pte_uffd_wp(pte))
			cats |= PAGE_IS_WRITTEN;
		if (pte_soft_dirty(pte))
			cats |= PAGE_IS_SOFT_DIRTY;
		if (is_zero_pfn(pte_pfn(pte)))
			cats |= PAGE_IS_PFNZERO;
		if (w->interest & PAGE_IS_FILE) {
			page = vm_normal_page(vma, addr, pte);
			if (page && !PageAnon(page))
				cats |= PAGE_IS_FILE;
		}
	} else {
		swp_entry_t entry = pte_to_swp_entry(pte);

		cats = PAGE_IS_SWAPPED;
		if (!pte_swp_uffd_wp_any(pte))
			cats |= PAGE_IS_WRITTEN;
		if (pte_swp_soft_dirty(pte))
			cats |= PAGE_IS_SOFT_DIRTY;
		if ((w->interest & PAGE_IS_FILE) && is_pfn_swap_entry(entry) &&
		    !folio_test_anon(pfn_swap_entry_folio(entry)))
			cats |= PAGE_IS_FILE;
	}
	return cats;
}

/*
 * A swap PTE cleaned of soft-dirty; a writable migration, device-private or
 * device-exclusive entry also loses write permission (pte_swp_wrprotect())
 */
static pte_t pagescan_swp_clean(pte_t pte)
{
	return pte_swp_clear_soft_dirty(pte_swp_wrprotect(pte));
}

/*
 * A page that may be pinned for DMA can be written through the pin without
 * a fault, whatever its PTE says, so its soft-dirty state is never cleared:
 * in a COW mapping write-protecting it would also break the pin on the next
 * write fault, and in a shared mapping an O_DIRECT read into it would go
 * unreported. pagescan_pte_pinned() looks up the folio of an entry only
 * when the MMF_HAS_PINNED bit of its pagescan_pin_word() is set.
 *
 * The word for a COW mapping is its mm's flags: a page this mm writes
 * through it is pinned writable only through this mm, exclusive (GUP
 * unshares it first), which then has MMF_HAS_PINNED; the folio lookup is
 * skipped in the common case, as clear_refs does. Any page of another
 * mapping may be pinned: its word has every bit set.
 */
static const unsigned long pagescan_may_pin = ~0UL;

static inline const unsigned long *pagescan_pin_word(struct vm_area_struct *vma)
{
	BUILD_BUG_ON(MMF_HAS_PINNED >= BITS_PER_LONG);
	if (is_cow_mapping(vma->vm_flags))
		return &vma->vm_mm->flags;
	return &pagescan_may_pin;
}

static __always_inline bool pagescan_pte_pinned(struct vm_area_struct *vma,
						const unsigned long *pin_word,
						unsigned long addr, pte_t ptent)
{
	struct folio *folio;

	if (likely(!test_bit(MMF_HAS_PINNED, pin_word)))
		return false;
	folio = vm_normal_folio(vma, addr, ptent);
	return folio && folio_maybe_dma_pinned(folio);
}

/*
 * Clear the soft-dirty state of one matching present PTE that is soft-dirty
 * or writable. A pinned page keeps its write access and is made soft-dirty
 * instead, so that it keeps being reported while it is pinned. @pin_word:
 * pagescan_pin_word() of @vma.
 *
 * GUP-fast pins a page without the page table lock and then reads the entry
 * again, dropping the pin if it changed. So the pin is tested only once the
 * entry is really empty (ptep_get_and_clear(), not the intermediate entry of
 * ptep_modify_prot_start(), which stays present and writable on some
 * architectures), after a full barrier: either GUP-fast sees the change and
 * backs off, or the pin is seen here (as KSM's write_protect_page() does).
 * Tested first, a pin taken in between would let a DMA write the page behind
 * a clean entry.
 */
static __always_inline void pagescan_clean_present(struct vm_area_struct *vma,
						   const unsigned long *pin_word,
						   unsigned long addr, pte_t *pte)
{
	struct mm_struct *mm = vma->vm_mm;
	pte_t old, new;

	old = ptep_get_and_clear(mm, addr, pte);
	/* Pairs with the barrier after GUP-fast takes its pin */
	smp_mb();
	if (pagescan_pte_pinned(vma, pin_word, addr, old))
		new = pte_mksoft_dirty(old);
	else
		new = pte_clear_soft_dirty(pte_wrprotect(old));
	set_pte_at(mm, addr, pte, new);
}

/*
 * pagescan_clean_present() for a matching present PTE of value @ptent, if
 * it is soft-dirty or writable. Return: true if the PTE changed and the
 * TLB needs a flush.
 */
static __always_inline bool pagescan_clear_present(struct vm_area_struct *vma,
						   const unsigned long *pin_word,
						   unsigned long addr,
						   pte_t *pte, pte_t ptent)
{
	if (!IS_ENABLED(CONFIG_MEM_SOFT_DIRTY))
		return false;
	if (!pte_soft_dirty(ptent) && !pte_write(ptent))
		return false;
	pagescan_clean_present(vma, pin_word, addr, pte);
	return true;
}

/*
 * Clear the soft-dirty state of one matching PTE: a present one with
 * pagescan_clear_present(), a swap or migration entry in place.
 * Return: true if a present PTE changed and the TLB needs a flush.
 */
static bool pagescan_clear_pte(struct vm_area_struct *vma, unsigned long addr,
			       pte_t *pte, pte_t ptent)
{
	pte_t new;

	if (!pte_present(ptent)) {
		new = pagescan_swp_clean(ptent);
		if (!pte_same(new, ptent))
			set_pte_at(vma->vm_mm, addr, pte, new);
		return false;
	}
	return pagescan_clear_present(vma, pagescan_pin_word(vma), addr, pte,
				      ptent);
}

/* Clear soft-dirty and/or uffd-wp one matching PTE; true if TLB flush */
static bool pagescan_change_pte(struct pagescan_walk *w,
				struct vm_area_struct *vma, unsigned long addr,
				pte_t *pte, pte_t ptent, unsigned long cats)
{
	bool flush = false;
	pte_t cur = ptent;

	if (!w->clear_sd && !w->wp)
		return false;
	if (w->clear_sd && !pte_none(ptent))
		flush = pagescan_clear_pte(vma, addr, pte, ptent);
	if (w->wp && (cats & PAGE_IS_WRITTEN)) {
		if (w->clear_sd)
			cur = ptep_get(pte);
		make_uffd_wp_pte(vma, addr, pte, cur);
		flush |= pte_present(cur);
	}
	if (flush || !pte_same(ptep_get(pte), ptent))
		w->changed = true;
	return flush;
}

/*
 * The run of present PTEs from @pte with the categories of the first, of
 * value @first, given by their bits alone (pagescan_same_bits()): how many
 * entries, at most @left but at least one.
 */
static __always_inline unsigned long pagescan_run(pte_t *pte, pte_t first,
						  unsigned long left)
{
	unsigned long n;

	/* A page on its own is told by one entry, a long run four at once */
	if (left < 2 || !pagescan_same_bits(first, ptep_get(pte + 1)))
		return 1;
	for (n = 2; n + 4 <= left; n += 4)
		if (!pagescan_same_bits4(first, pte + n))
			break;
	for (; n < left; n++)
		if (!pagescan_same_bits(first, ptep_get(pte + n)))
			break;
	return n;
}

/*
 * Clear the soft-dirty state of the @nr matching present PTEs from @pte,
 * mapping from @addr of @vma. Out of line: the loop of the page table is
 * short of registers, this one is not.
 * Return: true if the TLB needs a flush.
 */
static noinline bool pagescan_clear_run(struct vm_area_struct *vma,
					unsigned long addr, pte_t *pte,
					unsigned long nr)
{
	/* Read once: the barrier of each entry would read it again */
	const unsigned long *pin_word = pagescan_pin_word(vma);
	bool flush = false;
	pte_t *end;

	for (end = pte + nr; pte < end; pte++, addr += PAGE_SIZE)
		flush |= pagescan_clear_present(vma, pin_word, addr, pte,
						ptep_get(pte));
	return flush;
}

/*
 * pagescan_change_pte() for @nr matching present PTEs from @pte, the first
 * of value @first, mapping from @addr, all with categories @cats from
 * their bits alone: each takes one of the two changes directly.
 * @clear_sd, @wp: those of @w, at least one set, read once for the page
 * table.
 * Return: true if the TLB needs a flush.
 */
static __always_inline bool pagescan_change_run(struct pagescan_walk *w,
						struct vm_area_struct *vma,
						unsigned long addr, pte_t *pte,
						pte_t first, unsigned long nr,
						unsigned long cats, bool clear_sd,
						bool wp)
{
	bool flush = false;
	unsigned long k;

	if (!wp) {
		/* A page on its own is cleared inline: a call costs more */
		if (nr == 1)
			return pagescan_clear_present(vma, w->pin_word, addr,
						      pte, first);
		return pagescan_clear_run(vma, addr, pte, nr);
	}
	if (!clear_sd) {
		if (!(cats & PAGE_IS_WRITTEN))
			return false;
		for (k = 0; k < nr; k++, addr += PAGE_SIZE)
			make_uffd_wp_pte_present(vma, addr, pte + k);
		return true;
	}
	for (k = 0; k < nr; k++, addr += PAGE_SIZE)
		flush |= pagescan_change_pte(w, vma, addr, pte + k,
					     ptep_get(pte + k), cats);
	return flush;
}

#ifdef CONFIG_TRANSPARENT_HUGEPAGE
static unsigned long pagescan_pmd_cats(const struct pagescan_walk *w,
				       struct vm_area_struct *vma,
				       unsigned long addr, pmd_t pmd)
{
	unsigned long cats = PAGE_IS_HUGE;

	if (pmd_present(pmd)) {
		struct page *page;

		cats |= PAGE_IS_PRESENT;
		if (!pmd_uffd_wp(pmd))
			cats |= PAGE_IS_WRITTEN;
		if (pmd_soft_dirty(pmd))
			cats |= PAGE_IS_SOFT_DIRTY;
		if (is_huge_zero_pmd(pmd))
			cats |= PAGE_IS_PFNZERO;
		if (w->interest & PAGE_IS_FILE) {
			page = vm_normal_page_pmd(vma, addr, pmd);
			if (page && !PageAnon(page))
				cats |= PAGE_IS_FILE;
		}
	} else {
		swp_entry_t entry = pmd_to_swp_entry(pmd);

		cats |= PAGE_IS_SWAPPED;
		if (!pmd_swp_uffd_wp(pmd))
			cats |= PAGE_IS_WRITTEN;
		if (pmd_swp_soft_dirty(pmd))
			cats |= PAGE_IS_SOFT_DIRTY;
		if ((w->interest & PAGE_IS_FILE) && is_pfn_swap_entry(entry) &&
		    !folio_test_anon(pfn_swap_entry_folio(entry)))
			cats |= PAGE_IS_FILE;
	}
	return cats;
}

static bool pagescan_pmd_needs_change(const struct pagescan_walk *w,
				      pmd_t pmd, unsigned long cats)
{
	if (w->wp && (cats & PAGE_IS_WRITTEN))
		return true;
	if (!w->clear_sd)
		return false;
	if (pmd_present(pmd))
		return pmd_soft_dirty(pmd) || pmd_write(pmd);
	return pmd_swp_soft_dirty(pmd) ||
	       swp_entry_writable(pmd_to_swp_entry(pmd));
}

static void pagescan_change_pmd(struct pagescan_walk *w,
				struct vm_area_struct *vma, unsigned long addr,
				pmd_t *pmdp, unsigned long cats)
{
	pmd_t pmd = pmdp_get(pmdp);

	if (w->clear_sd) {
		if (pmd_present(pmd)) {
			/*
			 * As pagescan_clear_pte(): the pin test comes last.
			 * pmdp_invalidate(), not a clear: a PMD must never
			 * look empty to MADV_DONTNEED under the read lock.
			 */
			pmd = pmdp_invalidate(vma, addr, pmdp);
			/* Pairs with the barrier after GUP-fast takes its pin */
			smp_mb();
			if (folio_maybe_dma_pinned(page_folio(pmd_page(pmd))))
				pmd = pmd_mksoft_dirty(pmd);
			else
				pmd = pmd_clear_soft_dirty(pmd_wrprotect(pmd));
			set_pmd_at(vma->vm_mm, addr, pmdp, pmd);
		} else {
			clear_soft_dirty_pmd(vma, addr, pmdp);
		}
	}
	if (w->wp && (cats & PAGE_IS_WRITTEN))
		make_uffd_wp_pmd(vma, addr, pmdp);
}

/*
 * Handle a PMD-mapped THP (or a PMD migration entry) in [@addr, @end).
 * Return: -EAGAIN when there is none, or after splitting it, so that the
 * caller walks the PTEs; otherwise 1 to stop the walk, or 0.
 */
static int pagescan_thp_entry(pmd_t *pmd, unsigned long addr,
			      unsigned long end, struct mm_walk *walk)
{
	struct pagescan_walk *w = walk->private;
	struct vm_area_struct *vma = walk->vma;
	unsigned long haddr = addr & HPAGE_PMD_MASK;
	unsigned long cats, fit = addr;
	spinlock_t *ptl;		/* page table lock */
	pmd_t pmdval;
	bool change;

	ptl = pmd_trans_huge_lock(pmd, vma);
	if (!ptl)
		return -EAGAIN;

	pmdval = pmdp_get(pmd);
	cats = w->vma_cats | pagescan_pmd_cats(w, vma, addr, pmdval);
	if (!pagescan_match(w, cats))
		goto out_unlock;

	change = (w->clear_sd || w->wp) &&
		 pagescan_pmd_needs_change(w, pmdval, cats);
	if (change)
		fit = pagescan_fit(w, cats, addr, end);
	if (change && fit != addr &&
	    (addr != haddr || fit != haddr + HPAGE_PMD_SIZE)) {
		/*
		 * Only part of the THP is covered or can be reported. An
		 * anonymous THP is split, keeping its state in every PTE,
		 * and walked again as PTEs. Splitting the PMD of a file
		 * THP unmaps it: the range then reads as a hole, written in
		 * a uffd-wp VMA, but the soft-dirty bit is lost. When
		 * clearing soft-dirty, or with PAGESCAN_KEEP_FILE_THP, leave
		 * it as it is, reported and still soft-dirty (explicitly so,
		 * in a VMA whose VM_SOFTDIRTY the call clears).
		 */
		if (vma_is_anonymous(vma) ||
		    !(w->clear_sd || (w->flags & PAGESCAN_KEEP_FILE_THP))) {
			spin_unlock(ptl);
			split_huge_pmd(vma, pmd, addr);
			return -EAGAIN;
		}
		pagescan_output(w, cats, addr, &end);
		goto out_unlock;
	}

	if (!pagescan_add(w, cats, addr, end) &&
	    pagescan_output(w, cats, addr, &end) && end == addr)
		goto out_unlock;
	if (change) {
		pagescan_change_pmd(w, vma, haddr, pmd, cats);
		pagescan_owe_flush(w, vma, haddr, haddr + HPAGE_PMD_SIZE);
	}
out_unlock:
	spin_unlock(ptl);
	return w->stop ? 1 : 0;
}
#else
static int pagescan_thp_entry(pmd_t *pmd, unsigned long addr,
			      unsigned long end, struct mm_walk *walk)
{
	return -EAGAIN;
}
#endif /* CONFIG_TRANSPARENT_HUGEPAGE */

static __always_inline void pagescan_flush_add(struct pagescan_flush *f,
					       unsigned long start,
					       unsigned long end)
{
	if (!f->end)
		f->start = start;
	f->end = end;
}

/*
 * Report and change the run of present entries from @pte, of value
 * @ptent and categories @cats, at most @left, for pagescan_ptes(): the
 * entries that follow with the same bits have the same categories, so
 * the run is reported and changed at once, up to max_pages. *@n is set
 * to the entries done. Return: true when the walk stops.
 */
static __always_inline bool pagescan_ptes_run(struct pagescan_walk *w,
					      struct vm_area_struct *vma,
					      pte_t *pte, unsigned long addr,
					      pte_t ptent, unsigned long left,
					      unsigned long cats,
					      bool clear_sd, bool wp,
					      unsigned long *n)
{
	bool change = clear_sd || wp, stop;
	unsigned long next;

	*n = pagescan_run(pte, ptent, left);
	next = addr + *n * PAGE_SIZE;
	if (likely(*n <= w->pages_left &&
		   pagescan_add_within(w, cats, addr, next))) {
		if (change &&
		    pagescan_change_run(w, vma, addr, pte, ptent, *n, cats,
					clear_sd, wp))
			pagescan_flush_add(&w->tflush, addr, next);
		return false;
	}
	stop = pagescan_output(w, cats, addr, &next);
	*n = (next - addr) >> PAGE_SHIFT;
	if (change && *n &&
	    pagescan_change_run(w, vma, addr, pte, ptent, *n, cats, clear_sd,
				wp))
		pagescan_flush_add(&w->tflush, addr, next);
	return stop;
}

/*
 * pagescan_run() out of line, for pagescan_fast(): a run is measured once,
 * a loop of its own keeps the values of four entries in registers.
 */
static noinline unsigned long pagescan_run_len(pte_t *pte, pte_t first,
					       unsigned long left)
{
	return pagescan_run(pte, first, left);
}

/*
 * pagescan_pte_may_match() out of line, for the non-present entries of the
 * loop of pagescan_fast(): it meets few but markers, and keeps its
 * registers.
 */
static noinline bool pagescan_may_match(const struct pagescan_walk *w,
					pte_t ptent)
{
	return pagescan_pte_may_match(w, ptent);
}

/*
 * The loop of pagescan_ptes() for simple masks with a quick test and a
 * bounce buffer (pagescan_fast_loop()), from entry @i of the @nr at @pte,
 * mapping from @addr: it reports and changes the present entries that
 * match, skips those that do not, and returns the index of the first entry
 * it leaves to the general loop (one that is not present and may match, a
 * run that does not fit whole under max_pages, or a region the buffer has
 * no room for), or @nr. @set: as pagescan_quick_test() gives it; @clear_sd,
 * @wp: those of @w, not both.
 *
 * A matching present entry has the soft-dirty bit with @clear_sd, and no
 * uffd-wp bit with @wp; an empty one takes a marker with @wp: the entry
 * of every page it reports is rewritten (a pinned page's, soft-dirty
 * again), and the flush covers them from the first to the last. Its state
 * lives in registers: the output pointer and max_pages left, and the
 * address of an entry computed from the address of the entry itself.
 */
static __always_inline unsigned long
pagescan_fast(struct pagescan_walk *w, struct vm_area_struct *vma,
	      pte_t *pte, unsigned long addr, unsigned long i,
	      unsigned long nr, u64 qmask, bool set, bool clear_sd, bool wp)
{
	/* The address an entry maps: base + its own address * ratio */
	const unsigned long ratio = PAGE_SIZE / sizeof(pte_t);
	unsigned long base = addr - (unsigned long)pte * ratio;
	unsigned long left = w->pages_left, a, n, out;
	struct page_region *cur = w->cur, *first = cur;
	unsigned long first_end = cur->end;
	pte_t *p = pte + i, *end = pte + nr;
	unsigned int k;
	pte_t ptent;

	for (;;) {
		if (p + 3 * PAGESCAN_QUARTER <= end) {
			k = pagescan_near(p, qmask, set);
			if (k < 3 * PAGESCAN_QUARTER) {
				p += k;
				goto hit;
			}
			p += 3 * PAGESCAN_QUARTER;
		}
		p = pagescan_far(p, end, qmask, set);
		if (p == end)
			break;
hit:
		ptent = ptep_get(p);
		if (!pte_present(ptent)) {
			/*
			 * Empty entries pass the written test, and match
			 * where the VMA says so: reported as a run.
			 */
			if (set && pte_none(ptent) && w->none_match) {
				for (n = 1; p + n < end; n++)
					if (!pte_none(ptep_get(p + n)))
						break;
				if (n > left)
					break;
				a = base + (unsigned long)p * ratio;
				if (!pagescan_region_add(w, &cur, a, n,
							 w->none_out))
					break;
				left -= n;
				for (k = 0; wp && k < n; k++)
					make_uffd_wp_pte(vma, a + k * PAGE_SIZE,
							 p + k, ptep_get(p + k));
				p += n;
				continue;
			}
			if (pagescan_may_match(w, ptent))
				break;
			p++;
			continue;
		}
		out = w->present_out[pagescan_present_kind(ptent)];
		if (out == PAGESCAN_NO_MATCH) {
			p++;
			continue;
		}
		/*
		 * An entry that fails the quick test ends the run. A page
		 * on its own, as scattered writes leave them, is done with
		 * the entry that failed after it (n is 2), which is not
		 * tested again.
		 */
		n = 1;
		if (p + 1 < end) {
			if (pagescan_hit(pagescan_peek(p + 1), qmask, set)) {
				n = pagescan_run_len(p, ptent, end - p);
				if (n > 1)
					goto run;
			} else {
				n = 2;
			}
		}
		a = base + (unsigned long)p * ratio;
		if (!left || !pagescan_region_add(w, &cur, a, 1, out))
			break;
		left--;
		/* Soft-dirty, or it would not match */
		if (clear_sd)
			pagescan_clean_present(vma, w->pin_word, a, p);
		else if (wp)
			make_uffd_wp_pte_present(vma, a, p);
		p += n;
		continue;
run:
		a = base + (unsigned long)p * ratio;
		if (n > left || !pagescan_region_add(w, &cur, a, n, out))
			break;
		left -= n;
		if (clear_sd) {
			pagescan_clear_run(vma, a, p, n);
		} else if (wp) {
			for (k = 0; k < n; k++)
				make_uffd_wp_pte_present(vma, a + k * PAGE_SIZE,
							 p + k);
		}
		p += n;
	}
	/*
	 * Every page reported here changed: the flush covers from the first
	 * (the end of the region open on entry, if that grew, or the start of
	 * the next) to the last.
	 */
	if ((clear_sd || wp) && left != w->pages_left)
		pagescan_flush_add(&w->tflush, first->end != first_end ?
				   first_end : first[1].start, cur->end);
	w->cur = cur;
	w->pages_left = left;
	return p - pte;
}

/* The mask of quick test @set as a constant where there is one, or @qmask */
static __always_inline u64 pagescan_quick_mask(bool set, u64 qmask)
{
	bool s = false;
	u64 m = 0;

	return pagescan_quick_test(!set, set, &m, &s) ? m : qmask;
}

/*
 * pagescan_fast() out of line, one copy for each loop of enum
 * pagescan_fast, so that each gets registers of its own
 */
static noinline unsigned long
pagescan_fast_sd(struct pagescan_walk *w, struct vm_area_struct *vma,
		 pte_t *pte, unsigned long addr, unsigned long i,
		 unsigned long nr, u64 qmask)
{
	return pagescan_fast(w, vma, pte, addr, i, nr,
			     pagescan_quick_mask(false, qmask), false, false,
			     false);
}

static noinline unsigned long
pagescan_fast_sd_clear(struct pagescan_walk *w, struct vm_area_struct *vma,
		       pte_t *pte, unsigned long addr, unsigned long i,
		       unsigned long nr, u64 qmask)
{
	return pagescan_fast(w, vma, pte, addr, i, nr,
			     pagescan_quick_mask(false, qmask), false, true,
			     false);
}

static noinline unsigned long
pagescan_fast_wr(struct pagescan_walk *w, struct vm_area_struct *vma,
		 pte_t *pte, unsigned long addr, unsigned long i,
		 unsigned long nr, u64 qmask)
{
	return pagescan_fast(w, vma, pte, addr, i, nr,
			     pagescan_quick_mask(true, qmask), true, false,
			     false);
}

static noinline unsigned long
pagescan_fast_wr_wp(struct pagescan_walk *w, struct vm_area_struct *vma,
		    pte_t *pte, unsigned long addr, unsigned long i,
		    unsigned long nr, u64 qmask)
{
	return pagescan_fast(w, vma, pte, addr, i, nr,
			     pagescan_quick_mask(true, qmask), true, false,
			     true);
}

/* Which loop of pagescan_fast() walks a table with quick test @set */
static enum pagescan_fast pagescan_fast_loop(const struct pagescan_walk *w,
					     bool set)
{
	if (!w->simple || !w->buf)
		return PAGESCAN_SLOW;
	if (!set && !w->wp)
		return w->clear_sd ? PAGESCAN_FAST_SD_CLEAR : PAGESCAN_FAST_SD;
	if (set && !w->clear_sd)
		return w->wp ? PAGESCAN_FAST_WR_WP : PAGESCAN_FAST_WR;
	return PAGESCAN_SLOW;
}

static unsigned long pagescan_fast_call(struct pagescan_walk *w,
					struct vm_area_struct *vma,
					pte_t *pte, unsigned long addr,
					unsigned long i, unsigned long nr,
					u64 qmask, enum pagescan_fast fast)
{
	switch (fast) {
	case PAGESCAN_FAST_SD:
		return pagescan_fast_sd(w, vma, pte, addr, i, nr, qmask);
	case PAGESCAN_FAST_SD_CLEAR:
		return pagescan_fast_sd_clear(w, vma, pte, addr, i, nr, qmask);
	case PAGESCAN_FAST_WR:
		return pagescan_fast_wr(w, vma, pte, addr, i, nr, qmask);
	case PAGESCAN_FAST_WR_WP:
		return pagescan_fast_wr_wp(w, vma, pte, addr, i, nr, qmask);
	default:
		return i;
	}
}

/*
 * Report and change the @nr entries of a locked page table from @pte,
 * mapping from @addr. With @quick, only entries that pass the quick test of
 * @qmask and @set are read in full (pagescan_skip()), and @fast, if not
 * PAGESCAN_SLOW, walks them until it meets an entry it leaves to this
 * loop. Inlined once for each kind of quick test, so that each loop keeps
 * its state in registers. Return: true when the walk stops.
 */
static __always_inline bool pagescan_ptes(struct pagescan_walk *w,
					  struct vm_area_struct *vma,
					  pte_t *pte, unsigned long addr,
					  unsigned long nr,
					  bool quick, u64 qmask, bool set,
					  enum pagescan_fast fast)
{
	bool simple = w->simple, clear_sd = w->clear_sd, wp = w->wp;
	bool change = clear_sd || wp;
	unsigned long vma_cats = w->vma_cats;
	unsigned int k, match = w->present_match;
	unsigned long i, a, next, cats, n;
	pte_t *p, ptent;

	/* With @quick, pagescan_skip() tests the end of the table */
	for (i = 0; quick || i < nr; i++) {
		if (fast != PAGESCAN_SLOW)
			i = pagescan_fast_call(w, vma, pte, addr, i, nr, qmask,
					       fast);
		else if (quick)
			i = pagescan_skip(pte + i, pte + nr, qmask, set) - pte;
		if (quick && i == nr)
			break;
		a = addr + i * PAGE_SIZE;
		p = pte + i;
		ptent = ptep_get(p);

		if (pte_present(ptent)) {
			/* present_match is 0 without simple masks */
			k = pagescan_present_kind(ptent);
			if (match & BIT(k)) {
				cats = w->present_cats[k];
				if (pagescan_ptes_run(w, vma, p, a, ptent, nr - i,
						      cats, clear_sd, wp, &n))
					return true;
				i += n - 1;
				continue;
			}
			/* Not a match by its bits: not a match at all */
			if (simple)
				continue;
		}
		if (!pagescan_pte_may_match(w, ptent))
			continue;
		if (pte_none(ptent)) {
			cats = w->none_cats;
		} else {
			cats = vma_cats | pagescan_pte_cats(w, vma, a, ptent);
			if (!pagescan_match(w, cats))
				continue;
		}
		/* One page either fits or stops the walk before it */
		next = a + PAGE_SIZE;
		if (!pagescan_add(w, cats, a, next) &&
		    pagescan_output(w, cats, a, &next))
			return true;
		if (change && pagescan_change_pte(w, vma, a, p, ptent, cats))
			pagescan_flush_add(&w->tflush, a, next);
	}
	return false;
}

/*
 * The page table of a PMD entry that maps no THP, under its lock. Kept out
 * of pagescan_pmd_entry(), so that a THP does not pay for its registers.
 */
static noinline int pagescan_pte_table(pmd_t *pmd, unsigned long addr,
				       unsigned long end,
				       struct mm_walk *walk)
{
	struct pagescan_walk *w = walk->private;
	struct vm_area_struct *vma = walk->vma;
	struct pagescan_flush *flush = &w->tflush;
	unsigned long nr = (end - addr) >> PAGE_SHIFT;
	enum pagescan_fast fast = PAGESCAN_SLOW;
	bool quick, qset = false;
	u64 qmask = 0;
	pte_t *start_pte;
	spinlock_t *ptl;		/* page table lock */

	*flush = (struct pagescan_flush){ 0, 0 };
	/* An empty entry has no soft-dirty bit: it must not match */
	quick = pagescan_quick_test(w->need_sd && !w->none_match,
				    w->need_written, &qmask, &qset);
	if (quick)
		fast = pagescan_fast_loop(w, qset);

	if (w->clear_sd || w->wp)
		pagescan_pend(w);
	start_pte = pte_offset_map_lock(walk->mm, pmd, addr, &ptl);
	if (!start_pte) {
		pagescan_unpend(w);
		walk->action = ACTION_AGAIN;
		return 0;
	}
	/*
	 * A batched unmap of reclaim or migration may have left a writable
	 * TLB entry for a swap or migration entry to be cleaned: flush it.
	 */
	if (w->clear_sd || w->wp)
		flush_tlb_batched_pending(walk->mm);
	arch_enter_lazy_mmu_mode();
	if (quick && qset)
		pagescan_ptes(w, vma, start_pte, addr, nr, true, qmask, true,
			      fast);
	else if (quick)
		pagescan_ptes(w, vma, start_pte, addr, nr, true, qmask, false,
			      fast);
	else
		pagescan_ptes(w, vma, start_pte, addr, nr, false, 0, false,
			      PAGESCAN_SLOW);
	/* Leave lazy MMU mode first, so that the updates are visible. */
	arch_leave_lazy_mmu_mode();
	if (flush->end)
		pagescan_owe_flush(w, vma, flush->start, flush->end);
	pte_unmap_unlock(start_pte, ptl);
	pagescan_unpend(w);
	cond_resched();

	if (w->stop)
		return 1;
	return pagescan_spend(w, end) ? 1 : 0;
}

static int pagescan_pmd_entry(pmd_t *pmd, unsigned long addr,
			      unsigned long end, struct mm_walk *walk)
{
	struct pagescan_walk *w = walk->private;
	int ret;

	pagescan_notify(w, addr, end);
	if (w->clear_sd || w->wp)
		pagescan_pend(w);
	ret = pagescan_thp_entry(pmd, addr, end, walk);
	if (ret == -EAGAIN)
		return pagescan_pte_table(pmd, addr, end, walk);
	pagescan_unpend(w);
	if (!ret && pagescan_spend_cost(w, end, 1))
		ret = 1;
	return ret;
}

static int pagescan_hugetlb_hole_wp(struct vm_area_struct *vma,
				    unsigned long addr, unsigned long end);

static int pagescan_pte_hole(unsigned long addr, unsigned long end,
			     int depth, struct mm_walk *walk)
{
	struct pagescan_walk *w = walk->private;
	struct vm_area_struct *vma = walk->vma;
	long err;

	if (!w->hole_match)
		return pagescan_spend(w, end) ? 1 : 0;
	if (pagescan_output(w, w->hole_cats, addr, &end) && end == addr)
		return 1;
	if (w->wp) {
		/* Not nested in a pending flush: see pagescan_pend() */
		pagescan_flush_tlb(w);
		if (is_vm_hugetlb_page(vma))
			err = pagescan_hugetlb_hole_wp(vma, addr, end);
		else
			err = uffd_wp_range(vma, addr, end - addr, true);
		w->changed = true;
		/*
		 * The hole is reported: the part of it left without a marker
		 * reads as written and is reported again, a false positive.
		 * Without an output vector nothing tells the caller, so the
		 * walk stops there with the error.
		 */
		if (err < 0 && !w->buf) {
			w->err = err;
			pagescan_stop(w, end, PAGESCAN_STOP_FULL);
			return 1;
		}
	}
	if (w->stop)
		return 1;
	return pagescan_spend(w, end) ? 1 : 0;
}

#ifdef CONFIG_HUGETLB_PAGE
/*
 * pagescan_notify() where a range cannot start, under the hugetlb VMA lock.
 * Return: false, with the chunk stopped at @addr, when the range started
 * before does not cover [@addr, @end).
 */
static bool pagescan_notified(struct pagescan_walk *w, unsigned long addr,
			      unsigned long end)
{
	if (!(w->flags & PAGESCAN_CHANGE) ||
	    (w->notifying && end <= w->range.end))
		return true;
	pagescan_stop(w, addr, PAGESCAN_STOP_CHUNK);
	return false;
}

static unsigned long pagescan_huge_cats(pte_t pte)
{
	unsigned long cats = PAGE_IS_HUGE;

	if (pte_present(pte)) {
		cats |= PAGE_IS_PRESENT;
		if (!huge_pte_uffd_wp(pte))
			cats |= PAGE_IS_WRITTEN;
		if (!PageAnon(pte_page(pte)))
			cats |= PAGE_IS_FILE;
		if (is_zero_pfn(pte_pfn(pte)))
			cats |= PAGE_IS_PFNZERO;
		if (pte_soft_dirty(pte))
			cats |= PAGE_IS_SOFT_DIRTY;
	} else if (is_swap_pte(pte)) {
		cats |= PAGE_IS_SWAPPED;
		if (!pte_swp_uffd_wp_any(pte))
			cats |= PAGE_IS_WRITTEN;
		if (pte_swp_soft_dirty(pte))
			cats |= PAGE_IS_SOFT_DIRTY;
	}
	return cats;
}

/* Clear the soft-dirty state of a hugetlb entry; true if TLB flush */
static bool pagescan_clear_huge_pte(struct vm_area_struct *vma,
				    unsigned long addr, pte_t *ptep, pte_t pte)
{
	unsigned long psize = huge_page_size(hstate_vma(vma));
	pte_t old, new;

	if (huge_pte_none(pte) || is_hugetlb_entry_hwpoisoned(pte) ||
	    is_pte_marker(pte))
		return false;
	if (is_hugetlb_entry_migration(pte)) {
		new = pagescan_swp_clean(pte);
		if (!pte_same(new, pte))
			set_huge_pte_at(vma->vm_mm, addr, ptep, new, psize);
		return false;
	}
	if (!pte_present(pte) || !IS_ENABLED(CONFIG_MEM_SOFT_DIRTY))
		return false;
	if (!pte_soft_dirty(pte) && !huge_pte_write(pte))
		return false;
	/* As pagescan_clear_pte(): the pin test comes last */
	old = huge_ptep_get_and_clear(vma->vm_mm, addr, ptep, psize);
	/* Pairs with the barrier after GUP-fast takes its pin */
	smp_mb();
	if (folio_maybe_dma_pinned(page_folio(pte_page(old))))
		new = pte_mksoft_dirty(old);
	else
		new = pte_clear_soft_dirty(huge_pte_wrprotect(old));
	set_huge_pte_at(vma->vm_mm, addr, ptep, new, psize);
	return true;
}

static int pagescan_hugetlb_entry(pte_t *ptep, unsigned long hmask,
				  unsigned long addr, unsigned long end,
				  struct mm_walk *walk)
{
	struct pagescan_walk *w = walk->private;
	struct vm_area_struct *vma = walk->vma;
	struct hstate *h = hstate_vma(vma);
	unsigned long haddr = addr & hmask;
	unsigned long cats, fit;
	bool change, flush = false;
	spinlock_t *ptl;		/* page table lock */
	pte_t pte;

	/* Started in pagescan_chunk(): this only checks the bound */
	if (!pagescan_notified(w, addr, end))
		return 1;
	if (w->wp)
		i_mmap_lock_write(vma->vm_file->f_mapping);
	ptl = huge_pte_lock(h, walk->mm, ptep);

	pte = huge_ptep_get(walk->mm, addr, ptep);
	cats = w->vma_cats | pagescan_huge_cats(pte);
	if (!pagescan_match(w, cats))
		goto out_unlock;

	change = (w->wp && (cats & PAGE_IS_WRITTEN)) ||
		 (w->clear_sd && !huge_pte_none(pte));
	fit = pagescan_fit(w, cats, addr, end);
	if (fit != addr && change &&
	    (addr != haddr || fit != haddr + huge_page_size(h))) {
		/* A hugetlb page cannot be changed in part: stop before it. */
		if (addr == w->start)
			w->err = -EINVAL;
		pagescan_stop(w, addr, PAGESCAN_STOP_HUGE);
		goto out_unlock;
	}

	if (pagescan_output(w, cats, addr, &end) && end == addr)
		goto out_unlock;
	if (w->clear_sd) {
		flush = pagescan_clear_huge_pte(vma, haddr, ptep, pte);
		if (!pte_same(huge_ptep_get(walk->mm, haddr, ptep), pte))
			w->changed = true;
	}
	if (w->wp && (cats & PAGE_IS_WRITTEN)) {
		pte = huge_ptep_get(walk->mm, haddr, ptep);
		make_uffd_wp_huge_pte(vma, haddr, ptep, pte);
		flush = true;
		w->changed = true;
	}
	if (flush) {
		flush_hugetlb_tlb_range(vma, haddr, haddr + huge_page_size(h));
		w->changed = true;
	}
out_unlock:
	spin_unlock(ptl);
	if (w->wp)
		i_mmap_unlock_write(vma->vm_file->f_mapping);

	if (w->stop)
		return 1;
	return pagescan_spend(w, end) ? 1 : 0;
}

/*
 * Install uffd-wp markers on the missing hugetlb pages of [@addr, @end).
 * uffd_wp_range() cannot do it here: hugetlb_change_protection() takes the
 * hugetlb VMA lock for write, which the walker holds for read. Registration
 * for uffd-wp unshares the PMDs of the VMA, so the entries need no more than
 * their page table lock, and the mapping's i_mmap lock against a racing
 * unshare, as in pagescan_hugetlb_entry().
 */
static int pagescan_hugetlb_hole_wp(struct vm_area_struct *vma,
				    unsigned long addr, unsigned long end)
{
	struct hstate *h = hstate_vma(vma);
	unsigned long size = huge_page_size(h);
	struct mm_struct *mm = vma->vm_mm;
	spinlock_t *ptl;		/* page table lock */
	pte_t *ptep, pte;

	for (addr = ALIGN_DOWN(addr, size); addr < end; addr += size) {
		ptep = huge_pte_alloc(mm, vma, addr, size);
		if (!ptep)
			return -ENOMEM;
		i_mmap_lock_write(vma->vm_file->f_mapping);
		ptl = huge_pte_lock(h, mm, ptep);
		pte = huge_ptep_get(mm, addr, ptep);
		make_uffd_wp_huge_pte(vma, addr, ptep, pte);
		/* A fault may have filled the entry since the walker saw it */
		if (!huge_pte_none(pte))
			flush_hugetlb_tlb_range(vma, addr, addr + size);
		spin_unlock(ptl);
		i_mmap_unlock_write(vma->vm_file->f_mapping);
	}
	return 0;
}
#else
#define pagescan_hugetlb_entry NULL

static int pagescan_hugetlb_hole_wp(struct vm_area_struct *vma,
				    unsigned long addr, unsigned long end)
{
	return 0;
}
#endif /* CONFIG_HUGETLB_PAGE */

/*
 * VM_SOFTDIRTY makes every page of a VMA soft-dirty, whatever its entry
 * says, and entries of such a VMA need not be write-protected for tracking:
 * mprotect(), a swap-in or a read fault on a shared mapping without
 * write-notify make them writable and clean. Before a clearing call drops
 * the flag, it moves that state into the entries: every present, swap or
 * migration entry of the whole VMA that is not soft-dirty becomes so,
 * keeping its access. The VMA then has the same state without the flag,
 * which can be cleared on the whole VMA, with no split, while the matching
 * pages are cleared one by one. Only holes change: their content is zeros
 * or the backing object's (in a shared mapping, also a written page that
 * reclaim unmapped, which soft-dirty never tracked), and a write that fills
 * one faults and makes it soft-dirty.
 *
 * The mmap lock is held for write and the VMA write-locked, so no fault maps
 * a page behind the walk; only a software bit is added, so no secondary MMU
 * needs to drop its mappings.
 */
static int pagescan_mark_pmd(pmd_t *pmd, unsigned long addr,
			     unsigned long end, struct mm_walk *walk)
{
	struct vm_area_struct *vma = walk->vma;
	pte_t *start_pte, *pte;
	spinlock_t *ptl;		/* page table lock */

	/* The flag is still set: stopping here changes nothing */
	if (fatal_signal_pending(current))
		return -EINTR;
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	ptl = pmd_trans_huge_lock(pmd, vma);
	if (ptl) {
		pmd_t pmdval = pmdp_get(pmd);

		if (pmd_present(pmdval) && !pmd_soft_dirty(pmdval)) {
			pmdval = pmdp_invalidate_ad(vma, addr & HPAGE_PMD_MASK,
						    pmd);
			set_pmd_at(walk->mm, addr & HPAGE_PMD_MASK, pmd,
				   pmd_mksoft_dirty(pmdval));
		} else if (!pmd_present(pmdval) &&
			   !pmd_swp_soft_dirty(pmdval)) {
			set_pmd_at(walk->mm, addr & HPAGE_PMD_MASK, pmd,
				   pmd_swp_mksoft_dirty(pmdval));
		}
		spin_unlock(ptl);
		return 0;
	}
#endif
	start_pte = pte_offset_map_lock(walk->mm, pmd, addr, &ptl);
	if (!start_pte) {
		walk->action = ACTION_AGAIN;
		return 0;
	}
	arch_enter_lazy_mmu_mode();
	for (pte = start_pte; addr != end; pte++, addr += PAGE_SIZE) {
		pte_t ptent = ptep_get(pte), old;

		if (pte_present(ptent) && !pte_soft_dirty(ptent)) {
			old = ptep_modify_prot_start(vma, addr, pte);
			ptep_modify_prot_commit(vma, addr, pte, old,
						pte_mksoft_dirty(old));
		} else if (is_swap_pte(ptent) && !pte_swp_soft_dirty(ptent)) {
			set_pte_at(walk->mm, addr, pte,
				   pte_swp_mksoft_dirty(ptent));
		}
	}
	arch_leave_lazy_mmu_mode();
	pte_unmap_unlock(start_pte, ptl);
	cond_resched();
	return 0;
}

#ifdef CONFIG_HUGETLB_PAGE
static int pagescan_mark_hugetlb(pte_t *ptep, unsigned long hmask,
				 unsigned long addr, unsigned long end,
				 struct mm_walk *walk)
{
	struct vm_area_struct *vma = walk->vma;
	struct hstate *h = hstate_vma(vma);
	unsigned long haddr = addr & hmask;
	spinlock_t *ptl;		/* page table lock */
	pte_t pte, old;

	ptl = huge_pte_lock(h, walk->mm, ptep);
	pte = huge_ptep_get(walk->mm, haddr, ptep);
	if (pte_present(pte) && !pte_soft_dirty(pte)) {
		old = huge_ptep_modify_prot_start(vma, haddr, ptep);
		huge_ptep_modify_prot_commit(vma, haddr, ptep, old,
					     pte_mksoft_dirty(old));
	} else if (is_swap_pte(pte) && !pte_swp_soft_dirty(pte)) {
		set_huge_pte_at(walk->mm, haddr, ptep,
				pte_swp_mksoft_dirty(pte), huge_page_size(h));
	}
	spin_unlock(ptl);
	return 0;
}
#else
#define pagescan_mark_hugetlb NULL
#endif

static const struct mm_walk_ops pagescan_mark_ops = {
	.pmd_entry	= pagescan_mark_pmd,
	.hugetlb_entry	= pagescan_mark_hugetlb,
	.walk_lock	= PGWALK_WRLOCK,
};

/*
 * Four variants: with the mmap lock held for write a VM_SOFTDIRTY VMA is
 * write-locked for the walk (PGWALK_WRLOCK), so that no page fault under
 * the per-VMA lock maps a page between the walk and the clearing of the
 * flag. ->pte_hole is left out when no hole can match, so that missing
 * page tables are skipped without a call.
 */
static const struct mm_walk_ops pagescan_ops = {
	.pmd_entry	= pagescan_pmd_entry,
	.hugetlb_entry	= pagescan_hugetlb_entry,
	.walk_lock	= PGWALK_RDLOCK,
};

static const struct mm_walk_ops pagescan_hole_ops = {
	.pmd_entry	= pagescan_pmd_entry,
	.pte_hole	= pagescan_pte_hole,
	.hugetlb_entry	= pagescan_hugetlb_entry,
	.walk_lock	= PGWALK_RDLOCK,
};

static const struct mm_walk_ops pagescan_wrlock_ops = {
	.pmd_entry	= pagescan_pmd_entry,
	.hugetlb_entry	= pagescan_hugetlb_entry,
	.walk_lock	= PGWALK_WRLOCK,
};

static const struct mm_walk_ops pagescan_wrlock_hole_ops = {
	.pmd_entry	= pagescan_pmd_entry,
	.pte_hole	= pagescan_pte_hole,
	.hugetlb_entry	= pagescan_hugetlb_entry,
	.walk_lock	= PGWALK_WRLOCK,
};

/*
 * Set up the walk of @vma. Return: 0 to walk it, 1 to skip it, or -EPERM
 * for PAGESCAN_CHECK_WPASYNC on a VMA without async uffd-wp.
 */
static int pagescan_test_vma(struct pagescan_walk *w,
			     struct vm_area_struct *vma)
{
	bool wp_allowed = userfaultfd_wp_async(vma) &&
			  userfaultfd_wp_use_markers(vma);
	unsigned long cats = 0;
	unsigned int k;

	if (!wp_allowed) {
		if (w->flags & PAGESCAN_CHECK_WPASYNC)
			return -EPERM;
		/* Never put uffd-wp bits in a VMA not registered for it. */
		if (w->flags & PAGESCAN_WP)
			return 1;
	}
	if (vma->vm_flags & VM_PFNMAP)
		return 1;

	if (wp_allowed)
		cats |= PAGE_IS_WPALLOWED;
	if (vma->vm_flags & VM_SOFTDIRTY)
		cats |= PAGE_IS_SOFT_DIRTY;
	if (((cats ^ w->inverted) & w->mask & PAGE_IS_WPALLOWED) !=
	    (w->mask & PAGE_IS_WPALLOWED))
		return 1;

	w->vma_cats = cats;
	/*
	 * A missing page table is written only in a uffd-wp VMA, where
	 * registration with WP_UNPOPULATED installs markers, so that a
	 * missing one means the page was zapped since. A missing hugetlb
	 * page is never written. PAGEMAP_SCAN takes an empty entry of a page
	 * table as written in any VMA, as it has no uffd-wp marker;
	 * PAGESCAN_EMPTY_AS_HOLE takes it as a missing table.
	 */
	w->hole_cats = cats;
	if (userfaultfd_wp(vma) && !is_vm_hugetlb_page(vma))
		w->hole_cats |= PAGE_IS_WRITTEN;
	w->hole_match = pagescan_match(w, w->hole_cats);
	w->none_cats = cats | PAGE_IS_WRITTEN;
	if (w->flags & PAGESCAN_EMPTY_AS_HOLE)
		w->none_cats = w->hole_cats;
	w->none_match = pagescan_match(w, w->none_cats);
	w->none_out = w->none_cats & w->return_mask;
	w->need_sd = (w->mask & ~w->inverted & PAGE_IS_SOFT_DIRTY) &&
		     !(cats & PAGE_IS_SOFT_DIRTY);
	w->need_written = w->mask & ~w->inverted & PAGE_IS_WRITTEN;
	w->simple = !w->inverted && !w->anyof &&
		    !((w->mask | w->return_mask) & ~PAGESCAN_SIMPLE_CATS);
	w->present_match = 0;
	for (k = 0; w->simple && k < 4; k++) {
		w->present_cats[k] = cats | PAGE_IS_PRESENT |
				     (k & 1 ? 0 : PAGE_IS_WRITTEN) |
				     (k & 2 ? PAGE_IS_SOFT_DIRTY : 0);
		w->present_out[k] = PAGESCAN_NO_MATCH;
		if (pagescan_match(w, w->present_cats[k])) {
			w->present_match |= BIT(k);
			w->present_out[k] = w->present_cats[k] &
					    w->return_mask;
		}
	}

	/*
	 * hugetlb has no write-notify for soft-dirty (see
	 * vma_wants_writenotify()): mprotect() of a shared hugetlb mapping
	 * makes its PTEs writable without a fault. Its pages are reported
	 * but never cleared, so they stay soft-dirty.
	 */
	w->clear_sd = (w->flags & PAGESCAN_CLEAR_SOFT_DIRTY) &&
		      !(is_vm_hugetlb_page(vma) &&
			(vma->vm_flags & VM_MAYSHARE));
	w->clear_vma = w->clear_sd && (vma->vm_flags & VM_SOFTDIRTY);
	w->wp = w->flags & PAGESCAN_WP;
	w->pin_word = pagescan_pin_word(vma);
	return 0;
}

/*
 * Every page of @vma that a call does not report has its state in its entry
 * once pagescan_mark_pmd() ran: the flag goes for the whole VMA, which keeps
 * its bounds.
 */
static void pagescan_drop_vm_softdirty(struct pagescan_walk *w,
				       struct vm_area_struct *vma)
{
	if (!(vma->vm_flags & VM_SOFTDIRTY))
		return;
	vm_flags_clear(vma, VM_SOFTDIRTY);
	vma_set_page_prot(vma);
	w->changed = true;
}

/*
 * Walk from @addr under the mmap lock until the range, the output or the
 * budget of the chunk ends. Sets w->walk_end. Return: 0 or -errno.
 */
static int pagescan_chunk(struct pagescan_walk *w, struct mm_struct *mm,
			  unsigned long addr)
{
	const struct mm_walk_ops *ops;
	struct vm_area_struct *vma;
	unsigned long vend, stop;
	int ret;

	w->budget = PAGESCAN_CHUNK_BUDGET * PAGESCAN_UNIT;
	w->stop = PAGESCAN_WALKING;
	while (addr < w->end) {
		vma = find_vma(mm, addr);
		if (!vma || vma->vm_start >= w->end) {
			addr = w->end;
			break;
		}
		addr = max(addr, vma->vm_start);
		vend = min(vma->vm_end, w->end);

		ret = pagescan_test_vma(w, vma);
		if (ret < 0) {
			pagescan_stop(w, addr, PAGESCAN_STOP_FULL);
			return ret;
		}
		if (!ret && w->clear_vma && !w->wrlocked) {
			pagescan_stop(w, addr, PAGESCAN_STOP_WRLOCK);
			return 0;
		}
		/*
		 * hugetlb entries are walked under the hugetlb VMA lock: start
		 * the invalidation before, as hugetlb_change_protection() does.
		 */
		if (!ret && is_vm_hugetlb_page(vma)) {
			stop = ALIGN_DOWN(addr, vma_kernel_pagesize(vma)) +
			       vma_kernel_pagesize(vma);
			pagescan_notify(w, addr, min(vend, stop));
		}
		if (!ret) {
			if (w->clear_vma) {
				ret = walk_page_range_vma(vma, vma->vm_start,
							  vma->vm_end,
							  &pagescan_mark_ops,
							  NULL);
				if (ret < 0)
					return ret;
				/*
				 * The flag carries nothing the entries do not,
				 * holes aside, which w->hole_cats still counts
				 * for this walk. Clear it, and restore
				 * write-notify, before any entry is cleaned: a
				 * migration that restores a cleaned entry of a
				 * shared mapping takes vm_page_prot as it finds
				 * it. hugetlb (private only: shared is never
				 * cleared) waits, so that EINVAL for a partial
				 * first page changes nothing.
				 */
				if (!is_vm_hugetlb_page(vma))
					pagescan_drop_vm_softdirty(w, vma);
				ops = w->hole_match ? &pagescan_wrlock_hole_ops :
						      &pagescan_wrlock_ops;
			} else {
				ops = w->hole_match ? &pagescan_hole_ops :
						      &pagescan_ops;
			}
			ret = walk_page_range_vma(vma, addr, vend, ops, w);
			if (ret < 0)
				return ret;
			if (w->err)
				return w->err;
			stop = w->stop ? w->walk_end : vend;
			if (w->clear_vma && stop > addr)
				pagescan_drop_vm_softdirty(w, vma);
			if (w->stop)
				return 0;
		}
		addr = vend;
		if (pagescan_spend(w, addr))
			return 0;
	}
	w->walk_end = addr;
	return 0;
}

/* Copy the closed regions (all of them if @final) to the user's vec */
static int pagescan_flush(struct pagescan_walk *w, bool final)
{
	unsigned long n;

	if (!w->buf)
		return 0;
	/* The regions in buf; the last one may still grow, unless @final */
	n = w->cur + 1 - w->buf;
	if (n && !final)
		n--;
	if (n) {
		if (copy_to_user(w->vec_out, w->buf, n * sizeof(*w->buf))) {
			w->lost = true;
			return -EFAULT;
		}
		w->vec_out += n;
		w->vec_left -= n;
		w->nr_out += n;
	}
	/* Carry it over. */
	if (w->cur >= w->buf) {
		w->buf[0] = *w->cur;
		w->cur = w->buf;
	}
	return 0;
}

/*
 * PAGESCAN_CHECK_WPASYNC: whether every VMA of the range can be
 * write-protected asynchronously, tested before the walk changes any of
 * them. A VMA mapped later, between two chunks, stops the walk when it is
 * reached (pagescan_test_vma()).
 */
static int pagescan_check_wpasync(struct pagescan_walk *w,
				  struct mm_struct *mm)
{
	VMA_ITERATOR(vmi, mm, w->start);
	struct vm_area_struct *vma;

	for_each_vma_range(vmi, vma, w->end)
		if (!userfaultfd_wp_async(vma) ||
		    !userfaultfd_wp_use_markers(vma))
			return -EPERM;
	return 0;
}

/*
 * Walk the range chunk by chunk: the mmap lock is dropped between chunks
 * to copy out the regions found, to reschedule and to check for a fatal
 * signal. Return: 0, or -errno when the walk must end.
 */
static int pagescan_walk(struct pagescan_walk *w, struct mm_struct *mm)
{
	bool change = w->flags & PAGESCAN_CHANGE;
	unsigned long addr = w->start;
	bool first = true;
	int err;

	w->mm = mm;
	w->walk_end = addr;
	for (;;) {
		if (fatal_signal_pending(current))
			return -EINTR;

		w->buf_cap = min_t(u64, w->buf_len, w->vec_left);
		if (w->buf)
			w->last = w->buf + w->buf_cap - 1;
		/*
		 * Fault the part of vec this chunk can fill in writable
		 * before any page changes, so that the regions reported for
		 * changed pages can be copied out.
		 */
		if (change && w->buf &&
		    fault_in_safe_writeable((char __user *)w->vec_out,
					    w->buf_cap * sizeof(*w->buf)))
			return -EFAULT;

		if (w->wrlocked)
			err = mmap_write_lock_killable(mm);
		else
			err = mmap_read_lock_killable(mm);
		if (err)
			return err;

		if (first && (w->flags & PAGESCAN_CHECK_WPASYNC))
			err = pagescan_check_wpasync(w, mm);
		first = false;
		if (!err)
			err = pagescan_chunk(w, mm, addr);
		pagescan_flush_tlb(w);
		if (w->notifying) {
			mmu_notifier_invalidate_range_end(&w->range);
			w->notifying = false;
		}
		if (w->wrlocked)
			mmap_write_unlock(mm);
		else
			mmap_read_unlock(mm);
		if (err)
			return err;

		err = pagescan_flush(w, false);
		if (err)
			return err;

		addr = w->walk_end;
		w->wrlocked = w->stop == PAGESCAN_STOP_WRLOCK;
		if (w->stop != PAGESCAN_STOP_CHUNK &&
		    w->stop != PAGESCAN_STOP_WRLOCK)
			return 0;
		cond_resched();
	}
}

/**
 * pagescan - report and change the pages of a range that match categories
 * @mm: the mm to walk, with a reference held by the caller
 * @scan: the range, categories and output; its results are set on return
 *
 * Report the pages of [@scan->start, @scan->end) whose PAGE_IS_* categories
 * match the masks of @scan to @scan->vec, coalesced into struct page_region
 * entries of equal categories (masked by @scan->return_mask), and change
 * the matching pages when @scan->flags says so:
 *
 * PAGESCAN_WP: uffd write-protect every matching written page of async
 *	uffd-wp VMAs (markers on matching holes), skipping all other VMAs.
 *	A hugetlb page only part of which can be reported stops the walk
 *	before it, or fails the call with -EINVAL when the range starts with
 *	it.
 * PAGESCAN_CLEAR_SOFT_DIRTY: clear the soft-dirty state of every matching
 *	page: see pagescan_clear_pte() and, for VM_SOFTDIRTY,
 *	pagescan_mark_pmd().
 * PAGESCAN_CHECK_WPASYNC: fail with -EPERM, before any change, if the range
 *	holds a VMA without async uffd-wp.
 *
 * The walk takes the mmap lock for read in chunks, and drops it to copy the
 * regions found to @scan->vec. It stops when the range ends, @scan->vec is
 * full, @scan->max_pages pages were reported, or on an error.
 *
 * @scan->walk_end is set to the end of the range when the walk examined
 * all of it; otherwise to the address where it stopped: nothing at or after
 * it was reported or changed. @scan->nr_out counts the regions copied out,
 * @scan->changed says whether an entry or VMA flag changed, and @scan->lost
 * whether a copy of regions found to @scan->vec failed.
 *
 * Return: 0, or -errno (-EFAULT, -EINVAL, -EPERM, -ENOMEM or -EINTR). The
 * error may come after changes: the caller decides what its interface
 * reports then, from the results.
 */
int pagescan(struct mm_struct *mm, struct pagescan *scan)
{
	struct pagescan_walk w = {
		.start		= scan->start,
		.end		= scan->end,
		.pages_left	= scan->max_pages,
		.inverted	= scan->inverted,
		.mask		= scan->mask,
		.anyof		= scan->anyof,
		.return_mask	= scan->return_mask,
		.interest	= scan->mask | scan->anyof | scan->return_mask,
		.flags		= scan->flags,
		.vec_left	= scan->vec_len,
		.vec_out	= scan->vec,
		.buf_len	= scan->buf_len ?: PAGESCAN_BUF_LEN,
	};
	int err = 0;

	if (w.vec_left) {
		w.buf = kmalloc_array(min_t(u64, w.buf_len, w.vec_left) + 1,
				      sizeof(*w.buf), GFP_KERNEL);
		if (!w.buf) {
			err = -ENOMEM;
			goto out;
		}
		/*
		 * w.cur is the last region of buf, or buf[-1] when there is
		 * none: no region extends it (pagescan_extends()).
		 */
		w.buf[0] = (struct page_region){
			.categories = PAGESCAN_NO_MATCH,
		};
		w.cur = w.buf++;
	}
	err = pagescan_walk(&w, mm);
	/* What was found before an error is copied out all the same */
	if (!w.lost && pagescan_flush(&w, true) && !err)
		err = -EFAULT;
	if (w.buf)
		kfree(w.buf - 1);
out:
	scan->walk_end = w.walk_end ?: scan->start;
	scan->nr_out = w.nr_out;
	scan->changed = w.changed;
	scan->lost = w.lost;
	return err;
}
