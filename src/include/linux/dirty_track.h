/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Page table helpers for write tracking: clearing soft-dirty state and
 * installing userfaultfd write-protection on single entries.
 *
 * They are shared by /proc/PID/clear_refs in fs/proc/task_mmu.c and by
 * the page-scan engine of PAGEMAP_SCAN and process_memwatch() in
 * mm/pagescan.c. All of them expect the page table lock of the entry to
 * be held, and leave the TLB flush to the caller.
 */
#ifndef _LINUX_DIRTY_TRACK_H
#define _LINUX_DIRTY_TRACK_H

#include <linux/mm.h>
#include <linux/pgtable.h>
#include <linux/huge_mm.h>
#include <linux/hugetlb.h>
#include <linux/swapops.h>
#include <linux/sched/coredump.h>

/*
 * Whether a swap entry is a writable migration, device-private or
 * device-exclusive entry: when the migration ends, or the device gives the
 * page back, it maps its page writable again without a fault.
 */
static inline bool swp_entry_writable(swp_entry_t entry)
{
	return is_writable_migration_entry(entry) ||
	       is_writable_device_private_entry(entry) ||
	       is_writable_device_exclusive_entry(entry);
}

/* The read-only form of a writable swap entry: see swp_entry_writable() */
static inline swp_entry_t swp_entry_wrprotect(swp_entry_t entry)
{
	pgoff_t offset = swp_offset(entry);

	if (is_writable_migration_entry(entry)) {
		if (folio_test_anon(pfn_swap_entry_folio(entry)))
			return make_readable_exclusive_migration_entry(offset);
		return make_readable_migration_entry(offset);
	}
	if (is_writable_device_private_entry(entry))
		return make_readable_device_private_entry(offset);
	if (is_writable_device_exclusive_entry(entry))
		return make_readable_device_exclusive_entry(offset);
	return entry;
}

/*
 * Make a swap PTE read-only, keeping its soft-dirty and uffd-wp bits, as
 * change_pte_range() does. Write tracking that cleans or write-protects a
 * writable entry must do so first: the page of a migration or
 * device-private entry would come back writable and clean, and its next
 * write would go unseen; and no swap PTE with uffd-wp may be writable
 * (see page_table_check_pte_flags()).
 */
static inline pte_t pte_swp_wrprotect(pte_t pte)
{
	swp_entry_t entry = pte_to_swp_entry(pte);
	pte_t new;

	if (!swp_entry_writable(entry))
		return pte;
	new = swp_entry_to_pte(swp_entry_wrprotect(entry));
	if (pte_swp_soft_dirty(pte))
		new = pte_swp_mksoft_dirty(new);
	if (pte_swp_uffd_wp(pte))
		new = pte_swp_mkuffd_wp(new);
	return new;
}

#ifdef CONFIG_TRANSPARENT_HUGEPAGE
/* pte_swp_wrprotect() for a PMD migration entry */
static inline pmd_t pmd_swp_wrprotect(pmd_t pmd)
{
	swp_entry_t entry = pmd_to_swp_entry(pmd);
	pmd_t new;

	if (!is_writable_migration_entry(entry))
		return pmd;
	new = swp_entry_to_pmd(swp_entry_wrprotect(entry));
	if (pmd_swp_soft_dirty(pmd))
		new = pmd_swp_mksoft_dirty(new);
	if (pmd_swp_uffd_wp(pmd))
		new = pmd_swp_mkuffd_wp(new);
	return new;
}
#endif

static inline bool pte_is_pinned(struct vm_area_struct *vma,
				 unsigned long addr, pte_t pte)
{
	struct folio *folio;

	if (!pte_write(pte))
		return false;
	if (!is_cow_mapping(vma->vm_flags))
		return false;
	if (likely(!test_bit(MMF_HAS_PINNED, &vma->vm_mm->flags)))
		return false;
	folio = vm_normal_folio(vma, addr, pte);
	if (!folio)
		return false;
	return folio_maybe_dma_pinned(folio);
}

#ifdef CONFIG_MEM_SOFT_DIRTY
static inline void clear_soft_dirty(struct vm_area_struct *vma,
				    unsigned long addr, pte_t *pte)
{
	/*
	 * Soft-dirty sees a write only through the fault it takes, so a
	 * cleaned entry loses write access too (soft-dirty.rst, in
	 * Documentation/admin-guide/mm, describes the whole scheme).
	 */
	pte_t ptent = ptep_get(pte);

	if (pte_present(ptent)) {
		pte_t old_pte;

		if (pte_is_pinned(vma, addr, ptent))
			return;
		old_pte = ptep_modify_prot_start(vma, addr, pte);
		ptent = pte_wrprotect(old_pte);
		ptent = pte_clear_soft_dirty(ptent);
		ptep_modify_prot_commit(vma, addr, pte, old_pte, ptent);
	} else if (is_swap_pte(ptent)) {
		ptent = pte_swp_clear_soft_dirty(pte_swp_wrprotect(ptent));
		set_pte_at(vma->vm_mm, addr, pte, ptent);
	}
}
#else
static inline void clear_soft_dirty(struct vm_area_struct *vma,
				    unsigned long addr, pte_t *pte)
{
}
#endif

#if defined(CONFIG_MEM_SOFT_DIRTY) && defined(CONFIG_TRANSPARENT_HUGEPAGE)
static inline void clear_soft_dirty_pmd(struct vm_area_struct *vma,
					unsigned long addr, pmd_t *pmdp)
{
	pmd_t old, pmd = *pmdp;

	if (pmd_present(pmd)) {
		/* See comment in change_huge_pmd() */
		old = pmdp_invalidate(vma, addr, pmdp);
		if (pmd_dirty(old))
			pmd = pmd_mkdirty(pmd);
		if (pmd_young(old))
			pmd = pmd_mkyoung(pmd);

		pmd = pmd_wrprotect(pmd);
		pmd = pmd_clear_soft_dirty(pmd);

		set_pmd_at(vma->vm_mm, addr, pmdp, pmd);
	} else if (is_migration_entry(pmd_to_swp_entry(pmd))) {
		pmd = pmd_swp_clear_soft_dirty(pmd_swp_wrprotect(pmd));
		set_pmd_at(vma->vm_mm, addr, pmdp, pmd);
	}
}
#else
static inline void clear_soft_dirty_pmd(struct vm_area_struct *vma,
					unsigned long addr, pmd_t *pmdp)
{
}
#endif

/* make_uffd_wp_pte() for an entry that the caller knows is present */
static inline void make_uffd_wp_pte_present(struct vm_area_struct *vma,
					    unsigned long addr, pte_t *pte)
{
	pte_t old_pte;

	old_pte = ptep_modify_prot_start(vma, addr, pte);
	ptep_modify_prot_commit(vma, addr, pte, old_pte,
				pte_mkuffd_wp(old_pte));
}

static inline void make_uffd_wp_pte(struct vm_area_struct *vma,
				    unsigned long addr, pte_t *pte, pte_t ptent)
{
	if (pte_present(ptent)) {
		make_uffd_wp_pte_present(vma, addr, pte);
	} else if (is_swap_pte(ptent)) {
		ptent = pte_swp_mkuffd_wp(pte_swp_wrprotect(ptent));
		set_pte_at(vma->vm_mm, addr, pte, ptent);
	} else {
		set_pte_at(vma->vm_mm, addr, pte,
			   make_pte_marker(PTE_MARKER_UFFD_WP));
	}
}

#ifdef CONFIG_TRANSPARENT_HUGEPAGE
static inline void make_uffd_wp_pmd(struct vm_area_struct *vma,
				    unsigned long addr, pmd_t *pmdp)
{
	pmd_t old, pmd = *pmdp;

	if (pmd_present(pmd)) {
		old = pmdp_invalidate_ad(vma, addr, pmdp);
		pmd = pmd_mkuffd_wp(old);
		set_pmd_at(vma->vm_mm, addr, pmdp, pmd);
	} else if (is_migration_entry(pmd_to_swp_entry(pmd))) {
		pmd = pmd_swp_mkuffd_wp(pmd_swp_wrprotect(pmd));
		set_pmd_at(vma->vm_mm, addr, pmdp, pmd);
	}
}
#endif /* CONFIG_TRANSPARENT_HUGEPAGE */

#ifdef CONFIG_HUGETLB_PAGE
static inline void make_uffd_wp_huge_pte(struct vm_area_struct *vma,
					 unsigned long addr, pte_t *ptep,
					 pte_t ptent)
{
	unsigned long psize;

	if (is_hugetlb_entry_hwpoisoned(ptent) || is_pte_marker(ptent))
		return;

	psize = huge_page_size(hstate_vma(vma));

	if (is_hugetlb_entry_migration(ptent)) {
		set_huge_pte_at(vma->vm_mm, addr, ptep,
				pte_swp_mkuffd_wp(pte_swp_wrprotect(ptent)),
				psize);
	} else if (!huge_pte_none(ptent)) {
		pte_t old_pte, new_pte;

		old_pte = huge_ptep_modify_prot_start(vma, addr, ptep);
		new_pte = huge_pte_mkuffd_wp(old_pte);
		huge_ptep_modify_prot_commit(vma, addr, ptep, old_pte, new_pte);
	} else {
		set_huge_pte_at(vma->vm_mm, addr, ptep,
				make_pte_marker(PTE_MARKER_UFFD_WP), psize);
	}
}
#endif /* CONFIG_HUGETLB_PAGE */

#endif /* _LINUX_DIRTY_TRACK_H */
