// SPDX-License-Identifier: GPL-2.0
/*
 * Implement the process_memwatch() system call: report the state of the
 * pages of a process, addressed by pidfd, with the PAGEMAP_SCAN categories,
 * and atomically re-arm soft-dirty tracking on exactly the pages reported.
 *
 * Copyright The process_memwatch authors.
 */

#include <linux/mm.h>
#include <linux/pagescan.h>
#include <linux/pid.h>
#include <linux/ptrace.h>
#include <linux/sched/mm.h>
#include <linux/syscalls.h>
#include <linux/uaccess.h>
#include <uapi/linux/memwatch.h>

#define MEMWATCH_FLAGS		(MEMWATCH_CLEAR_SOFT_DIRTY |		\
				 MEMWATCH_WP_MATCHING |			\
				 MEMWATCH_CHECK_WPASYNC)
#define MEMWATCH_CHANGE_FLAGS	(MEMWATCH_CLEAR_SOFT_DIRTY |		\
				 MEMWATCH_WP_MATCHING)
#define MEMWATCH_CATEGORIES	(PAGE_IS_WPALLOWED | PAGE_IS_WRITTEN |	\
				 PAGE_IS_FILE | PAGE_IS_PRESENT |	\
				 PAGE_IS_SWAPPED | PAGE_IS_PFNZERO |	\
				 PAGE_IS_HUGE | PAGE_IS_SOFT_DIRTY)

/*
 * process_memwatch() reports the pages of [start, end) of the process
 * addressed by @pidfd that match the categories given in struct
 * memwatch_arg, exactly as PAGEMAP_SCAN does, and optionally changes them:
 *
 * MEMWATCH_CLEAR_SOFT_DIRTY: clear the soft-dirty state of every matching
 *	page, atomically with reporting it under the page table lock.
 *	Present PTEs are write-protected and cleaned, so the next write
 *	faults and marks the page soft-dirty again; swap and migration
 *	entries lose their soft-dirty bit (writable migration entries become
 *	read-only ones). Pages that may be pinned for DMA keep write access and
 *	are made soft-dirty instead. Pages of shared hugetlb mappings are
 *	never cleared, because mprotect() restores write access to them
 *	without a fault. A VMA with VM_SOFTDIRTY has every page soft-dirty:
 *	a call that clears any part of it first makes every present and swap
 *	entry of the VMA soft-dirty, clears the matching pages, then clears
 *	VM_SOFTDIRTY on the whole VMA. No VMA is ever split or merged; holes
 *	of that VMA that the call did not report read as clean afterwards.
 * MEMWATCH_WP_MATCHING: uffd write-protect every matching written page of
 *	async uffd-wp VMAs, skipping all other VMAs (PM_SCAN_WP_MATCHING).
 * MEMWATCH_CHECK_WPASYNC: fail on a VMA without async uffd-wp.
 *
 * Locking: each chunk takes the mmap lock for read, killable, and drops
 * it before the regions found are copied to the user's vec. Page table
 * entries change under their page table lock, the TLB is flushed for the
 * changed range before that lock is dropped, and the part of the range a
 * chunk may change is bracketed by mmu notifier invalidation. The walk runs
 * concurrently with page faults under the per-VMA lock: both change
 * entries only under the page table lock. Only a chunk that must clear
 * VM_SOFTDIRTY takes the mmap lock for write and write-locks that VMA.
 *
 * Tagged addresses: start and end are untagged for the target's mm, and the
 * regions in vec are untagged addresses, as in PAGEMAP_SCAN; walk_end keeps
 * the tag bits of start, so that the caller's resume loop ends.
 *
 * walk_end: written once (as start) before anything changes and again at
 * the end. It is end exactly when the whole range was examined; otherwise
 * the address just after the last page examined, and nothing at or after
 * it was reported or changed. The walk stops early when vec is full,
 * max_pages pages matched, a hugetlb page is partly inside a range to be
 * changed, or an error or fatal signal arrives after a change.
 *
 * Return: the number of regions written to vec, or:
 * -EINVAL: unknown flag or category, unaligned start, end below start,
 *	vec without vec_len, size below MEMWATCH_ARG_SIZE_VER0, or a hugetlb
 *	page partly inside a range to be changed at start.
 * -E2BIG: size above PAGE_SIZE, or unknown non-zero tail of the struct.
 * -EOPNOTSUPP: soft-dirty asked for without CONFIG_MEM_SOFT_DIRTY.
 * -EFAULT: arg or vec not accessible, or end above the target's address
 *	space.
 * -EBADF: @pidfd is not a pidfd.
 * -ESRCH: the process exited or has no mm.
 * -EPERM: no ptrace access (read access to report, attach access to
 *	change entries), or MEMWATCH_CHECK_WPASYNC found another VMA.
 * -ENOMEM: a kernel allocation failed.
 * -EINTR: a fatal signal arrived.
 * After the first change no error is returned: the walk stops and the
 * regions found are returned, with walk_end.
 */
static long do_process_memwatch(int pidfd, struct memwatch_arg __user *uarg,
				size_t usize, unsigned int flags)
{
	unsigned long end, task_size;
	struct pagescan scan = {};
	struct memwatch_arg arg;
	struct task_struct *task;
	unsigned int f_flags, mode;
	struct mm_struct *mm;
	struct pid *pid;
	u64 masks, tag;
	long ret;

	BUILD_BUG_ON(sizeof(arg) != MEMWATCH_ARG_SIZE_VER0);

	if (flags & ~MEMWATCH_FLAGS)
		return -EINVAL;
	if (usize < MEMWATCH_ARG_SIZE_VER0)
		return -EINVAL;
	if (usize > PAGE_SIZE)
		return -E2BIG;
	ret = copy_struct_from_user(&arg, sizeof(arg), uarg, usize);
	if (ret)
		return ret;

	masks = arg.category_inverted | arg.category_mask |
		arg.category_anyof_mask | arg.return_mask;
	if (masks & ~MEMWATCH_CATEGORIES)
		return -EINVAL;
	if (!IS_ENABLED(CONFIG_MEM_SOFT_DIRTY) &&
	    ((masks & PAGE_IS_SOFT_DIRTY) ||
	     (flags & MEMWATCH_CLEAR_SOFT_DIRTY)))
		return -EOPNOTSUPP;
	if (!PAGE_ALIGNED(arg.start))
		return -EINVAL;
	if (arg.end < arg.start)
		return -EINVAL;
	/* Beyond any address space, or rounds up to 0 */
	if (arg.end > (ULONG_MAX & PAGE_MASK))
		return -EFAULT;
	if (!arg.vec && arg.vec_len)
		return -EINVAL;
	if (arg.vec_len > SIZE_MAX)
		return -EINVAL;
	if (arg.vec_len) {
		arg.vec = untagged_addr(arg.vec);
		if (arg.vec > ULONG_MAX ||
		    !access_ok(u64_to_user_ptr(arg.vec),
			       size_mul(arg.vec_len,
					sizeof(struct page_region))))
			return -EFAULT;
	}

	pid = pidfd_get_pid(pidfd, &f_flags);
	if (IS_ERR(pid))
		return PTR_ERR(pid);
	/* By PIDTYPE_PID, so that a PIDFD_THREAD pidfd works too */
	task = get_pid_task(pid, PIDTYPE_PID);
	put_pid(pid);
	if (!task)
		return -ESRCH;

	/*
	 * Reporting reveals the target's write pattern: that needs read
	 * access. Changing its page tables needs attach access. Both use
	 * the real credentials, as befits an explicit system call.
	 */
	mode = (flags & MEMWATCH_CHANGE_FLAGS) ? PTRACE_MODE_ATTACH_REALCREDS :
						 PTRACE_MODE_READ_REALCREDS;
	mm = mm_access(task, mode);
	if (IS_ERR_OR_NULL(mm)) {
		ret = mm ? PTR_ERR(mm) : -ESRCH;
		if (ret == -EACCES)
			ret = -EPERM;
		goto release_task;
	}

	/* untagged_addr_remote() needs the mmap lock */
	ret = mmap_read_lock_killable(mm);
	if (ret)
		goto release_mm;
	scan.start = untagged_addr_remote(mm, arg.start);
	end = untagged_addr_remote(mm, arg.end);
	task_size = mm->task_size;
	mmap_read_unlock(mm);
	if (end < scan.start) {
		ret = -EINVAL;
		goto release_mm;
	}
	if (end > task_size) {
		ret = -EFAULT;
		goto release_mm;
	}
	scan.end = PAGE_ALIGN(end);

	scan.flags = PAGESCAN_EMPTY_AS_HOLE | PAGESCAN_KEEP_FILE_THP;
	if (flags & MEMWATCH_CLEAR_SOFT_DIRTY)
		scan.flags |= PAGESCAN_CLEAR_SOFT_DIRTY;
	if (flags & MEMWATCH_WP_MATCHING)
		scan.flags |= PAGESCAN_WP;
	if (flags & MEMWATCH_CHECK_WPASYNC)
		scan.flags |= PAGESCAN_CHECK_WPASYNC;
	scan.inverted = arg.category_inverted;
	scan.mask = arg.category_mask;
	scan.anyof = arg.category_anyof_mask;
	scan.return_mask = arg.return_mask;
	scan.max_pages = arg.max_pages ? min_t(u64, arg.max_pages, ULONG_MAX) :
					 ULONG_MAX;
	scan.vec = u64_to_user_ptr(arg.vec);
	scan.vec_len = arg.vec_len;

	if (put_user(arg.start, &uarg->walk_end)) {
		ret = -EFAULT;
		goto release_mm;
	}

	ret = pagescan(mm, &scan);
	/*
	 * Never fail after a change: report what was found, up to walk_end.
	 * Only a caller that unmaps its own vec or arg during the call can
	 * make the copies fail.
	 */
	if (ret && !scan.changed)
		goto release_mm;
	/* The tag bits untagged_addr_remote() took off start */
	tag = arg.start ^ scan.start;
	if (put_user((u64)scan.walk_end | tag, &uarg->walk_end) &&
	    !scan.changed) {
		ret = -EFAULT;
		goto release_mm;
	}
	ret = scan.nr_out;

release_mm:
	mmput(mm);
release_task:
	put_task_struct(task);
	return ret;
}

SYSCALL_DEFINE4(process_memwatch, int, pidfd, struct memwatch_arg __user *, uarg,
		size_t, usize, unsigned int, flags)
{
	return do_process_memwatch(pidfd, uarg, usize, flags);
}
