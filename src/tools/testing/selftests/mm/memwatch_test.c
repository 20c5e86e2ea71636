// SPDX-License-Identifier: GPL-2.0
/*
 * Tests for process_memwatch(2): report the pages of a process selected by
 * PAGE_IS_* categories and atomically re-arm soft-dirty tracking on exactly
 * the reported pages.
 *
 * Every test skips when the kernel lacks the system call (ENOSYS), and the
 * soft-dirty tests skip on a kernel without CONFIG_MEM_SOFT_DIRTY.  Tests
 * that need a resource the machine may lack (THP, hugetlb pages, swap, KSM,
 * io_uring, a spare zram device) skip with the reason.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <linux/fs.h>
#include <linux/io_uring.h>
#include <linux/kernel-page-flags.h>
#include <linux/memwatch.h>
#include <linux/mempolicy.h>
#include <linux/userfaultfd.h>
#include <lib/test_hmm_uapi.h>

#include "../kselftest_harness.h"
#include "vm_util.h"

#ifndef __NR_process_memwatch
#define __NR_process_memwatch 463
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define SD			PAGE_IS_SOFT_DIRTY
#define NPAGES			16	/* pages of the fixture mappings */
#define SCAN_VEC		64	/* entries per call in sd_scan() */
#define UNKNOWN_FLAG		0x8U
#define UNKNOWN_CATEGORY	BIT_ULL(63)
#define UID_NOBODY		65534

static size_t pagesize;

static inline long process_memwatch(int pidfd, struct memwatch_arg *arg,
				    size_t size, unsigned int flags)
{
	return syscall(__NR_process_memwatch, pidfd, arg, size, flags);
}

static inline int sys_pidfd_open(pid_t pid, unsigned int flags)
{
	return syscall(__NR_pidfd_open, pid, flags);
}

/*
 * Whether process_memwatch() exists.  The documented probe is
 * process_memwatch(-1, NULL, 0, 0) failing with EINVAL, but number 463 is
 * another system call on later mainline kernels, so a call that must
 * succeed, and write walk_end, confirms it.
 */
static bool memwatch_supported(void)
{
	struct memwatch_arg arg = { .walk_end = 1 };
	int pidfd;
	bool ok;

	if (process_memwatch(-1, NULL, 0, 0) != -1 || errno != EINVAL)
		return false;
	pidfd = sys_pidfd_open(getpid(), 0);
	if (pidfd < 0)
		return false;
	arg.start = (uintptr_t)&arg & ~(uintptr_t)(pagesize - 1);
	arg.end = arg.start;
	ok = !process_memwatch(pidfd, &arg, sizeof(arg), 0) &&
	     arg.walk_end == arg.end;
	close(pidfd);
	return ok;
}

/*
 * s390 gives user space an address space of its own, all of it below
 * -PAGE_SIZE (TASK_SIZE_MAX), and access_ok() has nothing to check
 * there: an end or a vec that lies beyond user space elsewhere is valid.
 */
static bool whole_address_space(void)
{
	struct utsname u;

	return !uname(&u) && !strncmp(u.machine, "s390", 4);
}

/* 0, or EOPNOTSUPP on a kernel without CONFIG_MEM_SOFT_DIRTY */
static int soft_dirty_probe(int pidfd)
{
	struct memwatch_arg arg = {
		.category_mask = SD,
		.return_mask = SD,
	};

	if (process_memwatch(pidfd, &arg, sizeof(arg),
			     MEMWATCH_CLEAR_SOFT_DIRTY) < 0)
		return errno;
	return 0;
}

static void mw_init(struct memwatch_arg *arg, void *start, size_t len,
		    struct page_region *vec, size_t vec_len)
{
	memset(arg, 0, sizeof(*arg));
	arg->start = (uintptr_t)start;
	arg->end = (uintptr_t)start + len;
	arg->vec = (uintptr_t)vec;
	arg->vec_len = vec_len;
	arg->category_mask = SD;
	arg->return_mask = SD;
}

#define PG(base, i)	((uintptr_t)(base) + (uintptr_t)(i) * pagesize)

/*
 * Report the pages of [addr, addr + npages pages) in category cat
 * (PAGE_IS_SOFT_DIRTY or PAGE_IS_WRITTEN) into map[] (1 = reported),
 * resuming at walk_end until the whole range has been examined.  With
 * MEMWATCH_CLEAR_SOFT_DIRTY or MEMWATCH_WP_MATCHING in flags they are also
 * cleared or write-protected.  Checks the shape of every answer: sorted,
 * coalesced, page aligned regions inside [start, walk_end), each page
 * reported once, walk_end == end when vec was not filled.  Returns the
 * number of reported pages.
 */
static long __mw_scan(struct __test_metadata *_metadata, int pidfd,
		      char *addr, size_t npages, unsigned int flags,
		      uint64_t cat, char *map)
{
	uint64_t pos = (uintptr_t)addr, end = PG(addr, npages);
	struct page_region vec[SCAN_VEC];
	struct memwatch_arg arg;
	long total = 0, ret, i;
	uint64_t a, prev;

	memset(map, 0, npages);
	while (pos < end) {
		mw_init(&arg, (void *)(uintptr_t)pos, end - pos, vec, SCAN_VEC);
		arg.category_mask = cat;
		arg.return_mask = cat;
		ret = process_memwatch(pidfd, &arg, sizeof(arg), flags);
		ASSERT_GE(ret, 0) {
			TH_LOG("process_memwatch: %s", strerror(errno));
		}
		ASSERT_LE(ret, SCAN_VEC);
		ASSERT_GT(arg.walk_end, pos);
		ASSERT_LE(arg.walk_end, end);
		if (ret < SCAN_VEC)
			ASSERT_EQ(end, arg.walk_end);
		prev = 0;
		for (i = 0; i < ret; i++) {
			ASSERT_EQ(cat, vec[i].categories);
			ASSERT_EQ(0, vec[i].start % pagesize);
			ASSERT_EQ(0, vec[i].end % pagesize);
			ASSERT_LT(vec[i].start, vec[i].end);
			ASSERT_GE(vec[i].start, pos);
			ASSERT_LE(vec[i].end, arg.walk_end);
			if (i)
				ASSERT_GT(vec[i].start, prev); /* coalesced */
			prev = vec[i].end;
			for (a = vec[i].start; a < vec[i].end; a += pagesize) {
				ASSERT_EQ(0, map[(a - (uintptr_t)addr) / pagesize]);
				map[(a - (uintptr_t)addr) / pagesize] = 1;
				total++;
			}
		}
		pos = arg.walk_end;
	}
	return total;
}

#define sd_scan(pidfd, addr, npages, flags, map) \
	__mw_scan(_metadata, pidfd, addr, npages, flags, SD, map)

/*
 * Check the state of the pages at addr in category cat against expect, one
 * character a page: '1' must be reported, '0' must not be, '.' either way.
 */
static void __mw_expect(struct __test_metadata *_metadata, int pidfd,
			char *addr, unsigned int flags, uint64_t cat,
			const char *expect)
{
	size_t i, n = strlen(expect);
	char map[NPAGES * 4], got[NPAGES * 4 + 1];
	bool ok = true;

	ASSERT_LE(n, sizeof(map));
	__mw_scan(_metadata, pidfd, addr, n, flags, cat, map);
	for (i = 0; i < n; i++) {
		got[i] = map[i] ? '1' : '0';
		if (expect[i] != '.' && expect[i] != got[i])
			ok = false;
	}
	got[n] = '\0';
	ASSERT_TRUE(ok) {
		TH_LOG("%s pages: expected %s, reported %s",
		       cat == SD ? "soft-dirty" : "written", expect, got);
	}
}

static void __sd_expect(struct __test_metadata *_metadata, int pidfd,
			char *addr, unsigned int flags, const char *expect)
{
	__mw_expect(_metadata, pidfd, addr, flags, SD, expect);
}

#define sd_expect(addr, flags, expect) \
	__sd_expect(_metadata, self->pidfd, addr, flags, expect)

/* Clear [addr, addr + npages pages) without a vector (ResetWriteWatch) */
static void __sd_reset(struct __test_metadata *_metadata, int pidfd,
		       char *addr, size_t npages)
{
	struct memwatch_arg arg;

	mw_init(&arg, addr, npages * pagesize, NULL, 0);
	ASSERT_EQ(0, process_memwatch(pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY)) {
		TH_LOG("clear: %s", strerror(errno));
	}
	ASSERT_EQ(arg.end, arg.walk_end);
}

#define sd_reset(addr, npages) __sd_reset(_metadata, self->pidfd, addr, npages)

/* Write to page i (an increment of its first byte), or read it */
static void touch(char *addr, size_t i)
{
	__atomic_fetch_add(&addr[i * pagesize], 1, __ATOMIC_RELAXED);
}

static char peek(char *addr, size_t i)
{
	return __atomic_load_n(&addr[i * pagesize], __ATOMIC_RELAXED);
}

/* Write every page marked '1' in pattern */
static void write_pattern(char *addr, const char *pattern)
{
	size_t i;

	for (i = 0; pattern[i]; i++)
		if (pattern[i] == '1')
			touch(addr, i);
}

/* A clean steady state, then exactly the pages of pattern written */
static void __sd_prepare(struct __test_metadata *_metadata, int pidfd,
			 char *addr, const char *pattern)
{
	__sd_reset(_metadata, pidfd, addr, strlen(pattern));
	write_pattern(addr, pattern);
	__sd_expect(_metadata, pidfd, addr, 0, pattern);
}

#define sd_prepare(addr, pattern) \
	__sd_prepare(_metadata, self->pidfd, addr, pattern)

/*
 * An anonymous mapping of n pages between two PROT_NONE guard pages, so
 * that it never merges with a neighbour.
 */
static char *map_guarded(size_t n)
{
	char *p = mmap(NULL, (n + 2) * pagesize, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	mprotect(p, pagesize, PROT_NONE);
	mprotect(p + (n + 1) * pagesize, pagesize, PROT_NONE);
	madvise(p + pagesize, n * pagesize, MADV_NOHUGEPAGE);
	return p + pagesize;
}

static void unmap_guarded(char *p, size_t n)
{
	munmap(p - pagesize, (n + 2) * pagesize);
}

/* Bounds of the VMA holding addr and the number of VMAs, from maps */
static int vma_bounds(void *addr, uintptr_t *start, uintptr_t *end)
{
	unsigned long s, e;
	char line[512];
	int count = 0;
	FILE *f;

	f = fopen("/proc/self/maps", "r");
	if (!f)
		return -1;
	*start = *end = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx", &s, &e) != 2)
			continue;
		count++;
		if (s <= (uintptr_t)addr && (uintptr_t)addr < e) {
			*start = s;
			*end = e;
		}
	}
	fclose(f);
	return count;
}

static bool thp_available(void)
{
	char buf[128] = "";
	FILE *f;

	f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return buf[0] && !strstr(buf, "[never]");
}

/* One PMD-aligned, PMD-sized reservation of address space */
static char *pmd_reserve(size_t pmd)
{
	char *raw, *p;

	raw = mmap(NULL, 2 * pmd, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	p = (char *)(((uintptr_t)raw + pmd - 1) & ~(pmd - 1));
	if (p > raw)
		munmap(raw, p - raw);
	if (p + pmd < raw + 2 * pmd)
		munmap(p + pmd, raw + 2 * pmd - (p + pmd));
	return p;
}

/* One PMD-aligned, PMD-sized anonymous mapping with MADV_HUGEPAGE */
static char *thp_map(size_t pmd)
{
	char *p = pmd_reserve(pmd);

	if (!p)
		return NULL;
	if (mmap(p, pmd, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != p ||
	    madvise(p, pmd, MADV_HUGEPAGE)) {
		munmap(p, pmd);
		return NULL;
	}
	return p;
}

static int read_file_str(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

static int write_file_str(const char *path, const char *val)
{
	ssize_t n;
	int fd;

	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * The start of every fixture's setup: a pidfd of this process, or -1 after
 * a SKIP where process_memwatch() or soft-dirty tracking is missing.
 */
static int __self_pidfd(struct __test_metadata *_metadata)
{
	int pidfd;

	if (!memwatch_supported())
		SKIP(return -1, "process_memwatch() not supported");
	pidfd = sys_pidfd_open(getpid(), 0);
	ASSERT_GE(pidfd, 0);
	if (soft_dirty_probe(pidfd) == EOPNOTSUPP) {
		close(pidfd);
		SKIP(return -1,
		     "no soft-dirty tracking (CONFIG_MEM_SOFT_DIRTY)");
	}
	return pidfd;
}

#define self_pidfd() __self_pidfd(_metadata)

/*
 * The main fixture: the test process watched through its own pidfd, and
 * NPAGES written anonymous pages between guard pages.
 */
FIXTURE(memwatch) {
	int pidfd;
	char *addr;
};

FIXTURE_SETUP(memwatch)
{
	self->pidfd = self_pidfd();
	if (self->pidfd < 0)
		return;
	self->addr = map_guarded(NPAGES);
	ASSERT_NE(NULL, self->addr);
	memset(self->addr, 1, NPAGES * pagesize);
}

FIXTURE_TEARDOWN(memwatch)
{
	unmap_guarded(self->addr, NPAGES);
	close(self->pidfd);
}

/* ---- Arguments ---- */

TEST_F(memwatch, probe_einval)
{
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(-1, NULL, 0, 0));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(memwatch, unknown_flags)
{
	unsigned int bad[] = { UNKNOWN_FLAG, 1U << 31, ~0U };
	struct memwatch_arg arg;
	size_t i;

	sd_prepare(self->addr, "1010101010101010");
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		mw_init(&arg, self->addr, NPAGES * pagesize, NULL, 0);
		errno = 0;
		EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg, sizeof(arg),
					       bad[i] |
					       MEMWATCH_CLEAR_SOFT_DIRTY));
		EXPECT_EQ(EINVAL, errno);
	}
	sd_expect(self->addr, 0, "1010101010101010");
}

TEST_F(memwatch, unknown_categories)
{
	uint64_t bad[] = { UNKNOWN_CATEGORY, 1ULL << 32 };
	struct page_region vec[4];
	struct memwatch_arg arg;
	size_t i, j;

	sd_prepare(self->addr, "1010101010101010");
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		for (j = 0; j < 4; j++) {
			mw_init(&arg, self->addr, NPAGES * pagesize, vec, 4);
			if (j == 0)
				arg.category_inverted |= bad[i];
			if (j == 1)
				arg.category_mask |= bad[i];
			if (j == 2)
				arg.category_anyof_mask |= bad[i];
			if (j == 3)
				arg.return_mask |= bad[i];
			errno = 0;
			EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg,
						       sizeof(arg),
						       MEMWATCH_CLEAR_SOFT_DIRTY));
			EXPECT_EQ(EINVAL, errno) {
				TH_LOG("bit %#llx in mask %zu",
				       (unsigned long long)bad[i], j);
			}
		}
	}
	sd_expect(self->addr, 0, "1010101010101010");
}

TEST_F(memwatch, size_below_ver0)
{
	struct memwatch_arg arg;
	size_t sizes[] = { 0, 8, MEMWATCH_ARG_SIZE_VER0 - 8,
			   MEMWATCH_ARG_SIZE_VER0 - 1 };
	size_t i;

	ASSERT_EQ(MEMWATCH_ARG_SIZE_VER0, sizeof(arg));
	sd_prepare(self->addr, "1100110011001100");
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		mw_init(&arg, self->addr, NPAGES * pagesize, NULL, 0);
		errno = 0;
		EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg, sizes[i],
					       MEMWATCH_CLEAR_SOFT_DIRTY));
		EXPECT_EQ(EINVAL, errno);
	}
	sd_expect(self->addr, 0, "1100110011001100");
}

struct memwatch_arg_big {
	struct memwatch_arg arg;
	uint64_t tail[3];
};

TEST_F(memwatch, size_above_ver0_zero_tail)
{
	struct memwatch_arg_big big;
	struct page_region vec[4];
	long ret;

	sd_prepare(self->addr, "0011000000000000");
	memset(&big, 0, sizeof(big));
	mw_init(&big.arg, self->addr, NPAGES * pagesize, vec, 4);
	ret = process_memwatch(self->pidfd, &big.arg, sizeof(big),
			       MEMWATCH_CLEAR_SOFT_DIRTY);
	ASSERT_EQ(1, ret) {
		TH_LOG("process_memwatch: %s", strerror(errno));
	}
	EXPECT_EQ(PG(self->addr, 2), vec[0].start);
	EXPECT_EQ(PG(self->addr, 4), vec[0].end);
	EXPECT_EQ(big.arg.end, big.arg.walk_end);
	/* The unknown tail is never written */
	EXPECT_EQ(0, big.tail[0]);
	EXPECT_EQ(0, big.tail[1]);
	EXPECT_EQ(0, big.tail[2]);
	sd_expect(self->addr, 0, "0000000000000000");
}

TEST_F(memwatch, size_above_ver0_nonzero_tail)
{
	struct memwatch_arg_big big;
	struct page_region vec[4];
	size_t i;

	sd_prepare(self->addr, "0011000000000001");
	for (i = 0; i < ARRAY_SIZE(big.tail); i++) {
		memset(&big, 0, sizeof(big));
		mw_init(&big.arg, self->addr, NPAGES * pagesize, vec, 4);
		big.tail[i] = 1;
		errno = 0;
		EXPECT_EQ(-1, process_memwatch(self->pidfd, &big.arg,
					       sizeof(big),
					       MEMWATCH_CLEAR_SOFT_DIRTY));
		EXPECT_EQ(E2BIG, errno);
		EXPECT_EQ(0, big.arg.walk_end);
	}
	sd_expect(self->addr, 0, "0011000000000001");
}

TEST_F(memwatch, size_above_page_size)
{
	struct memwatch_arg *arg;
	char *buf;

	sd_prepare(self->addr, "0011000000000001");
	buf = calloc(1, 2 * pagesize);
	ASSERT_NE(NULL, buf);
	arg = (struct memwatch_arg *)buf;
	mw_init(arg, self->addr, NPAGES * pagesize, NULL, 0);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(self->pidfd, arg, pagesize + 8,
				       MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(E2BIG, errno);
	/* A whole page with a zero tail is still accepted */
	EXPECT_EQ(0, process_memwatch(self->pidfd, arg, pagesize, 0));
	free(buf);
	sd_expect(self->addr, 0, "0011000000000001");
}

TEST_F(memwatch, bad_arg_pointer)
{
	char *none;

	errno = 0;
	EXPECT_EQ(-1, process_memwatch(self->pidfd, NULL,
				       MEMWATCH_ARG_SIZE_VER0, 0));
	EXPECT_EQ(EFAULT, errno);

	none = mmap(NULL, pagesize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	ASSERT_NE(MAP_FAILED, none);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(self->pidfd, (void *)none,
				       MEMWATCH_ARG_SIZE_VER0,
				       MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(EFAULT, errno);
	munmap(none, pagesize);
}

TEST_F(memwatch, unaligned_start)
{
	struct memwatch_arg arg;

	sd_prepare(self->addr, "1111000000000000");
	mw_init(&arg, self->addr + 1, NPAGES * pagesize - 1, NULL, 0);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg, sizeof(arg),
				       MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(EINVAL, errno);
	sd_expect(self->addr, 0, "1111000000000000");
}

TEST_F(memwatch, end_before_start)
{
	struct memwatch_arg arg;

	sd_prepare(self->addr, "1111000000000000");
	mw_init(&arg, self->addr + pagesize, 0, NULL, 0);
	arg.end = (uintptr_t)self->addr;
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg, sizeof(arg),
				       MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(EINVAL, errno);
	sd_expect(self->addr, 0, "1111000000000000");
}

TEST_F(memwatch, vec_null_with_len)
{
	struct memwatch_arg arg;

	sd_prepare(self->addr, "1111000000000000");
	mw_init(&arg, self->addr, NPAGES * pagesize, NULL, 1);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg, sizeof(arg),
				       MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(EINVAL, errno);
	sd_expect(self->addr, 0, "1111000000000000");
}

/*
 * vec_len * sizeof(struct page_region) wraps to a small number: the call
 * must fail rather than check (and write) a 16-byte vector.
 */
TEST_F(memwatch, vec_len_overflow)
{
	uint64_t lens[] = {
		UINT64_MAX / sizeof(struct page_region) + 2,
		UINT64_MAX / sizeof(struct page_region) + 1,
		UINT64_MAX,
	};
	struct page_region vec[2];
	struct memwatch_arg arg;
	size_t i;

	if (whole_address_space())
		SKIP(return, "access_ok() accepts any vec_len on this architecture");
	sd_prepare(self->addr, "1010101010101010");
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		memset(vec, 0x5a, sizeof(vec));
		mw_init(&arg, self->addr, NPAGES * pagesize, vec, 1);
		arg.vec_len = lens[i];
		errno = 0;
		EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg, sizeof(arg),
					       MEMWATCH_CLEAR_SOFT_DIRTY));
		EXPECT_EQ(EFAULT, errno) {
			TH_LOG("vec_len %#llx", (unsigned long long)lens[i]);
		}
		EXPECT_EQ(0x5a5a5a5a5a5a5a5aULL, vec[1].start);
	}
	sd_expect(self->addr, 0, "1010101010101010");
}

TEST_F(memwatch, end_beyond_task_size)
{
	const uint64_t ends[] = { 1ULL << 63, -(uint64_t)pagesize,
			    (1ULL << 57) + pagesize,
			    -(uint64_t)pagesize + 1 };	/* rounds up to 0 */
	struct memwatch_arg arg;
	size_t i;

	sd_prepare(self->addr, "1010101010101010");
	for (i = 0; i < ARRAY_SIZE(ends); i++) {
		mw_init(&arg, self->addr, 0, NULL, 0);
		arg.end = ends[i];
		if (whole_address_space() && i < ARRAY_SIZE(ends) - 1) {
			/* in the address space: walked, nothing there */
			arg.start = ends[i] - pagesize;
			EXPECT_EQ(0, process_memwatch(self->pidfd, &arg,
						      sizeof(arg),
						      MEMWATCH_CLEAR_SOFT_DIRTY));
			EXPECT_EQ(arg.end, arg.walk_end);
			continue;
		}
		errno = 0;
		EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg, sizeof(arg),
					       MEMWATCH_CLEAR_SOFT_DIRTY));
		EXPECT_EQ(EFAULT, errno) {
			TH_LOG("end %#llx", (unsigned long long)ends[i]);
		}
	}
	sd_expect(self->addr, 0, "1010101010101010");
}

TEST_F(memwatch, start_equals_end)
{
	struct page_region vec[2];
	struct memwatch_arg arg;

	sd_prepare(self->addr, "1111111111111111");
	mw_init(&arg, self->addr + 4 * pagesize, 0, vec, 2);
	EXPECT_EQ(0, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(arg.end, arg.walk_end);
	sd_expect(self->addr, 0, "1111111111111111");
}

TEST_F(memwatch, end_rounded_up)
{
	struct page_region vec[2];
	struct memwatch_arg arg;

	sd_prepare(self->addr, "1111111111111111");
	mw_init(&arg, self->addr, 1, vec, 2);
	ASSERT_EQ(1, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(PG(self->addr, 0), vec[0].start);
	EXPECT_EQ(PG(self->addr, 1), vec[0].end);
	EXPECT_EQ(PG(self->addr, 1), arg.walk_end);
	sd_expect(self->addr, 0, "0111111111111111");
}

TEST_F(memwatch, bad_pidfd)
{
	struct memwatch_arg arg;
	int fds[2], memfd;

	sd_prepare(self->addr, "1111000000000000");
	mw_init(&arg, self->addr, NPAGES * pagesize, NULL, 0);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(-1, &arg, sizeof(arg), 0));
	EXPECT_EQ(EBADF, errno);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(INT_MAX, &arg, sizeof(arg), 0));
	EXPECT_EQ(EBADF, errno);

	/* File descriptors that are not pidfds */
	ASSERT_EQ(0, pipe(fds));
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(fds[0], &arg, sizeof(arg),
				       MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(EBADF, errno);
	close(fds[0]);
	close(fds[1]);
	memfd = memfd_create("memwatch", 0);
	ASSERT_GE(memfd, 0);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(memfd, &arg, sizeof(arg),
				       MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(EBADF, errno);
	close(memfd);
	sd_expect(self->addr, 0, "1111000000000000");
}

/*
 * flags, then size and the copy of *arg, then its fields, then vec, then the
 * pidfd: with several broken arguments, the first one decides the errno.
 */
TEST_F(memwatch, check_order)
{
	struct memwatch_arg arg;
	char *buf;

	buf = calloc(1, 2 * pagesize);
	ASSERT_NE(NULL, buf);

	errno = 0;
	EXPECT_EQ(-1, process_memwatch(-1, NULL, MEMWATCH_ARG_SIZE_VER0,
				       UNKNOWN_FLAG));
	EXPECT_EQ(EINVAL, errno);

	mw_init((void *)buf, self->addr, pagesize, NULL, 0);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(-1, (void *)buf, pagesize + 8, 0));
	EXPECT_EQ(E2BIG, errno);

	errno = 0;
	EXPECT_EQ(-1, process_memwatch(-1, NULL, MEMWATCH_ARG_SIZE_VER0, 0));
	EXPECT_EQ(EFAULT, errno);

	mw_init(&arg, self->addr + 1, pagesize, NULL, 0);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(-1, &arg, sizeof(arg), 0));
	EXPECT_EQ(EINVAL, errno);

	mw_init(&arg, self->addr, pagesize, NULL, 0);
	arg.return_mask |= UNKNOWN_CATEGORY;
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(-1, &arg, sizeof(arg), 0));
	EXPECT_EQ(EINVAL, errno);

	mw_init(&arg, self->addr, pagesize, NULL, 3);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(-1, &arg, sizeof(arg), 0));
	EXPECT_EQ(EINVAL, errno);

	/* where access_ok() checks nothing, vec is checked when written */
	mw_init(&arg, self->addr, pagesize, NULL, 1);
	arg.vec = 1ULL << 63;
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(-1, &arg, sizeof(arg), 0));
	EXPECT_EQ(whole_address_space() ? EBADF : EFAULT, errno);

	mw_init(&arg, self->addr, pagesize, NULL, 0);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(-1, &arg, sizeof(arg), 0));
	EXPECT_EQ(EBADF, errno);

	free(buf);
}

/* Guarantee 5: walk_end is written before any side effect */
TEST_F(memwatch, readonly_arg)
{
	struct page_region vec[4];
	struct memwatch_arg *arg;

	sd_prepare(self->addr, "1100110011001100");
	arg = mmap(NULL, pagesize, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, arg);
	mw_init(arg, self->addr, NPAGES * pagesize, vec, 4);
	ASSERT_EQ(0, mprotect(arg, pagesize, PROT_READ));
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(self->pidfd, arg, sizeof(*arg),
				       MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(EFAULT, errno);
	/* and without a vector */
	ASSERT_EQ(0, mprotect(arg, pagesize, PROT_READ | PROT_WRITE));
	mw_init(arg, self->addr, NPAGES * pagesize, NULL, 0);
	ASSERT_EQ(0, mprotect(arg, pagesize, PROT_READ));
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(self->pidfd, arg, sizeof(*arg),
				       MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(EFAULT, errno);
	munmap(arg, pagesize);
	sd_expect(self->addr, 0, "1100110011001100");
}

/* Guarantee 5: vec is faulted in writable before anything changes */
TEST_F(memwatch, readonly_vec)
{
	struct memwatch_arg arg;
	char *vec;

	sd_prepare(self->addr, "1100110011001100");
	vec = mmap(NULL, 2 * pagesize, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, vec);
	memset(vec, 0, 2 * pagesize);

	/* Read-only, populated */
	ASSERT_EQ(0, mprotect(vec, 2 * pagesize, PROT_READ));
	mw_init(&arg, self->addr, NPAGES * pagesize, (void *)vec, 4);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg, sizeof(arg),
				       MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(EFAULT, errno);

	/* Writable first entries, read-only rest: the tail is never used */
	ASSERT_EQ(0, mprotect(vec, pagesize, PROT_READ | PROT_WRITE));
	mw_init(&arg, self->addr, NPAGES * pagesize,
		(void *)(vec + pagesize - sizeof(struct page_region)), 4);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg, sizeof(arg),
				       MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(EFAULT, errno);

	/* PROT_NONE */
	ASSERT_EQ(0, mprotect(vec, 2 * pagesize, PROT_NONE));
	mw_init(&arg, self->addr, NPAGES * pagesize, (void *)vec, 4);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg, sizeof(arg),
				       MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(EFAULT, errno);
	munmap(vec, 2 * pagesize);
	sd_expect(self->addr, 0, "1100110011001100");
}

/* Only walk_end is written in *arg; nothing past vec_len in vec */
TEST_F(memwatch, only_walk_end_written)
{
	struct page_region vec[4];
	struct memwatch_arg arg, copy;

	sd_prepare(self->addr, "1010101010101010");
	memset(vec, 0x5a, sizeof(vec));
	mw_init(&arg, self->addr, NPAGES * pagesize, vec, 3);
	arg.walk_end = 0x1234;
	arg.max_pages = 1000;
	arg.return_mask |= PAGE_IS_PRESENT;
	copy = arg;
	ASSERT_EQ(3, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_GE(arg.walk_end, PG(self->addr, 5));
	EXPECT_LE(arg.walk_end, PG(self->addr, 6));
	copy.walk_end = arg.walk_end;
	EXPECT_EQ(0, memcmp(&arg, &copy, sizeof(arg)));
	EXPECT_EQ(0x5a5a5a5a5a5a5a5aULL, vec[3].start);
	EXPECT_EQ(0x5a5a5a5a5a5a5a5aULL, vec[3].categories);
	EXPECT_EQ(PAGE_IS_PRESENT | SD, vec[2].categories);
	sd_expect(self->addr, 0, "0000001010101010");
}

/* Addresses without a VMA are skipped, never an error */
TEST_F(memwatch, unmapped_hole_skipped)
{
	struct page_region vec[4];
	struct memwatch_arg arg;

	ASSERT_EQ(0, munmap(self->addr + 4 * pagesize, 4 * pagesize));
	sd_expect(self->addr, 0, "1111000011111111");
	mw_init(&arg, self->addr + 4 * pagesize, 4 * pagesize, vec, 4);
	EXPECT_EQ(0, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(arg.end, arg.walk_end);
	sd_expect(self->addr, MEMWATCH_CLEAR_SOFT_DIRTY, "1111000011111111");
	sd_expect(self->addr, 0, "0000000000000000");
	/* A range with no VMA at all */
	mw_init(&arg, (void *)pagesize, 15 * pagesize, vec, 4);
	EXPECT_EQ(0, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(arg.end, arg.walk_end);
}

/* A process without an mm (kthreadd) is ESRCH */
TEST_F(memwatch, kernel_thread)
{
	struct memwatch_arg arg;
	char buf[256];
	int fd;

	if (read_file_str("/proc/2/stat", buf, sizeof(buf)) ||
	    !strstr(buf, "(kthreadd)"))
		SKIP(return, "pid 2 is not kthreadd here");
	fd = sys_pidfd_open(2, 0);
	if (fd < 0)
		SKIP(return, "pidfd_open(kthreadd): %s", strerror(errno));
	mw_init(&arg, self->addr, pagesize, NULL, 0);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(fd, &arg, sizeof(arg), 0));
	EXPECT_EQ(ESRCH, errno);
	close(fd);
}

/* ---- Cross-process ---- */

/*
 * A child that maps NPAGES / 2 pages, writes them, sends their address and
 * then writes page c for every byte c it receives, answering each.
 */
static void child_loop(int sk)
{
	size_t n = NPAGES / 2;
	char *p, c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	p = map_guarded(n);
	if (!p)
		_exit(1);
	memset(p, 1, n * pagesize);
	if (send(sk, &p, sizeof(p), 0) != sizeof(p))
		_exit(1);
	while (recv(sk, &c, 1, 0) == 1) {
		if (c == 'q')
			break;
		touch(p, c);
		if (send(sk, &c, 1, 0) != 1)
			_exit(1);
	}
	_exit(0);
}

static void child_write(int sk, char page)
{
	char c;

	if (send(sk, &page, 1, 0) == 1)
		recv(sk, &c, 1, 0);
}

TEST_F(memwatch, child_pidfd)
{
	int sk[2], cpidfd, status;
	char *caddr = NULL;
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sk));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		close(sk[0]);
		child_loop(sk[1]);
	}
	close(sk[1]);
	ASSERT_EQ(sizeof(caddr), recv(sk[0], &caddr, sizeof(caddr), 0));
	cpidfd = sys_pidfd_open(pid, 0);
	ASSERT_GE(cpidfd, 0);

	__sd_expect(_metadata, cpidfd, caddr, 0, "11111111");
	__sd_expect(_metadata, cpidfd, caddr, MEMWATCH_CLEAR_SOFT_DIRTY,
		    "11111111");
	__sd_expect(_metadata, cpidfd, caddr, 0, "00000000");
	child_write(sk[0], 2);
	child_write(sk[0], 5);
	__sd_expect(_metadata, cpidfd, caddr, MEMWATCH_CLEAR_SOFT_DIRTY,
		    "00100100");
	__sd_expect(_metadata, cpidfd, caddr, 0, "00000000");
	child_write(sk[0], 7);
	__sd_expect(_metadata, cpidfd, caddr, 0, "00000001");
	/* The caller's own pages at the same address are not the child's */
	sd_prepare(self->addr, "1111111100000000");

	send(sk[0], "q", 1, 0);
	close(sk[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	close(cpidfd);
}

TEST_F(memwatch, exited_child)
{
	struct memwatch_arg arg;
	siginfo_t info;
	int cpidfd;
	pid_t pid;

	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(0);
	cpidfd = sys_pidfd_open(pid, 0);
	ASSERT_GE(cpidfd, 0);
	/* A zombie: no mm any more */
	ASSERT_EQ(0, waitid(P_PID, pid, &info, WEXITED | WNOWAIT));
	mw_init(&arg, self->addr, NPAGES * pagesize, NULL, 0);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(cpidfd, &arg, sizeof(arg), 0));
	EXPECT_EQ(ESRCH, errno);
	/* Reaped */
	ASSERT_EQ(pid, waitpid(pid, NULL, 0));
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(cpidfd, &arg, sizeof(arg),
				       MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(ESRCH, errno);
	close(cpidfd);
}

/*
 * A caller of another uid without CAP_SYS_PTRACE may neither read nor clear
 * the test process, and nothing changes.
 */
TEST_F(memwatch, other_uid_eperm)
{
	struct page_region vec[4];
	struct memwatch_arg arg;
	int status;
	pid_t pid;

	if (geteuid())
		SKIP(return, "needs root to switch uid");
	sd_prepare(self->addr, "1001100110011001");
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		int bad = 0;

		if (setgroups(0, NULL) ||
		    setresgid(UID_NOBODY, UID_NOBODY, UID_NOBODY) ||
		    setresuid(UID_NOBODY, UID_NOBODY, UID_NOBODY))
			_exit(100);
		mw_init(&arg, self->addr, NPAGES * pagesize, vec, 4);
		if (process_memwatch(self->pidfd, &arg, sizeof(arg), 0) != -1 ||
		    errno != EPERM)
			bad |= 1;
		if (process_memwatch(self->pidfd, &arg, sizeof(arg),
				     MEMWATCH_CLEAR_SOFT_DIRTY) != -1 ||
		    errno != EPERM)
			bad |= 2;
		mw_init(&arg, self->addr, NPAGES * pagesize, NULL, 0);
		if (process_memwatch(self->pidfd, &arg, sizeof(arg),
				     MEMWATCH_CLEAR_SOFT_DIRTY) != -1 ||
		    errno != EPERM)
			bad |= 4;
		_exit(bad);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_NE(100, WEXITSTATUS(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) {
		TH_LOG("calls that did not fail with EPERM: mask %d",
		       WEXITSTATUS(status));
	}
	sd_expect(self->addr, 0, "1001100110011001");
}

static int thread_pipe[2];
static pid_t thread_tid;

static void *thread_wait(void *unused)
{
	char c;

	__atomic_store_n(&thread_tid, syscall(SYS_gettid), __ATOMIC_RELEASE);
	if (read(thread_pipe[0], &c, 1) < 0)
		return NULL;
	return NULL;
}

/* A PIDFD_THREAD pidfd of a non-leader thread addresses the process' mm */
TEST_F(memwatch, thread_pidfd)
{
	pthread_t thread;
	pid_t tid;
	int tfd;

	ASSERT_EQ(0, pipe(thread_pipe));
	ASSERT_EQ(0, pthread_create(&thread, NULL, thread_wait, NULL));
	while (!(tid = __atomic_load_n(&thread_tid, __ATOMIC_ACQUIRE)))
		sched_yield();
	tfd = sys_pidfd_open(tid, PIDFD_THREAD);
	if (tfd < 0) {
		int err = errno;

		write(thread_pipe[1], "q", 1);
		pthread_join(thread, NULL);
		SKIP(return, "pidfd_open(PIDFD_THREAD): %s", strerror(err));
	}
	sd_prepare(self->addr, "0110011001100110");
	__sd_expect(_metadata, tfd, self->addr, MEMWATCH_CLEAR_SOFT_DIRTY,
		    "0110011001100110");
	sd_expect(self->addr, 0, "0000000000000000");
	touch(self->addr, 3);
	__sd_expect(_metadata, tfd, self->addr, 0, "0001000000000000");
	close(tfd);

	/* The leader's thread pidfd too */
	tfd = sys_pidfd_open(getpid(), PIDFD_THREAD);
	ASSERT_GE(tfd, 0);
	__sd_expect(_metadata, tfd, self->addr, MEMWATCH_CLEAR_SOFT_DIRTY,
		    "0001000000000000");
	close(tfd);
	write(thread_pipe[1], "q", 1);
	pthread_join(thread, NULL);
	sd_expect(self->addr, 0, "0000000000000000");
}

/* ---- Semantics ---- */

/* A new mapping is dirty, even where it was only read (zero page) */
TEST_F(memwatch, new_mapping_dirty)
{
	char *p = map_guarded(8);
	size_t i;

	ASSERT_NE(NULL, p);
	for (i = 0; i < 8; i++)
		peek(p, i);
	__sd_expect(_metadata, self->pidfd, p, 0, "11111111");
	sd_expect(self->addr, 0, "1111111111111111");
	unmap_guarded(p, 8);
}

/* Clean after a clear, dirty again exactly where written */
TEST_F(memwatch, clear_write_cycle)
{
	static const char * const patterns[] = {
		"1000000000000001", "0111111111111110", "0000010000000000",
		"1111111111111111", "0000000000000000", "1010101010101010",
	};
	char map[NPAGES];
	size_t i;

	sd_expect(self->addr, 0, "1111111111111111");
	EXPECT_EQ(NPAGES, sd_scan(self->pidfd, self->addr, NPAGES,
				  MEMWATCH_CLEAR_SOFT_DIRTY, map));
	sd_expect(self->addr, 0, "0000000000000000");
	for (i = 0; i < ARRAY_SIZE(patterns); i++) {
		write_pattern(self->addr, patterns[i]);
		sd_expect(self->addr, 0, patterns[i]);
		sd_expect(self->addr, MEMWATCH_CLEAR_SOFT_DIRTY, patterns[i]);
		sd_expect(self->addr, 0, "0000000000000000");
	}
}

/* Guarantee 2: a sub-range clear leaves its neighbours dirty */
TEST_F(memwatch, subrange_clear)
{
	char map[4];

	sd_prepare(self->addr, "1111111111111111");
	EXPECT_EQ(4, sd_scan(self->pidfd, self->addr + 4 * pagesize, 4,
			     MEMWATCH_CLEAR_SOFT_DIRTY, map));
	sd_expect(self->addr, 0, "1111000011111111");
	/* Clear-only (ResetWriteWatch) of another sub-range */
	sd_reset(self->addr + 12 * pagesize, 2);
	sd_expect(self->addr, 0, "1111000011110011");
}

/*
 * GetWriteWatch with a short buffer and WRITE_WATCH_FLAG_RESET: exactly the
 * returned pages are reset, the next call returns the rest.
 */
TEST_F(memwatch, short_vec_clears_only_reported)
{
	struct page_region vec[3];
	struct memwatch_arg arg;

	sd_prepare(self->addr, "0101010101000000");
	memset(vec, 0x5a, sizeof(vec));
	mw_init(&arg, self->addr, NPAGES * pagesize, vec, 2);
	ASSERT_EQ(2, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(PG(self->addr, 1), vec[0].start);
	EXPECT_EQ(PG(self->addr, 2), vec[0].end);
	EXPECT_EQ(PG(self->addr, 3), vec[1].start);
	EXPECT_EQ(PG(self->addr, 4), vec[1].end);
	EXPECT_EQ(0x5a5a5a5a5a5a5a5aULL, vec[2].start);
	/* Stopped between the last reported and the first unreported page */
	EXPECT_GE(arg.walk_end, PG(self->addr, 4));
	EXPECT_LE(arg.walk_end, PG(self->addr, 5));
	sd_expect(self->addr, 0, "0000010101000000");
	sd_expect(self->addr, MEMWATCH_CLEAR_SOFT_DIRTY, "0000010101000000");
	sd_expect(self->addr, 0, "0000000000000000");
}

/* Wine's way: max_pages = number of addresses that fit */
TEST_F(memwatch, max_pages)
{
	struct page_region vec[4];
	struct memwatch_arg arg;

	sd_prepare(self->addr, "0011111111000000");
	mw_init(&arg, self->addr, NPAGES * pagesize, vec, 4);
	arg.max_pages = 3;
	ASSERT_EQ(1, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(PG(self->addr, 2), vec[0].start);
	EXPECT_EQ(PG(self->addr, 5), vec[0].end);
	/* Page 5 matched but was not reported: walk_end must not pass it */
	EXPECT_EQ(PG(self->addr, 5), arg.walk_end);
	sd_expect(self->addr, 0, "0000011111000000");

	/* max_pages over two regions */
	write_pattern(self->addr, "1100000000000000");
	mw_init(&arg, self->addr, NPAGES * pagesize, vec, 4);
	arg.max_pages = 4;
	ASSERT_EQ(2, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(PG(self->addr, 0), vec[0].start);
	EXPECT_EQ(PG(self->addr, 2), vec[0].end);
	EXPECT_EQ(PG(self->addr, 5), vec[1].start);
	EXPECT_EQ(PG(self->addr, 7), vec[1].end);
	EXPECT_EQ(PG(self->addr, 7), arg.walk_end);
	sd_expect(self->addr, 0, "0000000111000000");
}

/*
 * Resuming at walk_end with a tiny vec and/or max_pages sees every dirty
 * page exactly once, never a clean one, and always makes progress.
 */
TEST_F(memwatch, walk_end_resume_loop)
{
	const char *pattern = "1101101110111101";
	struct { size_t vec_len; uint64_t max_pages; } cfg[] = {
		{ 1, 0 }, { 1, 1 }, { 4, 1 }, { 2, 2 }, { 3, 3 },
	};
	struct page_region vec[4];
	struct memwatch_arg arg;
	char seen[NPAGES];
	uint64_t pos, a, end = PG(self->addr, NPAGES);
	size_t c, i;
	long ret;
	int calls;

	for (c = 0; c < ARRAY_SIZE(cfg); c++) {
		sd_prepare(self->addr, pattern);
		memset(seen, 0, sizeof(seen));
		pos = (uintptr_t)self->addr;
		for (calls = 0; pos < end; calls++) {
			ASSERT_LT(calls, 2 * NPAGES);
			mw_init(&arg, (void *)(uintptr_t)pos, end - pos, vec,
				cfg[c].vec_len);
			arg.max_pages = cfg[c].max_pages;
			ret = process_memwatch(self->pidfd, &arg, sizeof(arg),
					       MEMWATCH_CLEAR_SOFT_DIRTY);
			ASSERT_GE(ret, 0);
			ASSERT_LE(ret, cfg[c].vec_len);
			ASSERT_GT(arg.walk_end, pos);
			ASSERT_LE(arg.walk_end, end);
			for (i = 0; i < ret; i++) {
				ASSERT_GE(vec[i].start, pos);
				ASSERT_LE(vec[i].end, arg.walk_end);
				for (a = vec[i].start; a < vec[i].end;
				     a += pagesize)
					seen[(a - (uintptr_t)self->addr) /
					     pagesize]++;
			}
			pos = arg.walk_end;
		}
		for (i = 0; i < NPAGES; i++) {
			EXPECT_EQ(pattern[i] == '1', seen[i]) {
				TH_LOG("vec_len %zu max_pages %llu page %zu",
				       cfg[c].vec_len,
				       (unsigned long long)cfg[c].max_pages,
				       i);
			}
		}
		sd_expect(self->addr, 0, "0000000000000000");
	}
}

/*
 * More regions than the engine's bounce buffer holds (512): the regions
 * found are copied out each time it fills, the last one carried over to
 * the next buffer, and the walk goes on where it stopped. 1,100 regions of
 * two pages, the two carried over longer, reported in one call and in two
 * calls of 700 then the rest, are all there, exactly, and re-armed.
 */
#define MANY_REGIONS	1100

TEST_F(memwatch, many_regions)
{
	size_t npages = 3 * MANY_REGIONS + 64, k, j, len;
	size_t rlen[MANY_REGIONS], rstart[MANY_REGIONS];
	size_t vec_len[2] = { MANY_REGIONS + 8, 700 };
	struct page_region *vec;
	struct memwatch_arg arg;
	uint64_t pos, end;
	size_t got, way;
	long ret;
	char *p;

	vec = calloc(MANY_REGIONS + 8, sizeof(*vec));
	ASSERT_NE(NULL, vec);
	p = map_guarded(npages);
	madvise(p, npages * pagesize, MADV_NOHUGEPAGE);
	memset(p, 1, npages * pagesize);
	for (k = 0, j = 0; k < MANY_REGIONS; k++) {
		/*
		 * The last of a full buffer is carried over as the first of
		 * the next: regions 511 and 1022
		 */
		rlen[k] = k == 511 || k == 1022 ? 5 : 2;
		rstart[k] = j;
		j += rlen[k] + 1;
	}
	ASSERT_LE(j, npages);
	end = PG(p, npages);

	for (way = 0; way < 2; way++) {
		mw_init(&arg, p, npages * pagesize, NULL, 0);
		ASSERT_EQ(0, process_memwatch(self->pidfd, &arg, sizeof(arg),
					      MEMWATCH_CLEAR_SOFT_DIRTY));
		for (k = 0; k < MANY_REGIONS; k++)
			for (j = 0; j < rlen[k]; j++)
				touch(p, rstart[k] + j);

		got = 0;
		for (pos = (uintptr_t)p; pos < end; pos = arg.walk_end) {
			len = vec_len[way];
			mw_init(&arg, (void *)(uintptr_t)pos, end - pos, vec,
				len);
			ret = process_memwatch(self->pidfd, &arg, sizeof(arg),
					       MEMWATCH_CLEAR_SOFT_DIRTY);
			ASSERT_LE(0, ret);
			ASSERT_LE(ret, len);
			ASSERT_LT(pos, arg.walk_end);
			ASSERT_LE(got + ret, MANY_REGIONS);
			for (k = 0; k < (size_t)ret; k++, got++) {
				ASSERT_EQ(PG(p, rstart[got]), vec[k].start) {
					TH_LOG("vec_len %zu, region %zu", len,
					       got);
				}
				ASSERT_EQ(PG(p, rstart[got] + rlen[got]),
					  vec[k].end) {
					TH_LOG("vec_len %zu, region %zu", len,
					       got);
				}
			}
		}
		EXPECT_EQ(MANY_REGIONS, got);
		/* Every region was re-armed */
		mw_init(&arg, p, npages * pagesize, vec, MANY_REGIONS + 8);
		EXPECT_EQ(0, process_memwatch(self->pidfd, &arg, sizeof(arg),
					      0));
	}
	unmap_guarded(p, npages);
	free(vec);
}

/* walk_end == end exactly when the whole range was examined */
TEST_F(memwatch, walk_end_exact)
{
	struct page_region vec[4];
	struct memwatch_arg arg;
	uint64_t end = PG(self->addr, NPAGES);

	/* The last region reaches end and fills vec */
	sd_prepare(self->addr, "0000000000000111");
	mw_init(&arg, self->addr, NPAGES * pagesize, vec, 1);
	ASSERT_EQ(1, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(end, arg.walk_end);

	sd_prepare(self->addr, "0110000000000001");
	mw_init(&arg, self->addr, NPAGES * pagesize, vec, 2);
	ASSERT_EQ(2, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(end, arg.walk_end);

	/* The last page is the max_pages-th */
	sd_prepare(self->addr, "0000000000000111");
	mw_init(&arg, self->addr, NPAGES * pagesize, vec, 4);
	arg.max_pages = 3;
	ASSERT_EQ(1, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(end, arg.walk_end);

	/* An early stop: nothing at or after walk_end was cleared */
	sd_prepare(self->addr, "1010101010101010");
	mw_init(&arg, self->addr, NPAGES * pagesize, vec, 3);
	ASSERT_EQ(3, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_LT(arg.walk_end, end);
	EXPECT_GE(arg.walk_end, PG(self->addr, 5));
	EXPECT_LE(arg.walk_end, PG(self->addr, 6));
	sd_expect(self->addr, 0, "0000001010101010");

	/* Nothing dirty: the whole range is examined */
	sd_prepare(self->addr, "0000000000000000");
	mw_init(&arg, self->addr, NPAGES * pagesize, vec, 1);
	ASSERT_EQ(0, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(end, arg.walk_end);
}

struct xregion {
	unsigned int start, end;	/* page indices */
	uint64_t categories;
};

static void __query(struct __test_metadata *_metadata, int pidfd,
		    char *base, size_t npages, uint64_t inverted,
		    uint64_t mask, uint64_t anyof, uint64_t ret_mask,
		    const struct xregion *x, long nx)
{
	struct page_region vec[NPAGES];
	struct memwatch_arg arg;
	long ret, i;

	mw_init(&arg, base, npages * pagesize, vec, NPAGES);
	arg.category_inverted = inverted;
	arg.category_mask = mask;
	arg.category_anyof_mask = anyof;
	arg.return_mask = ret_mask;
	ret = process_memwatch(pidfd, &arg, sizeof(arg), 0);
	ASSERT_EQ(nx, ret) {
		TH_LOG("inv %#llx mask %#llx anyof %#llx ret %#llx: %ld regions",
		       (unsigned long long)inverted, (unsigned long long)mask,
		       (unsigned long long)anyof,
		       (unsigned long long)ret_mask, ret);
		for (i = 0; i < ret; i++)
			TH_LOG("  [%lu, %lu) %#llx",
			       (unsigned long)((vec[i].start - arg.start) /
					       pagesize),
			       (unsigned long)((vec[i].end - arg.start) /
					       pagesize),
			       (unsigned long long)vec[i].categories);
	}
	EXPECT_EQ(arg.end, arg.walk_end);
	for (i = 0; i < ret; i++) {
		EXPECT_EQ(PG(base, x[i].start), vec[i].start);
		EXPECT_EQ(PG(base, x[i].end), vec[i].end);
		EXPECT_EQ(x[i].categories, vec[i].categories) {
			TH_LOG("region %ld", i);
		}
	}
}

#define query(base, n, inv, mask, anyof, ret, ...) do {			\
	const struct xregion __x[] = { __VA_ARGS__ };			\
	__query(_metadata, self->pidfd, base, n, inv, mask, anyof, ret,	\
		__x, ARRAY_SIZE(__x));					\
} while (0)

#define query_none(base, n, inv, mask, anyof, ret)			\
	__query(_metadata, self->pidfd, base, n, inv, mask, anyof, ret,	\
		NULL, 0)

/*
 * The masks, on: 0-1 written after the clear, 2-7 present and clean, 8 the
 * zero page, 9-15 not populated.
 */
TEST_F(memwatch, masks)
{
	const uint64_t P = PAGE_IS_PRESENT, Z = PAGE_IS_PFNZERO;
	char *a = self->addr;

	ASSERT_EQ(0, madvise(a + 8 * pagesize, 8 * pagesize, MADV_DONTNEED));
	sd_reset(a, NPAGES);
	write_pattern(a, "11");
	peek(a, 8);

	/* required */
	query(a, NPAGES, 0, P, 0, P, { 0, 9, P });
	query(a, NPAGES, 0, P | SD, 0, P | SD, { 0, 2, P | SD });
	query(a, NPAGES, 0, P | Z, 0, P | Z | SD, { 8, 9, P | Z });
	/* any-of */
	query(a, NPAGES, 0, 0, Z | SD, Z | SD, { 0, 2, SD }, { 8, 9, Z });
	query(a, NPAGES, 0, P, Z | SD, P, { 0, 2, P }, { 8, 9, P });
	/* inverted: present and not soft-dirty, reported as they are */
	query(a, NPAGES, SD, P | SD, 0, P | SD, { 2, 9, P });
	query(a, NPAGES, P, P, 0, P | SD, { 9, 16, 0 });
	query(a, NPAGES, SD | Z, P | SD | Z, 0, P | Z, { 2, 8, P });
	/* return mask: regions coalesce on the reported categories only */
	query(a, NPAGES, 0, 0, 0, P, { 0, 9, P }, { 9, 16, 0 });
	query(a, NPAGES, 0, 0, 0, P | Z, { 0, 8, P }, { 8, 9, P | Z },
	      { 9, 16, 0 });
	query(a, NPAGES, 0, P, 0, SD, { 0, 2, SD }, { 2, 9, 0 });
	query(a, NPAGES, 0, P, 0, 0, { 0, 9, 0 });
	/* nothing matches */
	query_none(a, NPAGES, 0, PAGE_IS_SWAPPED, 0, P);
	query_none(a, NPAGES, 0, SD | Z, 0, P);
	/* a query changes nothing */
	sd_expect(a, 0, "1100000000000000");
}

/*
 * CRIU's pre-dump query: any of PRESENT|SWAPPED, neither PFNZERO nor FILE,
 * return PRESENT|SWAPPED|SOFT_DIRTY.
 */
TEST_F(memwatch, criu_query)
{
	const uint64_t P = PAGE_IS_PRESENT, S = PAGE_IS_SWAPPED;
	const uint64_t NOT = PAGE_IS_PFNZERO | PAGE_IS_FILE;
	char *a = self->addr, *f;
	int memfd;

	ASSERT_EQ(0, madvise(a + 8 * pagesize, 8 * pagesize, MADV_DONTNEED));
	sd_reset(a, NPAGES);
	write_pattern(a, "11");
	peek(a, 8);
	query(a, NPAGES, NOT, NOT, P | S, P | S | SD,
	      { 0, 2, P | SD }, { 2, 8, P });

	/* A private file mapping: read pages are FILE, written ones not */
	memfd = memfd_create("memwatch", 0);
	ASSERT_GE(memfd, 0);
	ASSERT_EQ(0, ftruncate(memfd, 4 * pagesize));
	f = mmap(NULL, 4 * pagesize, PROT_READ | PROT_WRITE, MAP_PRIVATE,
		 memfd, 0);
	ASSERT_NE(MAP_FAILED, f);
	peek(f, 0);
	peek(f, 1);
	touch(f, 1);
	peek(f, 2);
	query(f, 4, NOT, NOT, P | S, P | S | SD, { 1, 2, P | SD });
	munmap(f, 4 * pagesize);
	close(memfd);
}

/* Guarantee 4: in the steady state a clear never splits a VMA */
TEST_F(memwatch, steady_state_no_vma_split)
{
	uintptr_t s0, e0, s1, e1;
	char map[NPAGES];
	int n0, n1;

	sd_reset(self->addr, NPAGES);
	vma_bounds(self->addr, &s0, &e0);	/* let stdio allocate */
	n0 = vma_bounds(self->addr, &s0, &e0);
	if (n0 < 0)
		SKIP(return, "no /proc/self/maps");
	ASSERT_EQ((uintptr_t)self->addr, s0);
	ASSERT_EQ(PG(self->addr, NPAGES), e0);
	write_pattern(self->addr, "0111111111111110");
	EXPECT_EQ(4, sd_scan(self->pidfd, self->addr + 4 * pagesize, 4,
			     MEMWATCH_CLEAR_SOFT_DIRTY, map));
	sd_reset(self->addr + 9 * pagesize, 3);
	sd_expect(self->addr, 0, "0111000010001110");
	n1 = vma_bounds(self->addr, &s1, &e1);
	EXPECT_EQ(n0, n1);
	EXPECT_EQ(s0, s1);
	EXPECT_EQ(e0, e1);
}

/* Guarantee 3: no false positives from mprotect() after a whole clear */
TEST_F(memwatch, mprotect_no_false_positive)
{
	sd_prepare(self->addr, "0000000000000000");
	ASSERT_EQ(0, mprotect(self->addr, NPAGES * pagesize, PROT_READ));
	ASSERT_EQ(0, mprotect(self->addr, NPAGES * pagesize,
			      PROT_READ | PROT_WRITE));
	sd_expect(self->addr, 0, "0000000000000000");
	touch(self->addr, 1);
	sd_expect(self->addr, 0, "0100000000000000");
	/* Splitting and re-merging the VMA is not a write either */
	ASSERT_EQ(0, mprotect(self->addr + 4 * pagesize, pagesize, PROT_READ));
	ASSERT_EQ(0, mprotect(self->addr + 4 * pagesize, pagesize,
			      PROT_READ | PROT_WRITE));
	sd_expect(self->addr, 0, "0100000000000000");
	touch(self->addr, 4);
	sd_expect(self->addr, 0, "0100100000000000");
}

/* The flags other than the soft-dirty clear, on a VMA without uffd-wp */
TEST_F(memwatch, wp_flags_unregistered)
{
	struct memwatch_arg arg;
	int fd;
	size_t i;

	sd_prepare(self->addr, "1111000011110000");
	mw_init(&arg, self->addr, NPAGES * pagesize, NULL, 0);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg, sizeof(arg),
				       MEMWATCH_CHECK_WPASYNC));
	EXPECT_EQ(EPERM, errno);

	/* No flag, no vector: nothing at all changes */
	mw_init(&arg, self->addr, NPAGES * pagesize, NULL, 0);
	EXPECT_EQ(0, process_memwatch(self->pidfd, &arg, sizeof(arg), 0));
	EXPECT_EQ(arg.end, arg.walk_end);

	/* WP_MATCHING skips a VMA that is not registered with uffd-wp */
	mw_init(&arg, self->addr, NPAGES * pagesize, NULL, 0);
	arg.category_mask = PAGE_IS_WRITTEN;
	arg.return_mask = PAGE_IS_WRITTEN;
	EXPECT_EQ(0, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_WP_MATCHING));
	sd_expect(self->addr, 0, "1111000011110000");

	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd >= 0) {
		for (i = 0; i < NPAGES; i++)
			EXPECT_EQ(0, pagemap_get_entry(fd, self->addr +
						       i * pagesize) &
				  PM_UFFD_WP);
		close(fd);
	}
	memset(self->addr, 2, NPAGES * pagesize);
	sd_expect(self->addr, 0, "1111111111111111");
}

/* ---- VM_SOFTDIRTY ---- */

/*
 * David Hildenbrand's softdirty_mprotect reproducer: after a clear, a
 * MAP_FIXED mapping over page 1 marks the VMA VM_SOFTDIRTY and merges;
 * mprotect() RO then RW must not let page 0 be written without a fault.
 */
TEST_F(memwatch, softdirty_mprotect_reproducer)
{
	char *p = map_guarded(2), *q;

	ASSERT_NE(NULL, p);
	memset(p, 1, 2 * pagesize);
	__sd_reset(_metadata, self->pidfd, p, 2);
	__sd_expect(_metadata, self->pidfd, p, 0, "00");
	q = mmap(p + pagesize, pagesize, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ(p + pagesize, q);
	madvise(p, 2 * pagesize, MADV_NOHUGEPAGE);
	ASSERT_EQ(0, mprotect(p, 2 * pagesize, PROT_READ));
	ASSERT_EQ(0, mprotect(p, 2 * pagesize, PROT_READ | PROT_WRITE));
	p[0] = 2;
	p[pagesize] = 2;
	__sd_expect(_metadata, self->pidfd, p, 0, "11");
	__sd_expect(_metadata, self->pidfd, p, MEMWATCH_CLEAR_SOFT_DIRTY, "11");
	p[0] = 3;
	__sd_expect(_metadata, self->pidfd, p, 0, "10");
	unmap_guarded(p, 2);
}

/*
 * A merge must not drop VM_SOFTDIRTY. In a VM_SOFTDIRTY VMA, mprotect()
 * gives write access without a fault to a page whose PTE is clean, as
 * above. If that VMA then merged with clean neighbours and took their
 * flags, the page would be written unseen, which fits the one write the
 * churn test lost. Four pages: page @odd gets other flags, so that it
 * stays a VMA of its own; after a clear, pages @sd and @sd + 1 become a
 * VM_SOFTDIRTY VMA with page @w writable and clean; then page @odd gets
 * the flags back and all four merge, with the VM_SOFTDIRTY VMA as prev
 * (@odd 2) or as next (@odd 1). mprotect(), madvise() and mlock() each
 * set the flags of the merged VMA themselves.
 */
enum { BY_MPROTECT, BY_MADVISE, BY_MLOCK };

static void __set_odd(struct __test_metadata *_metadata, char *page, int how,
		      bool odd)
{
	if (how == BY_MPROTECT)
		ASSERT_EQ(0, mprotect(page, pagesize, odd ? PROT_READ :
				      PROT_READ | PROT_WRITE));
	if (how == BY_MADVISE)
		ASSERT_EQ(0, madvise(page, pagesize, odd ? MADV_HUGEPAGE :
				     MADV_NOHUGEPAGE));
	if (how == BY_MLOCK)
		ASSERT_EQ(0, odd ? mlock(page, pagesize) :
			     munlock(page, pagesize));
}

static void __merge_softdirty(struct __test_metadata *_metadata, int pidfd,
			      int how, int odd)
{
	int sd = odd == 2 ? 0 : 2;		/* first page of the VMA */
	int fresh = odd == 2 ? 1 : 2;		/* mapped again into it */
	int w = odd == 2 ? 0 : 3;		/* written, then clean */
	const char *dirty = odd == 2 ? "11.." : "..11";
	const char *exact = odd == 2 ? "1000" : "0001";
	char *p = map_guarded(4), *q;

	ASSERT_NE(NULL, p);
	memset(p, 1, 4 * pagesize);
	__set_odd(_metadata, p + odd * pagesize, how, true);
	__sd_reset(_metadata, pidfd, p, 4);
	q = mmap(p + fresh * pagesize, pagesize, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ(p + fresh * pagesize, q);
	ASSERT_EQ(0, madvise(p + sd * pagesize, 2 * pagesize,
			     MADV_NOHUGEPAGE));
	/* Not next to page @odd, which must stay clean */
	ASSERT_EQ(0, mprotect(p + w * pagesize, pagesize, PROT_READ));
	ASSERT_EQ(0, mprotect(p + w * pagesize, pagesize,
			      PROT_READ | PROT_WRITE));
	__sd_expect(_metadata, pidfd, p, 0, odd == 2 ? "1100" : "0011");

	__set_odd(_metadata, p + odd * pagesize, how, false);
	p[w * pagesize] = 2;
	__sd_expect(_metadata, pidfd, p, 0, dirty);
	/* Cleared as a whole, the merged VMA is exact again */
	__sd_expect(_metadata, pidfd, p, MEMWATCH_CLEAR_SOFT_DIRTY, dirty);
	p[w * pagesize] = 3;
	__sd_expect(_metadata, pidfd, p, 0, exact);
	unmap_guarded(p, 4);
}

TEST_F(memwatch, merge_keeps_softdirty_mprotect)
{
	__merge_softdirty(_metadata, self->pidfd, BY_MPROTECT, 2);
	__merge_softdirty(_metadata, self->pidfd, BY_MPROTECT, 1);
}

TEST_F(memwatch, merge_keeps_softdirty_madvise)
{
	__merge_softdirty(_metadata, self->pidfd, BY_MADVISE, 2);
	__merge_softdirty(_metadata, self->pidfd, BY_MADVISE, 1);
}

TEST_F(memwatch, merge_keeps_softdirty_mlock)
{
	__merge_softdirty(_metadata, self->pidfd, BY_MLOCK, 2);
	__merge_softdirty(_metadata, self->pidfd, BY_MLOCK, 1);
}

/* munmap() and mmap() at the same address: the new pages are dirty */
TEST_F(memwatch, munmap_mmap_same_address)
{
	char *a = self->addr + 4 * pagesize, *q;

	sd_prepare(self->addr, "0000000000000000");
	ASSERT_EQ(0, munmap(a, 4 * pagesize));
	q = mmap(a, 4 * pagesize, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	ASSERT_EQ(a, q);
	peek(a, 0);
	peek(a, 1);
	peek(a, 2);
	peek(a, 3);
	sd_expect(self->addr, 0, "0000111100000000");
	sd_expect(self->addr, MEMWATCH_CLEAR_SOFT_DIRTY, "0000111100000000");
	sd_expect(self->addr, 0, "0000000000000000");
	/* MAP_FIXED over mapped pages */
	q = mmap(a, 2 * pagesize, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ(a, q);
	peek(a, 0);
	peek(a, 1);
	/*
	 * The new mapping may merge with the rest of the old one, and a
	 * merged mapping is soft-dirty as a whole (a documented false
	 * positive): pages 6 and 7 may be reported, 4 and 5 must be.
	 */
	sd_expect(self->addr, 0, "000011..00000000");
}

/* mremap() moves pages: they are dirty at the new address */
TEST_F(memwatch, mremap_moved)
{
	char *dst = map_guarded(8), *q;
	size_t i;

	ASSERT_NE(NULL, dst);
	sd_prepare(self->addr, "0000000000000000");
	q = mremap(self->addr + 4 * pagesize, 4 * pagesize, 4 * pagesize,
		   MREMAP_MAYMOVE | MREMAP_FIXED, dst + 2 * pagesize);
	ASSERT_EQ(dst + 2 * pagesize, q);
	for (i = 2; i < 6; i++)
		ASSERT_EQ(1, peek(dst, i));
	__sd_expect(_metadata, self->pidfd, dst, 0, "..1111..");
	sd_expect(self->addr, 0, "0000000000000000");
	/* Moved back, after a clear */
	__sd_reset(_metadata, self->pidfd, dst + 2 * pagesize, 4);
	q = mremap(dst + 2 * pagesize, 4 * pagesize, 4 * pagesize,
		   MREMAP_MAYMOVE | MREMAP_FIXED, self->addr + 4 * pagesize);
	ASSERT_EQ(self->addr + 4 * pagesize, q);
	sd_expect(self->addr, 0, "0000111100000000");
	unmap_guarded(dst, 8);
}

/*
 * Reserve PMD_WINDOW PMDs of PROT_NONE address space at *area, and return
 * the PMD-aligned address in it with room for three PMDs after it and at
 * least four pages before it; NULL if mmap() failed.
 */
#define PMD_WINDOW	5

static char *pmd_window(size_t pmd, char **area)
{
	*area = mmap(NULL, PMD_WINDOW * pmd, PROT_NONE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (*area == MAP_FAILED)
		return NULL;
	return (char *)(((uintptr_t)*area + 4 * pagesize + pmd - 1) &
			~(uintptr_t)(pmd - 1));
}

/*
 * mremap() of a whole page table, with source and destination aligned to
 * the PMD size, moves the table rather than its entries: the moved pages
 * must still be soft-dirty at their new address. The churn stress test
 * found that they were not; the mremap patch of the series fixes it.
 */
TEST_F(memwatch, mremap_whole_page_table)
{
	size_t pmd = read_pmd_pagesize(), n, i;
	char *area, *src, *dst, *q, *map;

	if (!pmd)
		SKIP(return, "no PMD size");
	n = pmd / pagesize;
	src = pmd_window(pmd, &area);
	ASSERT_NE(NULL, src);
	dst = src + 2 * pmd;
	q = mmap(src, pmd, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ(src, q);
	ASSERT_EQ(0, madvise(src, pmd, MADV_NOHUGEPAGE));
	for (i = 0; i < n; i++)
		touch(src, i);
	__sd_reset(_metadata, self->pidfd, src, n);
	map = calloc(n, 1);
	ASSERT_NE(NULL, map);
	ASSERT_EQ(0, sd_scan(self->pidfd, src, n, 0, map));

	q = mremap(src, pmd, pmd, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	ASSERT_EQ(dst, q);
	EXPECT_EQ(n, sd_scan(self->pidfd, dst, n, 0, map));
	for (i = 0; i < n; i++)
		ASSERT_EQ(1, peek(dst, i));
	free(map);
	munmap(area, PMD_WINDOW * pmd);
}

/*
 * The same move out of a VM_SOFTDIRTY VMA, whose entries the page table
 * move keeps as they are (writable and clean after mprotect(), as in
 * merge_keeps_softdirty_*), to where the moved VMA merges with a clean
 * neighbour: the merged VMA must be soft-dirty. An anonymous VMA merges
 * only with a part of the same mapping, so the neighbour is the first
 * pages of the mapping, moved there first.
 */
TEST_F(memwatch, mremap_merge_keeps_softdirty)
{
	size_t pmd = read_pmd_pagesize(), n, i;
	char *area, *src, *dst, *q, *map;

	if (!pmd)
		SKIP(return, "no PMD size");
	n = pmd / pagesize;
	src = pmd_window(pmd, &area);
	ASSERT_NE(NULL, src);
	dst = src + 2 * pmd;
	q = mmap(src - 4 * pagesize, pmd + 4 * pagesize, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ(src - 4 * pagesize, q);
	ASSERT_EQ(0, madvise(q, pmd + 4 * pagesize, MADV_NOHUGEPAGE));
	for (i = 0; i < n; i++)
		touch(src, i);
	q = mremap(src - 4 * pagesize, 4 * pagesize, 4 * pagesize,
		   MREMAP_MAYMOVE | MREMAP_FIXED, dst - 4 * pagesize);
	ASSERT_EQ(dst - 4 * pagesize, q);
	__sd_reset(_metadata, self->pidfd, dst - 4 * pagesize, 4);
	__sd_reset(_metadata, self->pidfd, src, n);

	/* src becomes a VM_SOFTDIRTY VMA with writable, clean entries */
	q = mmap(src + (n - 1) * pagesize, pagesize, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ(src + (n - 1) * pagesize, q);
	ASSERT_EQ(0, madvise(src, pmd, MADV_NOHUGEPAGE));
	ASSERT_EQ(0, mprotect(src, pmd, PROT_READ));
	ASSERT_EQ(0, mprotect(src, pmd, PROT_READ | PROT_WRITE));

	q = mremap(src, pmd, pmd, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	ASSERT_EQ(dst, q);
	touch(dst, 0);
	map = calloc(n, 1);
	ASSERT_NE(NULL, map);
	EXPECT_EQ(n, sd_scan(self->pidfd, dst, n, MEMWATCH_CLEAR_SOFT_DIRTY,
			     map));
	for (i = 0; i < n - 1; i++)
		ASSERT_EQ(i ? 1 : 2, peek(dst, i));
	touch(dst, 1);
	EXPECT_EQ(1, sd_scan(self->pidfd, dst, n, 0, map));
	EXPECT_EQ(1, map[1]);
	free(map);
	munmap(area, PMD_WINDOW * pmd);
}

/*
 * Guarantee 3: clearing part of a VM_SOFTDIRTY VMA leaves no false negative
 * anywhere in or around it.
 */
TEST_F(memwatch, partial_clear_fresh_vma)
{
	char map[4];

	EXPECT_EQ(4, sd_scan(self->pidfd, self->addr + 4 * pagesize, 4,
			     MEMWATCH_CLEAR_SOFT_DIRTY, map));
	sd_expect(self->addr, 0, "1111....11111111");
	write_pattern(self->addr, "0010010000100000");
	sd_expect(self->addr, 0, "1111.1..11111111");
	/* Once the whole VMA is clean, exact */
	sd_reset(self->addr, NPAGES);
	sd_expect(self->addr, 0, "0000000000000000");
	write_pattern(self->addr, "0001001000000000");
	sd_expect(self->addr, 0, "0001001000000000");

	/* And with a clear-only call at the start of a fresh VMA */
	ASSERT_EQ(0, munmap(self->addr, NPAGES * pagesize));
	ASSERT_EQ(self->addr, mmap(self->addr, NPAGES * pagesize,
				   PROT_READ | PROT_WRITE, MAP_PRIVATE |
				   MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	memset(self->addr, 1, NPAGES * pagesize);
	sd_reset(self->addr, 3);
	write_pattern(self->addr, "0100000000000001");
	sd_expect(self->addr, 0, ".1.1111111111111");
}

/* ---- Kernel writes ---- */

TEST_F(memwatch, pipe_read)
{
	char *buf;
	int fds[2];

	buf = malloc(2 * pagesize);
	ASSERT_NE(NULL, buf);
	memset(buf, 7, 2 * pagesize);
	ASSERT_EQ(0, pipe(fds));
	sd_prepare(self->addr, "0000000000000000");
	ASSERT_EQ(2 * pagesize, write(fds[1], buf, 2 * pagesize));
	ASSERT_EQ(2 * pagesize, read(fds[0], self->addr + 5 * pagesize,
				     2 * pagesize));
	sd_expect(self->addr, 0, "0000011000000000");
	/* Straddling a page boundary */
	sd_reset(self->addr, NPAGES);
	ASSERT_EQ(2, write(fds[1], buf, 2));
	ASSERT_EQ(2, read(fds[0], self->addr + 10 * pagesize - 1, 2));
	sd_expect(self->addr, 0, "0000000001100000");
	/* Into a page that is not populated */
	sd_reset(self->addr, NPAGES);
	ASSERT_EQ(0, madvise(self->addr + 12 * pagesize, pagesize,
			     MADV_DONTNEED));
	ASSERT_EQ(8, write(fds[1], buf, 8));
	ASSERT_EQ(8, read(fds[0], self->addr + 12 * pagesize, 8));
	sd_expect(self->addr, 0, "0000000000001000");
	EXPECT_EQ(7, self->addr[12 * pagesize]);
	close(fds[0]);
	close(fds[1]);
	free(buf);
}

static int open_zram1(size_t need)
{
	uint64_t size = 0;
	int fd;

	fd = open("/dev/zram1", O_RDONLY | O_DIRECT);
	if (fd < 0)
		return -1;
	if (ioctl(fd, BLKGETSIZE64, &size) || size < need) {
		close(fd);
		return -1;
	}
	return fd;
}

/* An O_DIRECT read is a write to the buffer */
TEST_F(memwatch, odirect_read)
{
	int fd = open_zram1(8 * pagesize);

	if (fd < 0)
		SKIP(return, "no /dev/zram1 with a disk size for O_DIRECT");
	sd_prepare(self->addr, "0000000000000000");
	memset(self->addr, 0xaa, NPAGES * pagesize);
	sd_reset(self->addr, NPAGES);
	ASSERT_EQ(8 * pagesize, pread(fd, self->addr + 4 * pagesize,
				      8 * pagesize, 0));
	sd_expect(self->addr, 0, "0000111111110000");
	close(fd);
}

/*
 * The rule of the concurrency tests (guarantee 1).
 *
 * The monitor numbers its get+clear calls 1, 2, ... and publishes, after
 * call k returns, epoch = k.  A writer loads e = epoch, writes page p, then
 * publishes wepoch[p] = e + 1 (release).  So that write happened after call
 * e returned.  Before call m the monitor loads w = wepoch[p] (acquire): if
 * it sees a value, that write completed before call m started.
 *
 * Take any such write.  Either some call j with e < j < m was running when
 * it happened, or none was.  In the first case, the guarantee says p was
 * reported by j (the write happened before p was reported) or p is
 * soft-dirty for call j + 1 <= m.  In the second case p is soft-dirty for
 * the first call after the write, which is at most m.  Soft-dirty pages
 * match, so p is reported by some call in [e + 1, m]: the monitor records
 * lastrep[p], the last call that reported p, and requires
 * lastrep[p] >= w after call m.  A smaller or stale w only weakens the
 * check, so racing writers that publish out of order keep it sound.
 *
 * A lost write (a TLB entry still writable after the clear returned, a
 * hardware dirty bit lost by a non-atomic PTE update, a pinned page cleared
 * under a DMA or kernel copy) leaves p clean for every later call and fails
 * the check.
 */
struct race {
	char *base;
	size_t npages;
	uint64_t epoch;
	uint64_t *wepoch;
	int stop;
	int cpu;
	int fd;			/* for the O_DIRECT reader */
	unsigned long writes;
};

static void pin_to_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void *race_writer(void *data)
{
	struct race *r = data;
	uint64_t x = (uintptr_t)&x | 1, e;
	struct timespec ts = { 0 };
	size_t p;

	pin_to_cpu(r->cpu);
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p = x % r->npages;
		e = __atomic_load_n(&r->epoch, __ATOMIC_ACQUIRE);
		__atomic_fetch_add((uint64_t *)(r->base + p * pagesize), 1,
				   __ATOMIC_RELAXED);
		__atomic_store_n(&r->wepoch[p], e + 1, __ATOMIC_RELEASE);
		__atomic_fetch_add(&r->writes, 1, __ATOMIC_RELAXED);
		if (!(x & 3)) {
			ts.tv_nsec = (x >> 8) % 50000;
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

/*
 * Run get+clear calls over r->base for about duration_ms while the threads
 * run, checking the rule above after every call; on a loaded machine, go on
 * until min_writes writes were seen, for at most ten times as long.
 * Returns the number of calls; *partial counts calls that did not report
 * every page.
 */
static long __race_monitor(struct __test_metadata *_metadata, int pidfd,
			   struct race *r, unsigned int duration_ms,
			   uint64_t min_writes, long *partial)
{
	uint64_t *w, *lastrep, deadline, limit, now, k;
	char *map;
	long n, lost;
	size_t p;

	w = calloc(r->npages, sizeof(*w));
	lastrep = calloc(r->npages, sizeof(*lastrep));
	map = calloc(r->npages, 1);
	ASSERT_TRUE(w && lastrep && map);
	*partial = 0;
	deadline = now_ns() + duration_ms * 1000000ULL;
	limit = deadline + 9 * duration_ms * 1000000ULL;
	for (k = 1; ; k++) {
		now = now_ns();
		if (now >= limit || (now >= deadline &&
				     __atomic_load_n(&r->writes,
						     __ATOMIC_RELAXED) >=
				     min_writes))
			break;
		for (p = 0; p < r->npages; p++)
			w[p] = __atomic_load_n(&r->wepoch[p],
					       __ATOMIC_ACQUIRE);
		n = sd_scan(pidfd, r->base, r->npages,
			    MEMWATCH_CLEAR_SOFT_DIRTY, map);
		__atomic_store_n(&r->epoch, k, __ATOMIC_RELEASE);
		if (n < (long)r->npages)
			(*partial)++;
		lost = -1;
		for (p = 0; p < r->npages; p++) {
			if (map[p])
				lastrep[p] = k;
			if (lastrep[p] < w[p])
				lost = p;
		}
		if (lost < 0)
			continue;
		__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
		ASSERT_GE(lastrep[lost], w[lost]) {
			TH_LOG("page %ld written after call %llu: not reported by calls %llu-%llu",
			       lost, (unsigned long long)w[lost] - 1,
			       (unsigned long long)w[lost],
			       (unsigned long long)k);
		}
	}
	free(w);
	free(lastrep);
	free(map);
	return k - 1;
}

/* One O_DIRECT read at a time, then a pause of two monitor calls */
static void *race_dio_reader(void *data)
{
	struct race *r = data;
	uint64_t e;

	pin_to_cpu(r->cpu);
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		e = __atomic_load_n(&r->epoch, __ATOMIC_ACQUIRE);
		if (pread(r->fd, r->base, r->npages * pagesize, 0) !=
		    (ssize_t)(r->npages * pagesize))
			break;
		for (size_t p = 0; p < r->npages; p++)
			__atomic_store_n(&r->wepoch[p], e + 1,
					 __ATOMIC_RELEASE);
		__atomic_fetch_add(&r->writes, 1, __ATOMIC_RELAXED);
		while (__atomic_load_n(&r->epoch, __ATOMIC_ACQUIRE) < e + 3 &&
		       !__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE))
			sched_yield();
	}
	return NULL;
}

static int other_cpu(void)
{
	return sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : -1;
}

/* O_DIRECT reads from a zram disk racing with get+clear calls */
TEST_F_TIMEOUT(memwatch, odirect_concurrent, 60)
{
	struct race r = { .npages = 8 };
	pthread_t thread;
	long calls, partial;

	r.fd = open_zram1(r.npages * pagesize);
	if (r.fd < 0)
		SKIP(return, "no /dev/zram1 with a disk size for O_DIRECT");
	r.base = self->addr;
	r.cpu = other_cpu();
	r.wepoch = calloc(r.npages, sizeof(*r.wepoch));
	ASSERT_NE(NULL, r.wepoch);
	pin_to_cpu(r.cpu < 0 ? -1 : 0);
	ASSERT_EQ(0, pthread_create(&thread, NULL, race_dio_reader, &r));
	calls = __race_monitor(_metadata, self->pidfd, &r, 1500, 10, &partial);
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	pthread_join(thread, NULL);
	TH_LOG("%ld calls, %ld partial, %lu reads", calls, partial, r.writes);
	EXPECT_GT(r.writes, 2);
	close(r.fd);
	free(r.wepoch);
}

/* ---- Memory kinds ---- */

/* Guarantee 7: a PMD-mapped THP is reported and cleared without a split */
TEST_F(memwatch, thp_whole_pmd)
{
	size_t pmd = read_pmd_pagesize(), n;
	struct page_region vec[4];
	struct memwatch_arg arg;
	char *p, *map;

	if (!pmd || !thp_available())
		SKIP(return, "THP not available");
	p = thp_map(pmd);
	ASSERT_NE(NULL, p);
	memset(p, 1, pmd);
	if (!check_huge_anon(p, 1, pmd))
		SKIP(return, "could not allocate a THP");
	n = pmd / pagesize;
	map = malloc(n);
	ASSERT_NE(NULL, map);

	mw_init(&arg, p, pmd, vec, 4);
	arg.category_mask = PAGE_IS_PRESENT;
	arg.return_mask = PAGE_IS_PRESENT | PAGE_IS_HUGE | SD;
	ASSERT_EQ(1, process_memwatch(self->pidfd, &arg, sizeof(arg), 0));
	EXPECT_EQ(PAGE_IS_PRESENT | PAGE_IS_HUGE | SD, vec[0].categories);

	EXPECT_EQ(n, sd_scan(self->pidfd, p, n, MEMWATCH_CLEAR_SOFT_DIRTY,
			     map));
	EXPECT_TRUE(check_huge_anon(p, 1, pmd));
	EXPECT_EQ(0, sd_scan(self->pidfd, p, n, 0, map));
	mw_init(&arg, p, pmd, vec, 4);
	arg.category_mask = PAGE_IS_PRESENT;
	arg.return_mask = PAGE_IS_PRESENT | PAGE_IS_HUGE | SD;
	ASSERT_EQ(1, process_memwatch(self->pidfd, &arg, sizeof(arg), 0));
	EXPECT_EQ(PAGE_IS_PRESENT | PAGE_IS_HUGE, vec[0].categories);
	EXPECT_EQ((uintptr_t)p + pmd, vec[0].end);

	/* One write: the written page at least, the PMD at most */
	touch(p, n / 5);
	EXPECT_LE(1, sd_scan(self->pidfd, p, n, 0, map));
	EXPECT_EQ(1, map[n / 5]);
	EXPECT_TRUE(check_huge_anon(p, 1, pmd));
	EXPECT_LE(1, sd_scan(self->pidfd, p, n, MEMWATCH_CLEAR_SOFT_DIRTY,
			     map));
	EXPECT_EQ(1, map[n / 5]);
	EXPECT_TRUE(check_huge_anon(p, 1, pmd));
	EXPECT_EQ(0, sd_scan(self->pidfd, p, n, 0, map));
	free(map);
	munmap(p, pmd);
}

/* A THP partly inside a cleared range: only the covered part changes */
TEST_F(memwatch, thp_partial_clear)
{
	size_t pmd = read_pmd_pagesize(), n, i;
	char *p, *map;
	long got;

	if (!pmd || !thp_available())
		SKIP(return, "THP not available");
	p = thp_map(pmd);
	ASSERT_NE(NULL, p);
	memset(p, 1, pmd);
	if (!check_huge_anon(p, 1, pmd))
		SKIP(return, "could not allocate a THP");
	n = pmd / pagesize;
	map = malloc(n);
	ASSERT_NE(NULL, map);
	__sd_reset(_metadata, self->pidfd, p, n);
	memset(p, 2, pmd);

	EXPECT_EQ(n / 2, sd_scan(self->pidfd, p + pmd / 2, n / 2,
				 MEMWATCH_CLEAR_SOFT_DIRTY, map));
	got = sd_scan(self->pidfd, p, n, 0, map);
	EXPECT_EQ(n / 2, got);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(i < n / 2, map[i]) {
			TH_LOG("page %zu", i);
		}
	}
	touch(p, n / 2 + 3);
	EXPECT_EQ(n / 2 + 1, sd_scan(self->pidfd, p, n, 0, map));
	EXPECT_EQ(1, map[n / 2 + 3]);
	/* Clear-only of a few pages in the middle */
	__sd_reset(_metadata, self->pidfd, p + 10 * pagesize, 5);
	EXPECT_EQ(n / 2 - 4, sd_scan(self->pidfd, p, n, 0, map));
	EXPECT_EQ(0, map[10]);
	EXPECT_EQ(1, map[15]);
	free(map);
	munmap(p, pmd);
}

/* The huge zero page is PFNZERO and not soft-dirty after a clear */
TEST_F(memwatch, thp_huge_zero_page)
{
	size_t pmd = read_pmd_pagesize();
	struct page_region vec[4];
	struct memwatch_arg arg;
	char buf[16] = "";
	long ret;
	char *p;

	if (!pmd || !thp_available())
		SKIP(return, "THP not available");
	if (read_file_str("/sys/kernel/mm/transparent_hugepage/use_zero_page",
			  buf, sizeof(buf)) || buf[0] != '1')
		SKIP(return, "the huge zero page is disabled");
	p = thp_map(pmd);
	ASSERT_NE(NULL, p);
	peek(p, 0);
	__sd_reset(_metadata, self->pidfd, p, pmd / pagesize);

	mw_init(&arg, p, pmd, vec, 4);
	arg.category_mask = PAGE_IS_PRESENT;
	arg.return_mask = PAGE_IS_PRESENT | PAGE_IS_PFNZERO | SD;
	ret = process_memwatch(self->pidfd, &arg, sizeof(arg), 0);
	ASSERT_EQ(1, ret);
	if (vec[0].end - vec[0].start != pmd)
		SKIP(return, "no huge zero page mapped");
	EXPECT_EQ(PAGE_IS_PRESENT | PAGE_IS_PFNZERO, vec[0].categories);
	/* CRIU's query does not dump it */
	mw_init(&arg, p, pmd, vec, 4);
	arg.category_inverted = PAGE_IS_PFNZERO | PAGE_IS_FILE;
	arg.category_mask = PAGE_IS_PFNZERO | PAGE_IS_FILE;
	arg.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
	arg.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | SD;
	EXPECT_EQ(0, process_memwatch(self->pidfd, &arg, sizeof(arg), 0));
	/* A write replaces it and is seen */
	touch(p, 7);
	mw_init(&arg, p, pmd, vec, 4);
	EXPECT_LE(1, process_memwatch(self->pidfd, &arg, sizeof(arg), 0));
	EXPECT_LE(vec[0].start, PG(p, 7));
	EXPECT_GT(vec[0].end, PG(p, 7));
	munmap(p, pmd);
}

/*
 * MADV_PAGEOUT all of [a, a + n pages) until every page is swapped.  A
 * folio still in another CPU's LRU add batch is not on the LRU and is
 * skipped, and madvise() drains only the local batch: so the tries run on
 * each CPU in turn.  Returns 1 when every page is swapped, 0 when some
 * stayed resident, -1 when madvise() or sched_getaffinity() failed.
 */
static int swap_out(int pidfd, char *a, size_t n)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct page_region vec[2];
	struct memwatch_arg arg;
	cpu_set_t saved;
	int tries, ret = 0;

	if (sched_getaffinity(0, sizeof(saved), &saved))
		return -1;
	for (tries = 0; tries < 2 * cpus + 2 && !ret; tries++) {
		pin_to_cpu(tries % cpus);
		if (madvise(a, n * pagesize, MADV_PAGEOUT)) {
			ret = -1;
			break;
		}
		mw_init(&arg, a, n * pagesize, vec, 2);
		arg.category_mask = PAGE_IS_SWAPPED;
		arg.return_mask = PAGE_IS_SWAPPED;
		ret = process_memwatch(pidfd, &arg, sizeof(arg), 0) == 1 &&
		      vec[0].start == (uintptr_t)a && vec[0].end == PG(a, n);
	}
	sched_setaffinity(0, sizeof(saved), &saved);
	return ret;
}

static bool have_swap(void)
{
	char swaps[256] = "";

	return !read_file_str("/proc/swaps", swaps, sizeof(swaps)) &&
	       strchr(swaps, '\n') && strchr(strchr(swaps, '\n') + 1, '/');
}

/* Swap entries keep and report their soft-dirty bit */
TEST_F(memwatch, swap)
{
	const uint64_t P = PAGE_IS_PRESENT, S = PAGE_IS_SWAPPED;
	char *a = self->addr;
	int swapped;
	size_t i;

	if (!have_swap())
		SKIP(return, "no swap device");
	for (i = 0; i < NPAGES; i++)
		memset(a + i * pagesize, i + 1, pagesize);
	sd_reset(a, NPAGES);
	write_pattern(a, "1111111100000000");
	swapped = swap_out(self->pidfd, a, NPAGES);
	ASSERT_LE(0, swapped);
	if (!swapped)
		SKIP(return, "MADV_PAGEOUT did not swap the pages out");

	query(a, NPAGES, 0, S, 0, P | S | SD, { 0, 8, S | SD },
	      { 8, 16, S });
	sd_expect(a, MEMWATCH_CLEAR_SOFT_DIRTY, "1111111100000000");
	query(a, NPAGES, 0, S, 0, P | S | SD, { 0, 16, S });
	/* Swap in by a write, and by a read */
	touch(a, 3);
	EXPECT_EQ(6, peek(a, 3));
	EXPECT_EQ(7, peek(a, 5));
	query(a, NPAGES, 0, 0, 0, P | S | SD, { 0, 3, S }, { 3, 4, P | SD },
	      { 4, 5, S }, { 5, 6, P }, { 6, 16, S });
	touch(a, 5);
	sd_expect(a, 0, "0001010000000000");
	for (i = 0; i < NPAGES; i++)
		EXPECT_EQ(i + 1 + (i == 3 || i == 5) + (i < 8), peek(a, i));
}

/*
 * Fork a child that writes page 1 of addr, then waits for a byte on its end
 * of sk. Returns a pidfd of the child once it has written.
 */
static int __fork_writer(struct __test_metadata *_metadata, char *addr,
			 int sk[2], pid_t *pid)
{
	int cpidfd;
	char c;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sk));
	*pid = fork();
	ASSERT_GE(*pid, 0);
	if (*pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		touch(addr, 1);
		send(sk[1], "w", 1, 0);
		recv(sk[1], &c, 1, 0);
		_exit(0);
	}
	ASSERT_EQ(1, recv(sk[0], &c, 1, 0));
	cpidfd = sys_pidfd_open(*pid, 0);
	ASSERT_GE(cpidfd, 0);
	return cpidfd;
}

#define fork_writer(addr, sk, pid) __fork_writer(_metadata, addr, sk, pid)

static void __end_writer(struct __test_metadata *_metadata, int sk[2],
			 pid_t pid, int cpidfd)
{
	int status;

	send(sk[0], "q", 1, 0);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	close(cpidfd);
	close(sk[0]);
	close(sk[1]);
}

#define end_writer(sk, pid, cpidfd) __end_writer(_metadata, sk, pid, cpidfd)

/* fork() and COW: each side's writes are its own */
TEST_F(memwatch, fork_cow)
{
	int sk[2], cpidfd;
	pid_t pid;

	sd_prepare(self->addr, "0000000000000000");
	cpidfd = fork_writer(self->addr, sk, &pid);
	/* The child's write is the child's */
	__sd_expect(_metadata, cpidfd, self->addr, 0, ".1..............");
	sd_expect(self->addr, 0, "0000000000000000");
	EXPECT_EQ(1, peek(self->addr, 1));
	/* The parent's COW fault is a write */
	touch(self->addr, 2);
	sd_expect(self->addr, 0, "0010000000000000");
	__sd_expect(_metadata, cpidfd, self->addr, MEMWATCH_CLEAR_SOFT_DIRTY,
		    ".1..............");
	__sd_expect(_metadata, cpidfd, self->addr, 0, "0000000000000000");
	end_writer(sk, pid, cpidfd);
}

/* ---- Sparse ---- */

#define SPARSE_SIZE	((size_t)(16ULL << 40))
#define SPARSE_PAGES	1000

/* Report the present pages of [p, p + len); -1 unless the walk completed */
static long present_query(int pidfd, char *p, size_t len,
			  struct page_region *vec, size_t vec_len)
{
	struct memwatch_arg arg;
	long ret;

	mw_init(&arg, p, len, vec, vec_len);
	arg.category_mask = PAGE_IS_PRESENT;
	arg.return_mask = PAGE_IS_PRESENT;
	ret = process_memwatch(pidfd, &arg, sizeof(arg), 0);
	return ret >= 0 && arg.walk_end == arg.end ? ret : -1;
}

/*
 * Guarantee 6: 1,000 pages over a 16 TiB MAP_NORESERVE mapping, as in an
 * ASAN shadow, are counted exactly. (How long it takes against the same
 * pages in 4 MiB is the benchmark's business, not a test's.)
 */
TEST_F_TIMEOUT(memwatch, sparse_16tib, 120)
{
	size_t vec_len = SPARSE_PAGES + 1, stride, i;
	struct page_region *vec;
	struct memwatch_arg arg;
	char *p;
	long ret;

	if (sizeof(size_t) < 8)
		SKIP(return, "needs a 64-bit address space");
	p = mmap(NULL, SPARSE_SIZE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		SKIP(return, "cannot map 16 TiB: %s", strerror(errno));
	madvise(p, SPARSE_SIZE, MADV_NOHUGEPAGE);
	vec = calloc(vec_len, sizeof(*vec));
	ASSERT_NE(NULL, vec);
	stride = SPARSE_SIZE / SPARSE_PAGES / pagesize * pagesize;
	for (i = 0; i < SPARSE_PAGES; i++)
		p[i * stride] = 1;

	ret = present_query(self->pidfd, p, SPARSE_SIZE, vec, vec_len);
	ASSERT_EQ(SPARSE_PAGES, ret);
	for (i = 0; i < SPARSE_PAGES; i++) {
		ASSERT_EQ((uintptr_t)p + i * stride, vec[i].start);
		ASSERT_EQ((uintptr_t)p + i * stride + pagesize, vec[i].end);
		ASSERT_EQ(PAGE_IS_PRESENT, vec[i].categories);
	}

	/* Soft-dirty: clear the whole mapping, then write 10 pages */
	__sd_reset(_metadata, self->pidfd, p, SPARSE_SIZE / pagesize);
	for (i = 0; i < SPARSE_PAGES; i += 100)
		p[i * stride + 5] = 2;
	mw_init(&arg, p, SPARSE_SIZE, vec, vec_len);
	ASSERT_EQ(SPARSE_PAGES / 100,
		  process_memwatch(self->pidfd, &arg, sizeof(arg),
				   MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(arg.end, arg.walk_end);
	for (i = 0; i < SPARSE_PAGES / 100; i++)
		EXPECT_EQ((uintptr_t)p + i * 100 * stride, vec[i].start);
	mw_init(&arg, p, SPARSE_SIZE, vec, vec_len);
	EXPECT_EQ(0, process_memwatch(self->pidfd, &arg, sizeof(arg), 0));

	munmap(p, SPARSE_SIZE);
	free(vec);
}

/* ---- Concurrency: writers on another CPU ---- */

FIXTURE(race) {
	int pidfd;
	char *addr;
	size_t len;
};

FIXTURE_VARIANT(race) {
	bool thp;
	bool two_vmas;
};

FIXTURE_VARIANT_ADD(race, pages_4k) {
	.thp = false,
};

/*
 * The walk goes on to the second VMA within a call: the flush owed for
 * the first must not be lost on the way
 */
FIXTURE_VARIANT_ADD(race, two_vmas) {
	.two_vmas = true,
};

FIXTURE_VARIANT_ADD(race, thp) {
	.thp = true,
};

FIXTURE_SETUP(race)
{
	uintptr_t start, end;
	size_t pmd;

	self->pidfd = self_pidfd();
	if (self->pidfd < 0)
		return;
	if (!variant->thp) {
		self->len = 64 * pagesize;
		self->addr = map_guarded(64);
		ASSERT_NE(NULL, self->addr);
		memset(self->addr, 0, self->len);
		if (variant->two_vmas) {
			ASSERT_EQ(0, madvise(self->addr + self->len / 2,
					     self->len / 2, MADV_DONTFORK));
			ASSERT_LT(0, vma_bounds(self->addr, &start, &end));
			ASSERT_EQ((uintptr_t)self->addr + self->len / 2, end);
		}
		return;
	}
	pmd = read_pmd_pagesize();
	if (!pmd || !thp_available())
		SKIP(return, "THP not available");
	self->len = pmd;
	self->addr = thp_map(pmd);
	ASSERT_NE(NULL, self->addr);
	memset(self->addr, 0, pmd);
	if (!check_huge_anon(self->addr, 1, pmd)) {
		munmap(self->addr, pmd);
		SKIP(return, "could not allocate a THP");
	}
}

FIXTURE_TEARDOWN(race)
{
	if (variant->thp)
		munmap(self->addr, self->len);
	else
		unmap_guarded(self->addr, self->len / pagesize);
	close(self->pidfd);
}

/* Guarantee 1: no lost writes with writers running during get+clear */
TEST_F_TIMEOUT(race, no_lost_writes, 60)
{
	struct race r = { .base = self->addr };
	pthread_t threads[2];
	long calls, partial;
	int i;

	r.npages = self->len / pagesize;
	r.cpu = other_cpu();
	r.wepoch = calloc(r.npages, sizeof(*r.wepoch));
	ASSERT_NE(NULL, r.wepoch);
	pin_to_cpu(r.cpu < 0 ? -1 : 0);
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, race_writer,
					    &r));
	calls = __race_monitor(_metadata, self->pidfd, &r, 1500, 200, &partial);
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 2; i++)
		pthread_join(threads[i], NULL);
	TH_LOG("%ld calls, %ld partial, %lu writes", calls, partial,
	       r.writes);
	EXPECT_GT(calls, 10);
	EXPECT_GT(r.writes, 100);
	if (variant->thp)
		EXPECT_TRUE(check_huge_anon(self->addr, 1, self->len));
	free(r.wepoch);
}

/* ---- Memory kinds: anonymous, shmem, file, private and shared ---- */

enum kind { ANON_PRIVATE, ANON_SHARED, MEMFD_PRIVATE, MEMFD_SHARED,
	    FILE_PRIVATE, FILE_SHARED };

FIXTURE(kind) {
	int pidfd;
	int fd;
	char *addr;
};

FIXTURE_VARIANT(kind) {
	enum kind kind;
	bool shared;
};

FIXTURE_VARIANT_ADD(kind, anon_private) {
	.kind = ANON_PRIVATE,
};

FIXTURE_VARIANT_ADD(kind, anon_shared) {
	.kind = ANON_SHARED,
	.shared = true,
};

FIXTURE_VARIANT_ADD(kind, memfd_private) {
	.kind = MEMFD_PRIVATE,
};

FIXTURE_VARIANT_ADD(kind, memfd_shared) {
	.kind = MEMFD_SHARED,
	.shared = true,
};

FIXTURE_VARIANT_ADD(kind, file_private) {
	.kind = FILE_PRIVATE,
};

FIXTURE_VARIANT_ADD(kind, file_shared) {
	.kind = FILE_SHARED,
	.shared = true,
};

/*
 * The file behind a mapping of kind @k, @len bytes long. Return: its fd,
 * -1 for anonymous memory, or -2 if there is no O_TMPFILE here or in /tmp.
 */
static int __kind_fd(struct __test_metadata *_metadata, enum kind k,
		     size_t len)
{
	int fd = -1;

	switch (k) {
	case ANON_PRIVATE:
	case ANON_SHARED:
		return -1;
	case MEMFD_PRIVATE:
	case MEMFD_SHARED:
		fd = memfd_create("memwatch", 0);
		break;
	case FILE_PRIVATE:
	case FILE_SHARED:
		fd = open(".", O_TMPFILE | O_RDWR, 0600);
		if (fd < 0)
			fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
		if (fd < 0)
			return -2;
		break;
	}
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, ftruncate(fd, len));
	return fd;
}

FIXTURE_SETUP(kind)
{
	int flags;

	self->pidfd = self_pidfd();
	if (self->pidfd < 0)
		return;
	self->fd = __kind_fd(_metadata, variant->kind, NPAGES * pagesize);
	if (self->fd == -2)
		SKIP(return, "no O_TMPFILE here or in /tmp");
	flags = variant->shared ? MAP_SHARED : MAP_PRIVATE;
	if (self->fd < 0)
		flags |= MAP_ANONYMOUS;
	/* Between PROT_NONE pages, so that it never merges */
	self->addr = mmap(NULL, (NPAGES + 2) * pagesize, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->addr);
	self->addr += pagesize;
	ASSERT_EQ(self->addr, mmap(self->addr, NPAGES * pagesize,
				   PROT_READ | PROT_WRITE, flags | MAP_FIXED,
				   self->fd, 0));
	madvise(self->addr, NPAGES * pagesize, MADV_NOHUGEPAGE);
	memset(self->addr, 1, NPAGES * pagesize);
}

FIXTURE_TEARDOWN(kind)
{
	munmap(self->addr - pagesize, (NPAGES + 2) * pagesize);
	if (self->fd >= 0)
		close(self->fd);
	close(self->pidfd);
}

TEST_F(kind, clear_write_cycle)
{
	sd_expect(self->addr, 0, "1111111111111111");
	sd_expect(self->addr, MEMWATCH_CLEAR_SOFT_DIRTY, "1111111111111111");
	sd_expect(self->addr, 0, "0000000000000000");
	write_pattern(self->addr, "0100000000000011");
	sd_expect(self->addr, MEMWATCH_CLEAR_SOFT_DIRTY, "0100000000000011");
	sd_expect(self->addr, 0, "0000000000000000");
	write_pattern(self->addr, "1111111111111111");
	sd_expect(self->addr, 0, "1111111111111111");
}

TEST_F(kind, subrange_and_short_vec)
{
	struct page_region vec[2];
	struct memwatch_arg arg;
	char map[4];

	sd_prepare(self->addr, "1111111111111111");
	EXPECT_EQ(4, sd_scan(self->pidfd, self->addr + 4 * pagesize, 4,
			     MEMWATCH_CLEAR_SOFT_DIRTY, map));
	sd_expect(self->addr, 0, "1111000011111111");
	mw_init(&arg, self->addr, NPAGES * pagesize, vec, 1);
	arg.max_pages = 2;
	ASSERT_EQ(1, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(PG(self->addr, 2), arg.walk_end);
	sd_expect(self->addr, 0, "0011000011111111");
}

/*
 * A page whose PTE was zapped after a clear is faulted in again by a read:
 * it is not dirty, but a later write must be seen (the VMA's page
 * protection must write-protect it again).
 */
TEST_F(kind, refault_after_clear)
{
	sd_prepare(self->addr, "0000000000000000");
	ASSERT_EQ(0, madvise(self->addr + 2 * pagesize, 2 * pagesize,
			     MADV_DONTNEED));
	peek(self->addr, 2);
	peek(self->addr, 3);
	sd_expect(self->addr, 0, "0000000000000000");
	touch(self->addr, 2);
	sd_expect(self->addr, 0, "0010000000000000");
	/* Written through the page cache: not a write to this mapping */
	if (self->fd >= 0 && variant->shared) {
		ASSERT_EQ(1, pwrite(self->fd, "x", 1, 5 * pagesize));
		EXPECT_EQ('x', peek(self->addr, 5));
	}
	/* Never populated in this mm since the clear */
	ASSERT_EQ(0, madvise(self->addr + 8 * pagesize, pagesize,
			     MADV_DONTNEED));
	touch(self->addr, 8);
	sd_expect(self->addr, 0, "00100.0010000000");
}

TEST_F(kind, fork_cow)
{
	int sk[2], cpidfd;
	pid_t pid;

	sd_prepare(self->addr, "0000000000000000");
	cpidfd = fork_writer(self->addr, sk, &pid);
	__sd_expect(_metadata, cpidfd, self->addr, 0, ".1..............");
	/* soft-dirty is per mm: the child's write is not the parent's */
	sd_expect(self->addr, 0, "0000000000000000");
	EXPECT_EQ(variant->shared ? 2 : 1, peek(self->addr, 1));
	touch(self->addr, 2);
	sd_expect(self->addr, 0, "0010000000000000");
	end_writer(sk, pid, cpidfd);
}

/*
 * A page pinned (FOLL_PIN | FOLL_LONGTERM, as for O_DIRECT or io_uring) can
 * be written by the kernel at any time without a fault: it is never
 * reported clean while pinned, in private and in shared mappings alike.
 */
TEST_F(kind, pinned_never_clean)
{
	struct io_uring_params params;
	struct iovec iov;
	int ring, i;

	memset(&params, 0, sizeof(params));
	ring = syscall(__NR_io_uring_setup, 4, &params);
	if (ring < 0)
		SKIP(return, "io_uring_setup: %s", strerror(errno));
	sd_prepare(self->addr, "0000000000000000");
	iov.iov_base = self->addr + 2 * pagesize;
	iov.iov_len = 2 * pagesize;
	if (syscall(__NR_io_uring_register, ring, IORING_REGISTER_BUFFERS,
		    &iov, 1)) {
		int err = errno;

		close(ring);
		SKIP(return, "IORING_REGISTER_BUFFERS: %s", strerror(err));
	}
	/* The pin is a write fault; the kernel may write at any time now */
	for (i = 0; i < 3; i++) {
		sd_expect(self->addr, MEMWATCH_CLEAR_SOFT_DIRTY,
			  "0011000000000000");
		sd_expect(self->addr, 0, "0011000000000000");
	}
	syscall(__NR_io_uring_register, ring, IORING_UNREGISTER_BUFFERS,
		NULL, 0);
	close(ring);
}

/* ---- hugetlb ---- */

FIXTURE(hugetlb) {
	int pidfd;
	char *addr;
	size_t hp;
	size_t n;	/* base pages in the mapping */
	char *map;
};

FIXTURE_VARIANT(hugetlb) {
	unsigned int shift;
};

FIXTURE_VARIANT_ADD(hugetlb, size_2m) {
	.shift = 21,
};

FIXTURE_VARIANT_ADD(hugetlb, size_1g) {
	.shift = 30,
};

FIXTURE_SETUP(hugetlb)
{
	self->pidfd = self_pidfd();
	if (self->pidfd < 0)
		return;
	self->hp = 1UL << variant->shift;
	self->addr = mmap(NULL, 2 * self->hp, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
			  (variant->shift << MAP_HUGE_SHIFT), -1, 0);
	if (self->addr == MAP_FAILED)
		SKIP(return, "no two free %zu MiB hugetlb pages",
		     self->hp >> 20);
	self->n = 2 * self->hp / pagesize;
	self->map = malloc(self->n);
	ASSERT_NE(NULL, self->map);
}

FIXTURE_TEARDOWN(hugetlb)
{
	munmap(self->addr, 2 * self->hp);
	free(self->map);
	close(self->pidfd);
}

/* Which of the two huge pages are reported: 0, 1, 2 (second), 3 (both) */
static int __hp_dirty(struct __test_metadata *_metadata, int pidfd,
		      char *addr, size_t n, char *map, unsigned int flags)
{
	size_t half = n / 2, i;
	long total;
	int ret = 0;

	total = sd_scan(pidfd, addr, n, flags, map);
	for (i = 0; i < n; i++)
		ASSERT_EQ(map[i], map[i < half ? 0 : half]);
	if (map[0])
		ret |= 1;
	if (map[half])
		ret |= 2;
	EXPECT_EQ(total, (long)half * __builtin_popcount(ret));
	return ret;
}

#define hp_dirty(flags) \
	__hp_dirty(_metadata, self->pidfd, self->addr, self->n, self->map, \
		   flags)

/*
 * Write every base page of the first len bytes: a huge page is dirty as a
 * whole, and a memset() of two 1 GiB pages takes seconds under TCG.
 */
static void hp_write(char *addr, size_t len)
{
	size_t i;

	for (i = 0; i < len / pagesize; i++)
		touch(addr, i);
}

TEST_F_TIMEOUT(hugetlb, report_and_clear, 60)
{
	hp_write(self->addr, 2 * self->hp);
	EXPECT_EQ(3, hp_dirty(0));
	EXPECT_EQ(3, hp_dirty(MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(0, hp_dirty(0));
	self->addr[self->hp + 5 * pagesize] = 2;
	EXPECT_EQ(2, hp_dirty(0));
	EXPECT_EQ(2, hp_dirty(MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(0, hp_dirty(0));
	self->addr[7] = 2;
	EXPECT_EQ(1, hp_dirty(0));
}

/* A partial huge page as the first page of a clear: EINVAL, no change */
TEST_F_TIMEOUT(hugetlb, partial_first_page, 60)
{
	struct page_region vec[4];
	struct memwatch_arg arg;

	hp_write(self->addr, 2 * self->hp);
	EXPECT_EQ(3, hp_dirty(MEMWATCH_CLEAR_SOFT_DIRTY));
	hp_write(self->addr, 2 * self->hp);
	mw_init(&arg, self->addr + pagesize, 2 * self->hp - pagesize, vec, 4);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg, sizeof(arg),
				       MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(EINVAL, errno);
	mw_init(&arg, self->addr + pagesize, 2 * self->hp - pagesize,
		NULL, 0);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg, sizeof(arg),
				       MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(3, hp_dirty(0));
	/* Reporting a part of a huge page is fine */
	mw_init(&arg, self->addr + pagesize, 2 * pagesize, vec, 4);
	EXPECT_EQ(1, process_memwatch(self->pidfd, &arg, sizeof(arg), 0));
	EXPECT_EQ(PG(self->addr, 1), vec[0].start);
	EXPECT_EQ(PG(self->addr, 3), vec[0].end);
}

/* A partial huge page later in a clear: stop before it at walk_end */
TEST_F_TIMEOUT(hugetlb, partial_stops_walk, 60)
{
	struct page_region vec[4];
	struct memwatch_arg arg;

	hp_write(self->addr, 2 * self->hp);
	EXPECT_EQ(3, hp_dirty(MEMWATCH_CLEAR_SOFT_DIRTY));
	hp_write(self->addr, 2 * self->hp);
	mw_init(&arg, self->addr, self->hp + pagesize, vec, 4);
	ASSERT_EQ(1, process_memwatch(self->pidfd, &arg, sizeof(arg), 0));
	EXPECT_EQ((uintptr_t)self->addr + self->hp + pagesize, vec[0].end);
	EXPECT_EQ(arg.end, arg.walk_end);

	ASSERT_EQ(1, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ((uintptr_t)self->addr, vec[0].start);
	EXPECT_EQ((uintptr_t)self->addr + self->hp, vec[0].end);
	EXPECT_EQ((uintptr_t)self->addr + self->hp, arg.walk_end);
	EXPECT_EQ(2, hp_dirty(0));

	/* The same with a clear-only call (no vec_buf) */
	hp_write(self->addr, self->hp);
	mw_init(&arg, self->addr, self->hp + pagesize, NULL, 0);
	EXPECT_EQ(0, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ((uintptr_t)self->addr + self->hp, arg.walk_end);
	EXPECT_EQ(2, hp_dirty(0));
}

/* Clearing over an unpopulated huge page returns (no self-deadlock) */
TEST_F_TIMEOUT(hugetlb, unpopulated_hole, 60)
{
	hp_write(self->addr, self->hp);
	/* Whether the fresh hole is reported is the VMA's business */
	EXPECT_TRUE(hp_dirty(MEMWATCH_CLEAR_SOFT_DIRTY) & 1);
	EXPECT_EQ(0, hp_dirty(0));
	self->addr[self->hp] = 1;
	EXPECT_EQ(2, hp_dirty(0));
	self->addr[0] = 2;
	EXPECT_EQ(3, hp_dirty(MEMWATCH_CLEAR_SOFT_DIRTY));
}

/* ---- KSM ---- */

#define KSM_DIR "/sys/kernel/mm/ksm/"

FIXTURE(ksm) {
	int pidfd;
	char run[16], sleep_ms[16], pages[16];
	bool saved;
	char *addr;
};

FIXTURE_SETUP(ksm)
{
	self->pidfd = self_pidfd();
	if (self->pidfd < 0)
		return;
	self->addr = map_guarded(NPAGES);
	ASSERT_NE(NULL, self->addr);
	if (read_file_str(KSM_DIR "run", self->run, sizeof(self->run)) ||
	    read_file_str(KSM_DIR "sleep_millisecs", self->sleep_ms,
			  sizeof(self->sleep_ms)) ||
	    read_file_str(KSM_DIR "pages_to_scan", self->pages,
			  sizeof(self->pages)))
		SKIP(return, "no KSM");
	self->saved = true;
	if (write_file_str(KSM_DIR "sleep_millisecs", "0") ||
	    write_file_str(KSM_DIR "pages_to_scan", "1000") ||
	    write_file_str(KSM_DIR "run", "1"))
		SKIP(return, "cannot start ksmd");
}

FIXTURE_TEARDOWN(ksm)
{
	if (self->saved) {
		write_file_str(KSM_DIR "run", self->run);
		write_file_str(KSM_DIR "sleep_millisecs", self->sleep_ms);
		write_file_str(KSM_DIR "pages_to_scan", self->pages);
	}
	unmap_guarded(self->addr, NPAGES);
	close(self->pidfd);
}

/* KSM merging is not a write; a write to a merged page is */
TEST_F_TIMEOUT(ksm, merged_pages, 60)
{
	uint64_t deadline;
	bool merged = false;
	int fd;
	size_t i;

	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		SKIP(return, "no /proc/self/pagemap");
	memset(self->addr, 0x42, NPAGES * pagesize);
	sd_reset(self->addr, NPAGES);
	ASSERT_EQ(0, madvise(self->addr, NPAGES * pagesize, MADV_MERGEABLE));
	deadline = now_ns() + 5000000000ULL;
	while (!merged && now_ns() < deadline) {
		usleep(20000);
		merged = true;
		for (i = 1; i < NPAGES; i++)
			if (pagemap_get_pfn(fd, self->addr + i * pagesize) !=
			    pagemap_get_pfn(fd, self->addr))
				merged = false;
	}
	close(fd);
	if (!merged)
		SKIP(return, "KSM did not merge the pages in time");
	sd_expect(self->addr, 0, "................");
	sd_reset(self->addr, NPAGES);
	sd_expect(self->addr, 0, "0000000000000000");
	touch(self->addr, 3);
	touch(self->addr, 12);
	sd_expect(self->addr, 0, "0001000000001000");
	EXPECT_EQ(0x43, peek(self->addr, 3));
	EXPECT_EQ(0x42, peek(self->addr, 4));
	madvise(self->addr, NPAGES * pagesize, MADV_UNMERGEABLE);
}

/* ---- Regression tests: PAGEMAP_SCAN's fixes after its merge ---- */

/*
 * The fixes made to PAGEMAP_SCAN after its merge, and where each one is
 * tested. PAGEMAP_SCAN and process_memwatch() share one walk, pagescan()
 * in mm/pagescan.c, so these cover both:
 *
 *  1 "fix ioctl(PAGEMAP_SCAN) on vma check":
 *    pagemap_scan_fix_vma_check
 *  2 "fix wr-protect even if PM_SCAN_WP_MATCHING not set":
 *    pagemap_scan_fix_wp_without_wp_matching
 *  3 "fix pagemap_ioctl memory map test" (the test opened __FILE__): this
 *    test never opens its own source or binary, so there is nothing to run.
 *  4 "move mmu notification mechanism inside mm lock": a code review item,
 *    no test; pagescan_walk() sets up and ends the notifier range of each
 *    chunk under the mmap lock.
 *  5 "fix uffd-wp confusion in pagemap_scan_pmd_entry":
 *    pagemap_scan_fix_uffd_wp_confusion
 *  6 "fix loss of young/dirty bits during pagemap scan":
 *    pagemap_scan_fix_young_dirty_loss
 *  7 "prevent integer overflow in pagemap_scan_get_args":
 *    pagemap_scan_fix_vec_len_overflow
 *  8 "fix PAGE_IS_PFNZERO detection for the huge zero folio":
 *    pagemap_scan_fix_huge_zero_pfnzero
 *  9 "check p->vec_buf for NULL": pagemap_scan_fix_null_vec_buf
 * 10 "Fix pte update and tlb maintenance ordering": a code review item, no
 *    test; pagescan_pmd_entry() leaves lazy MMU mode before the flush.
 * 11 "fix make_uffd_wp_huge_pte prot-update race":
 *    pagemap_scan_fix_hugetlb_prot_race
 * 12 "use huge_page_size in pagemap_scan_hugetlb_entry":
 *    pagemap_scan_fix_1g_hugetlb_partial
 * 13 "fix hugetlb self-deadlock in pagemap_scan_pte_hole":
 *    pagemap_scan_fix_hugetlb_hole_deadlock
 * 14 "preserve pmd_swp_uffd_wp on device-private PMD downgrade": a fix to
 *    mm/huge_memory.c, not to the walk; no test (device-private memory
 *    needs the test_hmm module).
 * 15 "fix PAGEMAP_SCAN written state for unpopulated ptes":
 *    pagemap_scan_fix_unpopulated_written
 * 16 "fix PAGEMAP_SCAN written state for PMD holes":
 *    pagemap_scan_fix_pmd_hole_written
 */

#define WR		PAGE_IS_WRITTEN

/*
 * A userfaultfd in asynchronous write-protect mode, as Wine opens it, that
 * also protects unpopulated entries (and hugetlb if asked).  Register
 * [addr, addr + len) with it for write-protection and, if protect,
 * write-protect the range.  Returns the fd, or -1 with errno set.
 */
static int uffd_wp_async(void *addr, size_t len, bool hugetlb, bool protect)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
	};
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct uffdio_writeprotect wp = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	int uffd, err;

	if (hugetlb)
		api.features |= UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	uffd = syscall(__NR_userfaultfd,
		       O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (uffd < 0)
		return -1;
	if (ioctl(uffd, UFFDIO_API, &api) ||
	    ioctl(uffd, UFFDIO_REGISTER, &reg))
		goto fail;
	if (!(reg.ioctls & BIT_ULL(_UFFDIO_WRITEPROTECT))) {
		errno = EOPNOTSUPP;
		goto fail;
	}
	if (protect && ioctl(uffd, UFFDIO_WRITEPROTECT, &wp))
		goto fail;
	return uffd;
fail:
	err = errno;
	close(uffd);
	errno = err;
	return -1;
}

/* Whether pagemap shows the uffd-wp bit on page i of addr (-1: no pagemap) */
static int pm_uffd_wp(char *addr, size_t i)
{
	uint64_t ent;
	int fd;

	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return -1;
	ent = pagemap_get_entry(fd, addr + i * pagesize);
	close(fd);
	return !!(ent & PM_UFFD_WP);
}

#define wr_expect(addr, flags, expect) \
	__mw_expect(_metadata, self->pidfd, addr, flags, WR, expect)

struct mw_masks {
	uint64_t inverted, mask, anyof, ret;
};

/* map[] bits of a page in __masks_scan() */
#define MAP_REPORTED	1
#define MAP_SD		2
#define MAP_WR		4

/*
 * As __mw_scan(), with any masks: map[i] gets MAP_REPORTED for a reported
 * page, and MAP_SD and MAP_WR for the categories reported with it.
 */
static long __masks_scan(struct __test_metadata *_metadata, int pidfd,
			 char *addr, size_t npages, const struct mw_masks *m,
			 unsigned int flags, char *map)
{
	uint64_t pos = (uintptr_t)addr, end = PG(addr, npages), a, c;
	struct page_region vec[SCAN_VEC];
	struct memwatch_arg arg;
	long total = 0, ret, i;

	memset(map, 0, npages);
	while (pos < end) {
		mw_init(&arg, (void *)(uintptr_t)pos, end - pos, vec, SCAN_VEC);
		arg.category_inverted = m->inverted;
		arg.category_mask = m->mask;
		arg.category_anyof_mask = m->anyof;
		arg.return_mask = m->ret;
		ret = process_memwatch(pidfd, &arg, sizeof(arg), flags);
		ASSERT_GE(ret, 0) {
			TH_LOG("process_memwatch: %s", strerror(errno));
		}
		ASSERT_GT(arg.walk_end, pos);
		ASSERT_LE(arg.walk_end, end);
		if (ret < SCAN_VEC)
			ASSERT_EQ(end, arg.walk_end);
		for (i = 0; i < ret; i++) {
			ASSERT_EQ(0, vec[i].categories & ~m->ret);
			ASSERT_GE(vec[i].start, pos);
			ASSERT_LE(vec[i].end, arg.walk_end);
			c = MAP_REPORTED;
			if (vec[i].categories & SD)
				c |= MAP_SD;
			if (vec[i].categories & WR)
				c |= MAP_WR;
			for (a = vec[i].start; a < vec[i].end; a += pagesize) {
				ASSERT_EQ(0, map[(a - (uintptr_t)addr) / pagesize]);
				map[(a - (uintptr_t)addr) / pagesize] = c;
				total++;
			}
		}
		pos = arg.walk_end;
	}
	return total;
}

/*
 * The written pages of addr under several sets of masks, with flags: the
 * PAGE_IS_WRITTEN-only query (PAGEMAP_SCAN's fast path), and with other
 * categories required, any-of, inverted or returned (its generic path).
 */
static const struct mw_masks wr_masks[] = {
	{ .mask = WR, .ret = WR },
	{ .mask = WR, .ret = WR | PAGE_IS_PRESENT | PAGE_IS_SWAPPED },
	{ .anyof = WR | PAGE_IS_FILE, .ret = WR },
	{ .inverted = PAGE_IS_PFNZERO, .mask = WR | PAGE_IS_PFNZERO,
	  .ret = WR },
	{ .mask = WR | PAGE_IS_WPALLOWED, .ret = WR | PAGE_IS_WPALLOWED },
};

/* Each mask set of wr_masks[] reports exactly the pages of expect */
static void __wr_expect_all(struct __test_metadata *_metadata, int pidfd,
			    char *addr, size_t npages, const char *expect)
{
	char *map = malloc(npages);
	size_t k, i, bad;

	ASSERT_NE(NULL, map);
	for (k = 0; k < ARRAY_SIZE(wr_masks); k++) {
		__masks_scan(_metadata, pidfd, addr, npages, &wr_masks[k], 0,
			     map);
		bad = npages;
		for (i = 0; i < npages; i++)
			if (!!map[i] != (expect[i] == '1'))
				bad = i;
		EXPECT_EQ(npages, bad) {
			TH_LOG("mask set %zu: page %zu reported %d",
			       k, bad, map[bad]);
		}
	}
	free(map);
}

/* Re-arm [addr, addr + npages) with WP_MATCHING and no vector */
static void __wp_reset(struct __test_metadata *_metadata, int pidfd,
		       char *addr, size_t npages, const struct mw_masks *m,
		       unsigned int flags)
{
	struct memwatch_arg arg;

	mw_init(&arg, addr, npages * pagesize, NULL, 0);
	arg.category_inverted = m->inverted;
	arg.category_mask = m->mask;
	arg.category_anyof_mask = m->anyof;
	arg.return_mask = m->ret;
	ASSERT_EQ(0, process_memwatch(pidfd, &arg, sizeof(arg),
				      MEMWATCH_WP_MATCHING | flags)) {
		TH_LOG("process_memwatch: %s", strerror(errno));
	}
	ASSERT_EQ(arg.end, arg.walk_end);
}

/*
 * 1: WP_MATCHING put uffd-wp bits in VMAs not registered for async
 * uffd-wp, a WARN in pte_uffd_wp().  Such a VMA is skipped: nothing in it
 * is reported or changed, with or without a vector and with a soft-dirty
 * clear, also when a registered VMA is in the same range and when it is
 * registered with a synchronous userfaultfd.
 */
TEST_F(memwatch, pagemap_scan_fix_vma_check)
{
	unsigned int flags[] = { MEMWATCH_WP_MATCHING,
				 MEMWATCH_WP_MATCHING |
				 MEMWATCH_CLEAR_SOFT_DIRTY };
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_WP };
	char *p = map_guarded(2 * NPAGES), *q;
	struct page_region vec[4];
	struct memwatch_arg arg;
	int uffd, sync_uffd;
	size_t f, v, i;
	long ret;

	ASSERT_NE(NULL, p);
	q = p + NPAGES * pagesize;	/* the unregistered half */
	memset(p, 1, 2 * NPAGES * pagesize);
	uffd = uffd_wp_async(p, NPAGES * pagesize, false, true);
	if (uffd < 0)
		SKIP(return, "no async uffd-wp: %s", strerror(errno));
	if (pm_uffd_wp(p, 0) < 0)
		SKIP(return, "no /proc/self/pagemap");
	sd_prepare(self->addr, "1111000011110000");
	__sd_prepare(_metadata, self->pidfd, q, "0110011001100110");

	for (f = 0; f < ARRAY_SIZE(flags); f++) {
		for (v = 0; v < 2; v++) {
			touch(p, 1);
			touch(p, 2);
			mw_init(&arg, p, 2 * NPAGES * pagesize,
				v ? vec : NULL, v ? 4 : 0);
			arg.category_mask = WR;
			arg.return_mask = WR;
			ret = process_memwatch(self->pidfd, &arg, sizeof(arg),
					       flags[f]);
			ASSERT_EQ(v, ret) {
				TH_LOG("flags %#x: %s", flags[f],
				       strerror(errno));
			}
			EXPECT_EQ(arg.end, arg.walk_end);
			if (v) {
				EXPECT_EQ(PG(p, 1), vec[0].start);
				EXPECT_EQ(PG(p, 3), vec[0].end);
			}
			/* And the unregistered VMA on its own */
			mw_init(&arg, self->addr, NPAGES * pagesize,
				v ? vec : NULL, v ? 4 : 0);
			arg.category_mask = WR;
			arg.return_mask = WR;
			EXPECT_EQ(0, process_memwatch(self->pidfd, &arg,
						      sizeof(arg), flags[f]));
			EXPECT_EQ(arg.end, arg.walk_end);
			for (i = 0; i < NPAGES; i++) {
				EXPECT_EQ(1, pm_uffd_wp(p, i));
				EXPECT_EQ(0, pm_uffd_wp(q, i)) {
					TH_LOG("flags %#x: page %zu", flags[f],
					       i);
				}
				EXPECT_EQ(0, pm_uffd_wp(self->addr, i));
			}
			/* Reported as written: never protected */
			__mw_expect(_metadata, self->pidfd, q, 0, WR,
				    "1111111111111111");
			__sd_expect(_metadata, self->pidfd, q, 0,
				    "0110011001100110");
			sd_expect(self->addr, 0, "1111000011110000");
		}
	}
	close(uffd);

	/* Registered for uffd-wp, but synchronous: skipped too */
	sync_uffd = syscall(__NR_userfaultfd,
			    O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	ASSERT_GE(sync_uffd, 0);
	ASSERT_EQ(0, ioctl(sync_uffd, UFFDIO_API, &api));
	reg.range.start = (uintptr_t)self->addr;
	reg.range.len = NPAGES * pagesize;
	if (ioctl(sync_uffd, UFFDIO_REGISTER, &reg))
		SKIP(return, "UFFDIO_REGISTER(WP): %s", strerror(errno));
	mw_init(&arg, self->addr, NPAGES * pagesize, NULL, 0);
	arg.category_mask = WR;
	arg.return_mask = WR;
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg, sizeof(arg),
				       MEMWATCH_WP_MATCHING |
				       MEMWATCH_CHECK_WPASYNC));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(0, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_WP_MATCHING));
	for (i = 0; i < NPAGES; i++) {
		ASSERT_EQ(0, pm_uffd_wp(self->addr, i)) {
			TH_LOG("page %zu protected in a sync uffd-wp VMA", i);
		}
	}
	/* So this cannot block on the synchronous userfaultfd */
	write_pattern(self->addr, "0000000000000001");
	sd_expect(self->addr, 0, "1111000011110001");
	close(sync_uffd);
	unmap_guarded(p, 2 * NPAGES);
}

/*
 * 2: without a vector the exclusive write-protect path ran even without
 * PM_SCAN_WP_MATCHING.  No call without MEMWATCH_WP_MATCHING protects a
 * page or installs a marker, with or without a vector.
 */
TEST_F(memwatch, pagemap_scan_fix_wp_without_wp_matching)
{
	unsigned int flags[] = { 0, MEMWATCH_CHECK_WPASYNC,
				 MEMWATCH_CLEAR_SOFT_DIRTY,
				 MEMWATCH_CLEAR_SOFT_DIRTY |
				 MEMWATCH_CHECK_WPASYNC };
	const char *written = "0110000011000110";
	struct page_region vec[4];
	struct memwatch_arg arg;
	int uffd, wp;
	size_t f, v, i;

	uffd = uffd_wp_async(self->addr, NPAGES * pagesize, false, true);
	if (uffd < 0)
		SKIP(return, "no async uffd-wp: %s", strerror(errno));
	if (pm_uffd_wp(self->addr, 0) < 0)
		SKIP(return, "no /proc/self/pagemap");
	write_pattern(self->addr, written);
	/* Written, then zapped: empty entries without a marker */
	ASSERT_EQ(0, madvise(self->addr + 8 * pagesize, 2 * pagesize,
			     MADV_DONTNEED));
	wr_expect(self->addr, 0, written);

	for (f = 0; f < ARRAY_SIZE(flags); f++) {
		for (v = 0; v < 2; v++) {
			mw_init(&arg, self->addr, NPAGES * pagesize,
				v ? vec : NULL, v ? 4 : 0);
			arg.category_mask = WR;
			arg.return_mask = WR;
			EXPECT_EQ(v ? 3 : 0,
				  process_memwatch(self->pidfd, &arg,
						   sizeof(arg), flags[f])) {
				TH_LOG("flags %#x: %s", flags[f],
				       strerror(errno));
			}
			EXPECT_EQ(arg.end, arg.walk_end);
			wr_expect(self->addr, 0, written);
			for (i = 0; i < NPAGES; i++) {
				wp = pm_uffd_wp(self->addr, i);
				EXPECT_EQ(written[i] == '0', wp) {
					TH_LOG("flags %#x, vec %zu: page %zu",
					       flags[f], v, i);
				}
			}
		}
	}
	/* With WP_MATCHING it does protect them */
	wr_expect(self->addr, MEMWATCH_WP_MATCHING, written);
	wr_expect(self->addr, 0, "0000000000000000");
	for (i = 0; i < NPAGES; i++)
		EXPECT_EQ(1, pm_uffd_wp(self->addr, i));
	close(uffd);
}

struct compactor {
	int stop;
	unsigned long runs;
};

static void *compact_loop(void *data)
{
	struct compactor *c = data;

	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE) &&
	       !write_file_str("/proc/sys/vm/compact_memory", "1"))
		__atomic_fetch_add(&c->runs, 1, __ATOMIC_RELAXED);
	return NULL;
}

/*
 * 5: pte_uffd_wp() was applied to swap and migration entries, misreading
 * them where the bit positions differ (arm64).  In an async uffd-wp VMA,
 * swap entries are reported with their own uffd-wp and soft-dirty bits,
 * MEMWATCH_CLEAR_SOFT_DIRTY keeps their uffd-wp state, WP_MATCHING keeps
 * their soft-dirty state, and both keep them swap entries with their data.
 * Then the same with pages being migrated by compaction, if it can be
 * started: whatever entry the walk meets, the categories stay exact.
 */
TEST_F_TIMEOUT(memwatch, pagemap_scan_fix_uffd_wp_confusion, 60)
{
	const uint64_t P = PAGE_IS_PRESENT, S = PAGE_IS_SWAPPED;
	const char *pattern = "1111000011110000";
	char *a = self->addr;
	unsigned long moved = 0, pfn[NPAGES];
	struct compactor c = { 0 };
	pthread_t thread;
	uint64_t deadline;
	int uffd, fd, rounds;
	size_t i;

	if (!have_swap())
		SKIP(return, "no swap device");
	for (i = 0; i < NPAGES; i++)
		memset(a + i * pagesize, i + 1, pagesize);
	uffd = uffd_wp_async(a, NPAGES * pagesize, false, true);
	if (uffd < 0)
		SKIP(return, "no async uffd-wp: %s", strerror(errno));
	sd_reset(a, NPAGES);
	write_pattern(a, pattern);
	if (swap_out(self->pidfd, a, NPAGES) != 1)
		SKIP(return, "MADV_PAGEOUT did not swap the pages out");

	query(a, NPAGES, 0, S, 0, P | S | WR | SD, { 0, 4, S | WR | SD },
	      { 4, 8, S }, { 8, 12, S | WR | SD }, { 12, 16, S });
	/* Clearing soft-dirty leaves uffd-wp alone */
	sd_expect(a, MEMWATCH_CLEAR_SOFT_DIRTY, pattern);
	query(a, NPAGES, 0, S, 0, P | S | WR | SD, { 0, 4, S | WR },
	      { 4, 8, S }, { 8, 12, S | WR }, { 12, 16, S });
	/* Write-protecting swap entries leaves them swap entries */
	wr_expect(a, MEMWATCH_WP_MATCHING, pattern);
	query(a, NPAGES, 0, 0, 0, P | S | WR | SD, { 0, 16, S });
	for (i = 0; i < NPAGES; i++)
		EXPECT_EQ(1, pm_uffd_wp(a, i));

	/* Both at once, on swap entries written since */
	touch(a, 2);
	touch(a, 3);
	ASSERT_EQ(1, swap_out(self->pidfd, a, NPAGES));
	query(a, NPAGES, 0, 0, 0, P | S | WR | SD, { 0, 2, S },
	      { 2, 4, S | WR | SD }, { 4, 16, S });
	sd_expect(a, MEMWATCH_CLEAR_SOFT_DIRTY | MEMWATCH_WP_MATCHING,
		  "0011000000000000");
	query(a, NPAGES, 0, 0, 0, P | S | WR | SD, { 0, 16, S });

	/* Swapped in by reads: still protected, still clean, data intact */
	for (i = 0; i < NPAGES; i++)
		EXPECT_EQ((char)(i + 1 + (pattern[i] == '1') +
				 (i == 2 || i == 3)), peek(a, i));
	query(a, NPAGES, 0, 0, 0, P | S | WR | SD, { 0, 16, P });
	touch(a, 5);
	query(a, NPAGES, 0, 0, 0, P | S | WR | SD, { 0, 5, P },
	      { 5, 6, P | WR | SD }, { 6, 16, P });
	wr_expect(a, MEMWATCH_WP_MATCHING | MEMWATCH_CLEAR_SOFT_DIRTY,
		  "0000010000000000");

	/* Migration entries, from compaction running meanwhile */
	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0 || access("/proc/sys/vm/compact_memory", W_OK)) {
		TH_LOG("no compaction: migration entries not tried");
		goto out;
	}
	for (i = 0; i < NPAGES; i++)
		pfn[i] = pagemap_get_pfn(fd, a + i * pagesize);
	ASSERT_EQ(0, pthread_create(&thread, NULL, compact_loop, &c));
	deadline = now_ns() + 2000000000ULL;
	for (rounds = 0; now_ns() < deadline; rounds++) {
		const char *pat = rounds & 1 ? "0101100000000011" :
					       "1000000110100100";

		write_pattern(a, pat);
		__mw_expect(_metadata, self->pidfd, a, 0, WR, pat);
		__mw_expect(_metadata, self->pidfd, a,
			    MEMWATCH_WP_MATCHING | MEMWATCH_CLEAR_SOFT_DIRTY,
			    WR, pat);
		sd_expect(a, 0, "0000000000000000");
		__mw_expect(_metadata, self->pidfd, a,
			    MEMWATCH_CLEAR_SOFT_DIRTY, WR, "0000000000000000");
		for (i = 0; i < NPAGES; i++) {
			unsigned long now = pagemap_get_pfn(fd,
							    a + i * pagesize);

			if (now != pfn[i])
				moved++;
			pfn[i] = now;
		}
	}
	__atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
	pthread_join(thread, NULL);
	TH_LOG("%d rounds, %lu compactions, %lu pages migrated", rounds,
	       c.runs, moved);
	for (i = 0; i < NPAGES; i++)
		EXPECT_EQ(1, pm_uffd_wp(a, i));
out:
	if (fd >= 0)
		close(fd);
	close(uffd);
}

/*
 * Run get+clear+write-protect calls over r->base for about duration_ms,
 * and on until the writers made min_writes writes (for at most ten times
 * as long, as the writers' CPU may be slow to run), with the rule of
 * __race_monitor() applied to the soft-dirty and the written state
 * separately: a write after call e is reported in both categories by some
 * call after e.
 */
static long __wr_race_monitor(struct __test_metadata *_metadata, int pidfd,
			      struct race *r, unsigned int duration_ms,
			      unsigned long min_writes)
{
	const struct mw_masks m = { .anyof = SD | WR, .ret = SD | WR };
	uint64_t *w, *lastsd, *lastwr, deadline, limit, k, now;
	char *map;
	long lost;
	size_t p;

	w = calloc(r->npages, sizeof(*w));
	lastsd = calloc(r->npages, sizeof(*lastsd));
	lastwr = calloc(r->npages, sizeof(*lastwr));
	map = calloc(r->npages, 1);
	ASSERT_TRUE(w && lastsd && lastwr && map);
	deadline = now_ns() + duration_ms * 1000000ULL;
	limit = deadline + 9 * duration_ms * 1000000ULL;
	for (k = 1; ; k++) {
		now = now_ns();
		if (now >= limit || (now >= deadline &&
				     __atomic_load_n(&r->writes,
						     __ATOMIC_RELAXED) >=
				     min_writes))
			break;
		for (p = 0; p < r->npages; p++)
			w[p] = __atomic_load_n(&r->wepoch[p],
					       __ATOMIC_ACQUIRE);
		__masks_scan(_metadata, pidfd, r->base, r->npages, &m,
			     MEMWATCH_CLEAR_SOFT_DIRTY | MEMWATCH_WP_MATCHING,
			     map);
		__atomic_store_n(&r->epoch, k, __ATOMIC_RELEASE);
		lost = -1;
		for (p = 0; p < r->npages; p++) {
			if (map[p] & MAP_SD)
				lastsd[p] = k;
			if (map[p] & MAP_WR)
				lastwr[p] = k;
			if (lastsd[p] < w[p] || lastwr[p] < w[p])
				lost = p;
		}
		if (lost < 0)
			continue;
		__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
		ASSERT_TRUE(false) {
			TH_LOG("page %ld written after call %llu: last sd %llu, wr %llu",
			       lost, (unsigned long long)w[lost] - 1,
			       (unsigned long long)lastsd[lost],
			       (unsigned long long)lastwr[lost]);
		}
	}
	free(w);
	free(lastsd);
	free(lastwr);
	free(map);
	return k - 1;
}

/* Sum of the counters that race_writer() increments */
static uint64_t race_sum(const struct race *r)
{
	uint64_t sum = 0;
	size_t p;

	for (p = 0; p < r->npages; p++)
		sum += __atomic_load_n((uint64_t *)(r->base + p * pagesize),
				       __ATOMIC_RELAXED);
	return sum;
}

/*
 * Two writers on another CPU against __wr_race_monitor().  Returns the
 * number of writes, which is the sum of the counters.
 */
static uint64_t __wr_race(struct __test_metadata *_metadata, int pidfd,
			  char *base, size_t npages)
{
	struct race r = { .base = base, .npages = npages };
	pthread_t threads[2];
	long calls;
	int i;

	r.cpu = other_cpu();
	r.wepoch = calloc(r.npages, sizeof(*r.wepoch));
	if (!r.wepoch)
		return 0;
	pin_to_cpu(r.cpu < 0 ? -1 : 0);
	for (i = 0; i < 2; i++)
		if (pthread_create(&threads[i], NULL, race_writer, &r))
			return 0;
	calls = __wr_race_monitor(_metadata, pidfd, &r, 1500, 200);
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 2; i++)
		pthread_join(threads[i], NULL);
	TH_LOG("%ld calls, %lu writes", calls, r.writes);
	EXPECT_GT(calls, 10);
	EXPECT_GT(r.writes, 100);
	/* No write lost its data either */
	EXPECT_EQ(r.writes, race_sum(&r));
	free(r.wepoch);
	return r.writes;
}

/*
 * 6: the uffd-wp PTE was rebuilt from a stale snapshot, losing accessed
 * and dirty bits set meanwhile.  Writers on another CPU while every page
 * is soft-dirty cleared and write-protected: no write goes unreported in
 * either category, and none loses its data, also after the pages were
 * swapped out and read back.
 */
TEST_F_TIMEOUT(memwatch, pagemap_scan_fix_young_dirty_loss, 60)
{
	struct race r = { .npages = 64 };
	uint64_t writes;
	bool swapped;
	int uffd;

	r.base = map_guarded(r.npages);
	ASSERT_NE(NULL, r.base);
	memset(r.base, 0, r.npages * pagesize);
	uffd = uffd_wp_async(r.base, r.npages * pagesize, false, true);
	if (uffd < 0)
		SKIP(return, "no async uffd-wp: %s", strerror(errno));
	__sd_reset(_metadata, self->pidfd, r.base, r.npages);
	writes = __wr_race(_metadata, self->pidfd, r.base, r.npages);
	ASSERT_GT(writes, 0);
	swapped = have_swap() && swap_out(self->pidfd, r.base, r.npages) == 1;
	TH_LOG("pages %sswapped out", swapped ? "" : "not ");
	EXPECT_EQ(writes, race_sum(&r));
	close(uffd);
	unmap_guarded(r.base, r.npages);
}

/*
 * 7: vec_len * sizeof(struct page_region) could wrap around.  Lengths
 * whose size wraps to 16 bytes, to 0, or that do not wrap but pass the end
 * of the address space all fail with EFAULT (EINVAL above SIZE_MAX),
 * whatever the flags: nothing is written to vec or walk_end and no page
 * changes.
 */
TEST_F(memwatch, pagemap_scan_fix_vec_len_overflow)
{
	const uint64_t entry = sizeof(struct page_region);
	uint64_t lens[] = {
		UINT64_MAX / entry + 2,	/* size wraps to 16 bytes */
		(UINT64_MAX / entry + 1),	/* size wraps to 0 */
		UINT64_MAX,
		1ULL << 59,		/* no wrap, beyond any address space */
		(uint64_t)SIZE_MAX + 1,
	};
	unsigned int flags[] = { 0, MEMWATCH_CLEAR_SOFT_DIRTY,
				 MEMWATCH_WP_MATCHING,
				 MEMWATCH_CLEAR_SOFT_DIRTY |
				 MEMWATCH_WP_MATCHING };
	struct page_region vec[2];
	struct memwatch_arg arg;
	size_t i, f;
	int err;

	/*
	 * The sizes wrap in the kernel's size_t, which a 32-bit program on a
	 * 64-bit kernel cannot know: its 64-bit build checks them.
	 */
	if (sizeof(size_t) < 8)
		SKIP(return, "the sizes depend on the kernel's word size");
	if (whole_address_space())
		SKIP(return, "access_ok() accepts any vec_len on this architecture");
	sd_prepare(self->addr, "1010101010101010");
	for (f = 0; f < ARRAY_SIZE(flags); f++) {
		for (i = 0; i < ARRAY_SIZE(lens); i++) {
			if (!lens[i])
				continue;	/* 32-bit SIZE_MAX + 1 */
			err = lens[i] > SIZE_MAX ? EINVAL : EFAULT;
			memset(vec, 0x5a, sizeof(vec));
			mw_init(&arg, self->addr, NPAGES * pagesize, vec, 1);
			arg.vec_len = lens[i];
			errno = 0;
			EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg,
						       sizeof(arg), flags[f]));
			EXPECT_EQ(err, errno) {
				TH_LOG("vec_len %#llx flags %#x",
				       (unsigned long long)lens[i], flags[f]);
			}
			EXPECT_EQ(0, arg.walk_end);
			EXPECT_EQ(0x5a5a5a5a5a5a5a5aULL, vec[0].start);
			EXPECT_EQ(0x5a5a5a5a5a5a5a5aULL, vec[1].start);
			/* Without a vector it is EINVAL */
			mw_init(&arg, self->addr, NPAGES * pagesize, NULL, 0);
			arg.vec_len = lens[i];
			errno = 0;
			EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg,
						       sizeof(arg), flags[f]));
			EXPECT_EQ(EINVAL, errno);
		}
	}
	sd_expect(self->addr, 0, "1010101010101010");
}

/*
 * 8: the huge zero page mapped by a PMD was never PAGE_IS_PFNZERO.  A
 * read-faulted THP-eligible mapping is reported PFNZERO as a whole when
 * PFNZERO is required, left out by CRIU's query, and after a write splits
 * it, every page but the written one is still PFNZERO.
 */
TEST_F(memwatch, pagemap_scan_fix_huge_zero_pfnzero)
{
	const uint64_t P = PAGE_IS_PRESENT, Z = PAGE_IS_PFNZERO;
	const uint64_t H = PAGE_IS_HUGE;
	size_t pmd = read_pmd_pagesize(), n;
	struct page_region vec[4];
	struct memwatch_arg arg;
	char buf[16] = "";
	char *p;

	if (!pmd || !thp_available())
		SKIP(return, "THP not available");
	if (read_file_str("/sys/kernel/mm/transparent_hugepage/use_zero_page",
			  buf, sizeof(buf)) || buf[0] != '1')
		SKIP(return, "the huge zero page is disabled");
	p = thp_map(pmd);
	ASSERT_NE(NULL, p);
	n = pmd / pagesize;
	peek(p, 3);
	mw_init(&arg, p, pmd, vec, 4);
	arg.category_mask = P;
	arg.return_mask = P | H;
	ASSERT_EQ(1, process_memwatch(self->pidfd, &arg, sizeof(arg), 0));
	if (vec[0].categories != (P | H))
		SKIP(return, "no huge zero page mapped");

	/* Required */
	query(p, n, 0, Z, 0, P | Z | H, { 0, n, P | Z | H });
	query(p, n, 0, P | Z, 0, Z, { 0, n, Z });
	/* Any of, and a part of it */
	query(p + 8 * pagesize, 4, 0, 0, Z | PAGE_IS_SWAPPED, Z, { 0, 4, Z });
	/* Inverted: CRIU's query does not dump it */
	query_none(p, n, Z | PAGE_IS_FILE, Z | PAGE_IS_FILE,
		   P | PAGE_IS_SWAPPED, P | PAGE_IS_SWAPPED | SD);
	query_none(p, n, Z, Z, 0, P);
	/* A write splits it or replaces it with a THP */
	touch(p, 7);
	mw_init(&arg, p, pmd, vec, 4);
	arg.category_mask = P;
	arg.return_mask = P | H;
	ASSERT_LE(1, process_memwatch(self->pidfd, &arg, sizeof(arg), 0));
	if (vec[0].categories & H) {
		query_none(p, n, 0, Z, 0, P);
	} else {
		/* The other pages are the small zero page */
		query(p, n, 0, Z, 0, P | Z, { 0, 7, P | Z }, { 8, n, P | Z });
		query(p, n, Z, P | Z, 0, P | Z, { 7, 8, P });
	}
	munmap(p, pmd);
}

/* A THP written all over, or NULL */
static char *thp_fresh(size_t pmd)
{
	char *p = thp_map(pmd);

	if (!p)
		return NULL;
	memset(p, 1, pmd);
	if (!check_huge_anon(p, 1, pmd)) {
		madvise(p, pmd, MADV_COLLAPSE);
		if (!check_huge_anon(p, 1, pmd)) {
			munmap(p, pmd);
			return NULL;
		}
	}
	return p;
}

/*
 * One side-effect-only call (vec == 0) over [p + first, p + last pages),
 * with max_pages: it must succeed, stop at walk_end (a page index), and
 * change exactly the pages before it.
 */
static void __null_vec_call(struct __test_metadata *_metadata, int pidfd,
			    char *p, size_t first, size_t last,
			    uint64_t max_pages, unsigned int flags,
			    uint64_t cat, size_t walk_end)
{
	struct memwatch_arg arg;

	mw_init(&arg, p + first * pagesize, (last - first) * pagesize,
		NULL, 0);
	arg.category_mask = cat;
	arg.return_mask = cat;
	arg.max_pages = max_pages;
	ASSERT_EQ(0, process_memwatch(pidfd, &arg, sizeof(arg), flags)) {
		TH_LOG("[%zu, %zu) max_pages %llu flags %#x: %s", first, last,
		       (unsigned long long)max_pages, flags, strerror(errno));
	}
	EXPECT_EQ(PG(p, walk_end), arg.walk_end);
}

/* The pages of [p, p + n pages) in cat: exactly [first, last) */
static void __expect_span(struct __test_metadata *_metadata, int pidfd,
			  char *p, size_t n, uint64_t cat, size_t first,
			  size_t last)
{
	char *map = malloc(n);
	size_t i;

	ASSERT_NE(NULL, map);
	EXPECT_EQ(last - first, __mw_scan(_metadata, pidfd, p, n, 0, cat,
					  map));
	for (i = 0; i < n; i++) {
		ASSERT_EQ(i >= first && i < last, map[i]) {
			TH_LOG("page %zu", i);
		}
	}
	free(map);
}

/*
 * 9: with vec_len == 0, backing out of a partial THP or hugetlb page
 * dereferenced the NULL output buffer.  Clear-only and write-protect-only
 * calls over a THP or a hugetlb page cut by the range or by max_pages: a
 * THP is split and only its covered part changes; a hugetlb page cut as
 * the first page is EINVAL with nothing changed, later it ends the walk
 * at walk_end.
 */
TEST_F(memwatch, pagemap_scan_fix_null_vec_buf)
{
	const unsigned int CSD = MEMWATCH_CLEAR_SOFT_DIRTY;
	const unsigned int WPM = MEMWATCH_WP_MATCHING;
	size_t pmd = read_pmd_pagesize(), n, hp = 2UL << 20, hn;
	struct memwatch_arg arg;
	bool tested = false;
	int uffd, c;
	char *p;

	/* THP: a clear, a write-protect, and both, cut by end or max_pages */
	for (c = 0; pmd && thp_available() && c < 4; c++) {
		unsigned int flags = c < 2 ? CSD : c == 2 ? WPM : CSD | WPM;
		uint64_t cat = flags & CSD ? SD : WR;

		p = thp_fresh(pmd);
		if (!p)
			break;
		n = pmd / pagesize;
		uffd = -1;
		if (flags & WPM) {
			uffd = uffd_wp_async(p, pmd, false, false);
			if (uffd < 0) {
				munmap(p, pmd);
				break;
			}
		}
		if (flags & CSD) {
			__sd_reset(_metadata, self->pidfd, p, n);
			memset(p, 2, pmd);
			ASSERT_TRUE(check_huge_anon(p, 1, pmd));
		}
		if (c & 1) {
			__null_vec_call(_metadata, self->pidfd, p, 0, n, 3,
					flags, cat, 3);
			__expect_span(_metadata, self->pidfd, p, n, cat, 3, n);
		} else {
			__null_vec_call(_metadata, self->pidfd, p, n / 2, n, 0,
					flags, cat, n);
			__expect_span(_metadata, self->pidfd, p, n, cat, 0,
				      n / 2);
		}
		if (flags & CSD && flags & WPM)
			__expect_span(_metadata, self->pidfd, p, n, WR, 3, n);
		if (uffd >= 0)
			close(uffd);
		munmap(p, pmd);
		tested = true;
	}

	/* hugetlb: two 2 MiB pages */
	p = mmap(NULL, 2 * hp, PROT_READ | PROT_WRITE, MAP_PRIVATE |
		 MAP_ANONYMOUS | MAP_HUGETLB | (21 << MAP_HUGE_SHIFT), -1, 0);
	if (p == MAP_FAILED) {
		if (!tested)
			SKIP(return, "neither THP nor 2 MiB hugetlb pages");
		return;
	}
	hn = 2 * hp / pagesize;
	memset(p, 1, 2 * hp);
	__sd_reset(_metadata, self->pidfd, p, hn);
	memset(p, 2, 2 * hp);
	for (c = 0; c < 2; c++) {
		mw_init(&arg, p + hp / 2, hp + hp / 2, NULL, 0);
		arg.max_pages = c ? 3 : 0;
		errno = 0;
		EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg, sizeof(arg),
					       CSD));
		EXPECT_EQ(EINVAL, errno);
		mw_init(&arg, p, 2 * hp, NULL, 0);
		arg.max_pages = 3;
		errno = 0;
		EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg, sizeof(arg),
					       CSD));
		EXPECT_EQ(EINVAL, errno);
		__expect_span(_metadata, self->pidfd, p, hn, SD, 0, hn);
	}
	__null_vec_call(_metadata, self->pidfd, p, 0, hn / 2 + 5, 0, CSD, SD,
			hn / 2);
	__expect_span(_metadata, self->pidfd, p, hn, SD, hn / 2, hn);
	memset(p, 3, hp);
	__null_vec_call(_metadata, self->pidfd, p, 0, hn, hn / 2 + 3, CSD, SD,
			hn / 2);
	__expect_span(_metadata, self->pidfd, p, hn, SD, hn / 2, hn);

	/* and write-protect-only, in an async uffd-wp hugetlb VMA */
	uffd = uffd_wp_async(p, 2 * hp, true, false);
	if (uffd >= 0) {
		mw_init(&arg, p + hp / 2, hp + hp / 2, NULL, 0);
		arg.category_mask = WR;
		arg.return_mask = WR;
		errno = 0;
		EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg, sizeof(arg),
					       WPM));
		EXPECT_EQ(EINVAL, errno);
		__expect_span(_metadata, self->pidfd, p, hn, WR, 0, hn);
		__null_vec_call(_metadata, self->pidfd, p, 0, hn / 2 + 5, 0,
				WPM, WR, hn / 2);
		__expect_span(_metadata, self->pidfd, p, hn, WR, hn / 2, hn);
		/* The second page, cut by max_pages, ends the walk */
		__null_vec_call(_metadata, self->pidfd, p, 0, hn, 7,
				WPM | CSD, WR, hn / 2);
		__expect_span(_metadata, self->pidfd, p, hn, WR, hn / 2, hn);
		close(uffd);
	} else {
		TH_LOG("no async uffd-wp on hugetlb: %s", strerror(errno));
	}
	munmap(p, 2 * hp);
}

/* n bytes of hugetlb memory in pages of 1 << shift bytes, or NULL */
static char *hugetlb_map(size_t len, unsigned int shift, bool noreserve)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
		       (noreserve ? MAP_NORESERVE : 0) |
		       (shift << MAP_HUGE_SHIFT), -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * 11: the hugetlb write-protect committed a PTE without starting the
 * update, losing accessed and dirty bits set meanwhile.  Writers on
 * another CPU while two 2 MiB hugetlb pages are soft-dirty cleared and
 * write-protected: no write goes unreported and none loses its data.
 */
TEST_F_TIMEOUT(memwatch, pagemap_scan_fix_hugetlb_prot_race, 60)
{
	size_t hp = 2UL << 20;
	int uffd;
	char *p;

	p = hugetlb_map(2 * hp, 21, false);
	if (!p)
		SKIP(return, "no two free 2 MiB hugetlb pages");
	memset(p, 0, 2 * hp);
	uffd = uffd_wp_async(p, 2 * hp, true, true);
	if (uffd < 0)
		SKIP(return, "no async uffd-wp on hugetlb: %s",
		     strerror(errno));
	__sd_reset(_metadata, self->pidfd, p, 2 * hp / pagesize);
	__wr_race(_metadata, self->pidfd, p, 2 * hp / pagesize);
	close(uffd);
	munmap(p, 2 * hp);
}

/*
 * 12: the partial-page test compared with the PMD size, so every 1 GiB
 * hugetlb page counted as partial and every clear or write-protect of it
 * was refused.  A whole 1 GiB page is cleared and write-protected, with
 * and without a vector; only a cut one is refused.
 */
TEST_F_TIMEOUT(memwatch, pagemap_scan_fix_1g_hugetlb_partial, 60)
{
	size_t hp = 1UL << 30, n = hp / pagesize;
	struct page_region vec[4];
	struct memwatch_arg arg;
	int uffd = -1, f;
	char *p;

	p = hugetlb_map(hp, 30, false);
	if (!p)
		SKIP(return, "no free 1 GiB hugetlb page");
	p[0] = 1;
	for (f = 0; f < 2; f++) {
		unsigned int flags = f ? MEMWATCH_WP_MATCHING :
					 MEMWATCH_CLEAR_SOFT_DIRTY;
		uint64_t cat = f ? WR : SD;

		if (f) {
			uffd = uffd_wp_async(p, hp, true, false);
			if (uffd < 0) {
				TH_LOG("no async uffd-wp on hugetlb: %s",
				       strerror(errno));
				break;
			}
		}
		/* A cut page is refused and nothing changes */
		mw_init(&arg, p, hp - (2UL << 20), vec, 4);
		arg.category_mask = cat;
		arg.return_mask = cat;
		errno = 0;
		EXPECT_EQ(-1, process_memwatch(self->pidfd, &arg, sizeof(arg),
					       flags));
		EXPECT_EQ(EINVAL, errno);
		__expect_span(_metadata, self->pidfd, p, n, cat, 0, n);
		/* With a vector */
		mw_init(&arg, p, hp, vec, 4);
		arg.category_mask = cat;
		arg.return_mask = cat | PAGE_IS_HUGE;
		ASSERT_EQ(1, process_memwatch(self->pidfd, &arg, sizeof(arg),
					      flags)) {
			TH_LOG("flags %#x: %s", flags, strerror(errno));
		}
		EXPECT_EQ((uintptr_t)p, vec[0].start);
		EXPECT_EQ((uintptr_t)p + hp, vec[0].end);
		EXPECT_EQ(cat | PAGE_IS_HUGE, vec[0].categories);
		EXPECT_EQ(arg.end, arg.walk_end);
		__expect_span(_metadata, self->pidfd, p, n, cat, 0, 0);
		/* Written again, then without a vector */
		p[5 * pagesize] = 2;
		__expect_span(_metadata, self->pidfd, p, n, cat, 0, n);
		__null_vec_call(_metadata, self->pidfd, p, 0, n, 0, flags, cat,
				n);
		__expect_span(_metadata, self->pidfd, p, n, cat, 0, 0);
		EXPECT_EQ(2, p[5 * pagesize]);
		if (f)
			close(uffd);
	}
	munmap(p, hp);
}

/*
 * 13: write-protecting a hugetlb hole took the hugetlb VMA lock for write
 * under the walk's read lock: an unkillable hang.  WP_MATCHING over an
 * async uffd-wp hugetlb range with a written page, a marker, an empty
 * entry without a marker, a zapped written page and a whole gigabyte
 * without page tables returns, protects the written page and reports none
 * of the holes (hugetlb holes are not written, as in PAGEMAP_SCAN).
 */
TEST_F_TIMEOUT(memwatch, pagemap_scan_fix_hugetlb_hole_deadlock, 60)
{
	size_t hp = 2UL << 20, gb = 1UL << 30;
	unsigned int flags[] = { MEMWATCH_WP_MATCHING,
				 MEMWATCH_WP_MATCHING |
				 MEMWATCH_CLEAR_SOFT_DIRTY };
	struct uffdio_writeprotect wp = {
		.range = { .len = 4 * hp },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	struct page_region vec[4];
	struct memwatch_arg arg;
	char *raw, *p;
	size_t f, v;
	int uffd;
	long ret;

	/* Two gigabytes at a gigabyte boundary, nothing reserved */
	raw = hugetlb_map(3 * gb, 21, true);
	if (!raw)
		SKIP(return, "cannot map 2 MiB hugetlb pages");
	p = (char *)(((uintptr_t)raw + gb - 1) & ~(gb - 1));
	if (p > raw)
		munmap(raw, p - raw);
	munmap(p + 2 * gb, raw + 3 * gb - (p + 2 * gb));
	/* Markers in the first 8 MiB only */
	uffd = uffd_wp_async(p, 2 * gb, true, false);
	if (uffd < 0) {
		munmap(p, 2 * gb);
		SKIP(return, "no async uffd-wp on hugetlb: %s",
		     strerror(errno));
	}
	wp.range.start = (uintptr_t)p;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_WRITEPROTECT, &wp));
	for (f = 0; f < ARRAY_SIZE(flags); f++) {
		for (v = 0; v < 2; v++) {
			/* page 0 written; page 1 written then zapped */
			p[0] = 1;
			p[hp] = 1;
			ASSERT_EQ(0, madvise(p + hp, hp, MADV_DONTNEED));
			/* page 5 empty without a marker; 2 and 3 markers */
			mw_init(&arg, p, 2 * gb, v ? vec : NULL, v ? 4 : 0);
			arg.category_mask = WR;
			arg.return_mask = WR;
			ret = process_memwatch(self->pidfd, &arg, sizeof(arg),
					       flags[f]);
			ASSERT_EQ(v, ret) {
				TH_LOG("flags %#x: %s", flags[f],
				       strerror(errno));
			}
			EXPECT_EQ(arg.end, arg.walk_end);
			if (v) {
				EXPECT_EQ((uintptr_t)p, vec[0].start);
				EXPECT_EQ((uintptr_t)p + hp, vec[0].end);
			}
			EXPECT_EQ(1, pm_uffd_wp(p, 0));
			/* Nothing left written but the holes */
			mw_init(&arg, p, 2 * gb, vec, 4);
			arg.category_mask = WR;
			arg.return_mask = WR;
			EXPECT_EQ(0, process_memwatch(self->pidfd, &arg,
						      sizeof(arg), 0));
			EXPECT_EQ(arg.end, arg.walk_end);
		}
	}
	/* The write after it is seen */
	p[3 * hp] = 1;
	mw_init(&arg, p, 2 * gb, vec, 4);
	arg.category_mask = WR;
	arg.return_mask = WR;
	ASSERT_EQ(1, process_memwatch(self->pidfd, &arg, sizeof(arg), 0));
	EXPECT_EQ((uintptr_t)p + 3 * hp, vec[0].start);
	EXPECT_EQ((uintptr_t)p + 4 * hp, vec[0].end);
	close(uffd);
	munmap(p, 2 * gb);
}

/*
 * 15: an empty entry of an async uffd-wp VMA (a page zapped by
 * MADV_DONTNEED) was written for the PAGE_IS_WRITTEN-only query but not
 * for one with other masks, which also did not re-arm it.  Every set of
 * masks reports the same pages, and re-arming with any of them protects
 * the zapped pages.
 */
TEST_F(memwatch, pagemap_scan_fix_unpopulated_written)
{
	const char *written = "0011111101000000";
	char *a = self->addr;
	size_t k, i;
	int uffd;

	uffd = uffd_wp_async(a, NPAGES * pagesize, false, true);
	if (uffd < 0)
		SKIP(return, "no async uffd-wp: %s", strerror(errno));
	for (k = 0; k < ARRAY_SIZE(wr_masks); k++) {
		write_pattern(a, "0011111100000000");
		/*
		 * 4-7 written then zapped; 9 zapped while protected, which
		 * drops its uffd-wp bit in an anonymous VMA: written too
		 */
		ASSERT_EQ(0, madvise(a + 4 * pagesize, 4 * pagesize,
				     MADV_DONTNEED));
		ASSERT_EQ(0, madvise(a + 9 * pagesize, pagesize,
				     MADV_DONTNEED));
		__wr_expect_all(_metadata, self->pidfd, a, NPAGES, written);
		__wp_reset(_metadata, self->pidfd, a, NPAGES, &wr_masks[k], 0);
		__wr_expect_all(_metadata, self->pidfd, a, NPAGES,
				"0000000000000000");
		for (i = 4; i < 10; i++) {
			EXPECT_EQ(1, pm_uffd_wp(a, i)) {
				TH_LOG("mask set %zu: page %zu not re-armed",
				       k, i);
			}
		}
		/* Read as zero, and only a write is written */
		EXPECT_EQ(0, peek(a, 5));
		touch(a, 6);
		__wr_expect_all(_metadata, self->pidfd, a, NPAGES,
				"0000001000000000");
		__wp_reset(_metadata, self->pidfd, a, NPAGES, &wr_masks[0], 0);
	}
	close(uffd);
}

/*
 * 16: a PMD without a page table in an async uffd-wp VMA (a protected
 * THP zapped whole by MADV_DONTNEED) was neither reported written nor
 * re-armed.  It is reported written by every set of masks, and re-arming
 * it, with or without extra masks, protects it page by page.
 */
TEST_F(memwatch, pagemap_scan_fix_pmd_hole_written)
{
	size_t pmd = read_pmd_pagesize(), n, i;
	char *p, *all, *none, *one;
	int uffd, round;

	if (!pmd || !thp_available())
		SKIP(return, "THP not available");
	n = pmd / pagesize;
	all = malloc(n + 1);
	none = malloc(n + 1);
	one = malloc(n + 1);
	ASSERT_TRUE(all && none && one);
	memset(all, '1', n);
	memset(none, '0', n);
	memset(one, '0', n);
	one[10] = '1';
	all[n] = '\0';
	none[n] = '\0';
	one[n] = '\0';
	for (round = 0; round < 2; round++) {
		p = thp_fresh(pmd);
		if (!p)
			SKIP(return, "could not allocate a THP");
		uffd = uffd_wp_async(p, pmd, false, true);
		if (uffd < 0)
			SKIP(return, "no async uffd-wp: %s", strerror(errno));
		/* Protected as one PMD */
		ASSERT_TRUE(check_huge_anon(p, 1, pmd));
		__wr_expect_all(_metadata, self->pidfd, p, n, none);
		ASSERT_EQ(0, madvise(p, pmd, MADV_DONTNEED));
		__wr_expect_all(_metadata, self->pidfd, p, n, all);
		__wp_reset(_metadata, self->pidfd, p, n,
			   &wr_masks[round ? 1 : 0], 0);
		__wr_expect_all(_metadata, self->pidfd, p, n, none);
		for (i = 0; i < n; i += 97)
			EXPECT_EQ(1, pm_uffd_wp(p, i));
		EXPECT_EQ(0, peek(p, 3));
		touch(p, 10);
		__wr_expect_all(_metadata, self->pidfd, p, n, one);
		close(uffd);
		munmap(p, pmd);
	}
	free(all);
	free(none);
	free(one);
}

/* ---- Where the call differs from PAGEMAP_SCAN, on one engine ---- */

/*
 * PAGEMAP_SCAN over [start, start + len) of this process with one mask,
 * returned and required: the number of regions, or -1 with errno set.
 */
static long pm_scan(void *start, size_t len, uint64_t mask, uint64_t flags,
		    struct page_region *vec, size_t vec_len)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = flags,
		.start = (uintptr_t)start,
		.end = (uintptr_t)start + len,
		.vec = (uintptr_t)vec,
		.vec_len = vec_len,
		.category_mask = mask,
		.return_mask = mask,
	};
	long ret;
	int fd;

	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return -1;
	ret = ioctl(fd, PAGEMAP_SCAN, &arg);
	close(fd);
	return ret;
}

/*
 * Difference 1: an empty entry of a populated page table, in a mapping not
 * registered for uffd-wp, is not written for process_memwatch(), as a page
 * without a page table is not; PAGEMAP_SCAN reports it written. Both
 * interfaces share one walk: this checks that each keeps its rule.
 */
TEST_F(memwatch, diff_empty_entry_not_written)
{
	size_t pmd = read_pmd_pagesize();
	struct page_region vec[8];
	struct memwatch_arg arg;
	char *p;
	long ret;

	if (!pmd)
		SKIP(return, "no PMD page size");
	p = pmd_reserve(pmd);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(p, mmap(p, pmd, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	/* No THP: pages 5 and 7 stay empty entries of page 4's table */
	madvise(p, pmd, MADV_NOHUGEPAGE);
	touch(p, 4);
	touch(p, 6);

	mw_init(&arg, p, 8 * pagesize, vec, ARRAY_SIZE(vec));
	arg.category_mask = WR;
	arg.return_mask = WR;
	ret = process_memwatch(self->pidfd, &arg, sizeof(arg), 0);
	ASSERT_EQ(2, ret);
	EXPECT_EQ(PG(p, 4), vec[0].start);
	EXPECT_EQ(PG(p, 5), vec[0].end);
	EXPECT_EQ(PG(p, 6), vec[1].start);
	EXPECT_EQ(PG(p, 7), vec[1].end);
	EXPECT_EQ(PG(p, 8), arg.walk_end);

	memset(vec, 0, sizeof(vec));
	ret = pm_scan(p, 8 * pagesize, WR, 0, vec, ARRAY_SIZE(vec));
	if (ret < 0 && (errno == ENOTTY || errno == ENOENT))
		SKIP(goto out, "no PAGEMAP_SCAN: %s", strerror(errno));
	/* Pages 0-3 sit in the same table: empty entries, written too */
	ASSERT_EQ(1, ret) {
		TH_LOG("PAGEMAP_SCAN: %ld, %s", ret, strerror(errno));
	}
	EXPECT_EQ(PG(p, 0), vec[0].start);
	EXPECT_EQ(PG(p, 8), vec[0].end);
out:
	munmap(p, pmd);
}

/*
 * A PMD-mapped, written shmem THP, registered for async uffd-wp without
 * protection, so that every page is written: NULL if the kernel has none.
 */
static char *shmem_thp_uffd(size_t pmd, int *fd, int *uffd)
{
	char *p = pmd_reserve(pmd);

	*fd = memfd_create("memwatch-thp", 0);
	if (!p || *fd < 0 || ftruncate(*fd, pmd) ||
	    mmap(p, pmd, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 *fd, 0) != p || madvise(p, pmd, MADV_HUGEPAGE))
		goto fail;
	*uffd = uffd_wp_async(p, pmd, true, false);
	if (*uffd < 0)
		goto fail;
	memset(p, 1, pmd);
	if (check_huge_shmem(p, 1, pmd))
		return p;
	close(*uffd);
fail:
	if (*fd >= 0)
		close(*fd);
	if (p)
		munmap(p, pmd);
	return NULL;
}

/*
 * Difference 5: a file THP only partly inside a write-protecting range is
 * reported and left whole by process_memwatch(): splitting its PMD would
 * unmap it and drop its soft-dirty bit. PAGEMAP_SCAN splits it.
 */
static void __file_thp_partial_wp(struct __test_metadata *_metadata,
				  int pidfd, size_t pmd, bool memwatch)
{
	size_t n = pmd / pagesize;
	struct page_region vec[4];
	struct memwatch_arg arg;
	int fd, uffd;
	long ret;
	char *p;

	p = shmem_thp_uffd(pmd, &fd, &uffd);
	ASSERT_NE(NULL, p);
	/* The second half: part of the THP */
	if (memwatch) {
		mw_init(&arg, p + pmd / 2, pmd / 2, vec, ARRAY_SIZE(vec));
		arg.category_mask = WR;
		arg.return_mask = WR;
		ret = process_memwatch(pidfd, &arg, sizeof(arg),
				       MEMWATCH_WP_MATCHING);
	} else {
		ret = pm_scan(p + pmd / 2, pmd / 2, WR, PM_SCAN_WP_MATCHING,
			      vec, ARRAY_SIZE(vec));
	}
	EXPECT_EQ(1, ret) {
		TH_LOG("%s: %s", memwatch ? "process_memwatch" : "PAGEMAP_SCAN",
		       strerror(errno));
	}
	EXPECT_EQ(PG(p, n / 2), vec[0].start);
	EXPECT_EQ(PG(p, n), vec[0].end);
	if (memwatch) {
		/* Whole, mapped, and still written: reported again */
		EXPECT_TRUE(check_huge_shmem(p, 1, pmd));
		EXPECT_EQ(0, pm_uffd_wp(p, n - 1));
		EXPECT_EQ(1, process_memwatch(pidfd, &arg, sizeof(arg), 0));
	} else {
		/* Split, unmapped, with markers on the range */
		EXPECT_FALSE(check_huge_shmem(p, 1, pmd));
		EXPECT_EQ(1, pm_uffd_wp(p, n - 1));
	}
	close(uffd);
	close(fd);
	munmap(p, pmd);
}

TEST_F(memwatch, diff_file_thp_partial_wp)
{
	static const char knob[] =
		"/sys/kernel/mm/transparent_hugepage/shmem_enabled";
	size_t pmd = read_pmd_pagesize();
	char old[128] = "", *sel, *p;
	int fd, uffd;

	if (!pmd || !thp_available())
		SKIP(return, "THP not available");
	if (read_file_str(knob, old, sizeof(old)) < 0)
		SKIP(return, "cannot read %s", knob);
	sel = strchr(old, '[');
	if (!sel || !strchr(sel, ']'))
		SKIP(return, "no selection in %s: %s", knob, old);
	*strchr(sel, ']') = '\0';
	if (write_file_str(knob, "advise"))
		SKIP(return, "cannot enable shmem THP: %s", strerror(errno));
	p = shmem_thp_uffd(pmd, &fd, &uffd);
	if (p) {
		close(uffd);
		close(fd);
		munmap(p, pmd);
		__file_thp_partial_wp(_metadata, self->pidfd, pmd, true);
		__file_thp_partial_wp(_metadata, self->pidfd, pmd, false);
	}
	write_file_str(knob, sel + 1);
	if (!p)
		SKIP(return, "no PMD-mapped shmem THP with async uffd-wp");
}

/*
 * The walk skips sixteen entries of a page table at once, and single
 * entries on a few bits, where it can (pagescan_quick_test() on x86_64):
 * one written page at each offset of a 64-page range, for soft-dirty and for
 * uffd-wp async, through both interfaces, must be reported alone, and
 * re-armed.
 */
#define GROUP_PAGES	64

static void __group_offsets(struct __test_metadata *_metadata, int pidfd,
			    char *p, uint64_t cat)
{
	unsigned int flags = cat == SD ? MEMWATCH_CLEAR_SOFT_DIRTY :
					 MEMWATCH_WP_MATCHING;
	struct page_region vec[GROUP_PAGES];
	struct memwatch_arg arg;
	long ret;
	int i, way;

	for (i = 0; i < GROUP_PAGES; i++) {
		touch(p, i);
		for (way = 0; way < 2; way++) {
			memset(vec, 0, sizeof(vec));
			if (way == 0) {
				mw_init(&arg, p, GROUP_PAGES * pagesize, vec,
					GROUP_PAGES);
				arg.category_mask = cat;
				arg.return_mask = cat;
				ret = process_memwatch(pidfd, &arg, sizeof(arg),
						       0);
			} else if (cat == WR) {
				ret = pm_scan(p, GROUP_PAGES * pagesize, WR, 0,
					      vec, GROUP_PAGES);
			} else {
				continue;
			}
			ASSERT_EQ(1, ret) {
				TH_LOG("%s, page %d, %s: %ld",
				       cat == SD ? "soft-dirty" : "written", i,
				       way ? "PAGEMAP_SCAN" : "process_memwatch",
				       ret);
			}
			EXPECT_EQ(PG(p, i), vec[0].start);
			EXPECT_EQ(PG(p, i + 1), vec[0].end);
		}
		/* Re-arm the page, and only it */
		mw_init(&arg, p, GROUP_PAGES * pagesize, vec, GROUP_PAGES);
		arg.category_mask = cat;
		arg.return_mask = cat;
		ASSERT_EQ(1, process_memwatch(pidfd, &arg, sizeof(arg), flags));
		ASSERT_EQ(0, process_memwatch(pidfd, &arg, sizeof(arg), 0));
	}
}

TEST_F(memwatch, group_every_offset)
{
	size_t len = GROUP_PAGES * pagesize;
	struct memwatch_arg arg;
	char *p;
	int uffd;

	p = map_guarded(GROUP_PAGES);
	madvise(p, len, MADV_NOHUGEPAGE);
	memset(p, 1, len);
	mw_init(&arg, p, len, NULL, 0);
	ASSERT_EQ(0, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY));
	__group_offsets(_metadata, self->pidfd, p, SD);
	unmap_guarded(p, GROUP_PAGES);

	p = map_guarded(GROUP_PAGES);
	madvise(p, len, MADV_NOHUGEPAGE);
	memset(p, 1, len);
	uffd = uffd_wp_async(p, len, false, true);
	if (uffd < 0) {
		unmap_guarded(p, GROUP_PAGES);
		SKIP(return, "no async uffd-wp: %s", strerror(errno));
	}
	__group_offsets(_metadata, self->pidfd, p, WR);
	close(uffd);
	unmap_guarded(p, GROUP_PAGES);
}

/*
 * From a hit, the walk tests the next three quarters of a group one by one,
 * then whole groups, and picks the entry that hits from the folds: two
 * written pages at every distance of each other from every offset of a
 * range longer than three groups, in ranges that end a few entries after
 * the second (the last entries of a table are tested one by one) or a
 * group and a few after it, must be reported alone, and re-armed.
 */
#define GAP_PAGES	52

static void __gaps(struct __test_metadata *_metadata, int pidfd, char *p,
		   uint64_t cat)
{
	unsigned int flags = cat == SD ? MEMWATCH_CLEAR_SOFT_DIRTY :
					 MEMWATCH_WP_MATCHING;
	struct page_region vec[4];
	struct memwatch_arg arg;
	size_t x, y, len;
	long ret, want;
	int way;

	for (x = 0; x < GAP_PAGES; x++) {
		for (y = x + 1; y < GAP_PAGES; y++) {
			len = y + 1 + x % 5 + (x % 2 ? 0 : 16);
			if (len > GAP_PAGES)
				len = GAP_PAGES;
			len *= pagesize;
			want = y == x + 1 ? 1 : 2;
			touch(p, x);
			touch(p, y);
			for (way = 0; way < 2; way++) {
				memset(vec, 0, sizeof(vec));
				if (way == 0) {
					mw_init(&arg, p, len, vec, 4);
					arg.category_mask = cat;
					arg.return_mask = cat;
					ret = process_memwatch(pidfd, &arg,
							       sizeof(arg), 0);
				} else if (cat == WR) {
					ret = pm_scan(p, len, WR, 0, vec, 4);
				} else {
					continue;
				}
				ASSERT_EQ(want, ret) {
					TH_LOG("%s, pages %zu and %zu, %s",
					       cat == SD ? "soft-dirty" :
							   "written", x, y,
					       way ? "PAGEMAP_SCAN" :
						     "process_memwatch");
				}
				EXPECT_EQ(PG(p, x), vec[0].start);
				EXPECT_EQ(PG(p, want == 1 ? y + 1 : x + 1),
					  vec[0].end);
				if (want == 2) {
					EXPECT_EQ(PG(p, y), vec[1].start);
					EXPECT_EQ(PG(p, y + 1), vec[1].end);
				}
			}
			/* Re-arm the two pages, and only them */
			mw_init(&arg, p, GAP_PAGES * pagesize, vec, 4);
			arg.category_mask = cat;
			arg.return_mask = cat;
			ASSERT_EQ(want, process_memwatch(pidfd, &arg,
							 sizeof(arg), flags));
			ASSERT_EQ(0, process_memwatch(pidfd, &arg,
						      sizeof(arg), 0));
		}
	}
}

TEST_F(memwatch, skip_every_gap)
{
	size_t len = GAP_PAGES * pagesize;
	struct memwatch_arg arg;
	char *p;
	int uffd;

	p = map_guarded(GAP_PAGES);
	madvise(p, len, MADV_NOHUGEPAGE);
	memset(p, 1, len);
	mw_init(&arg, p, len, NULL, 0);
	ASSERT_EQ(0, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY));
	__gaps(_metadata, self->pidfd, p, SD);
	unmap_guarded(p, GAP_PAGES);

	p = map_guarded(GAP_PAGES);
	madvise(p, len, MADV_NOHUGEPAGE);
	memset(p, 1, len);
	uffd = uffd_wp_async(p, len, false, true);
	if (uffd < 0) {
		unmap_guarded(p, GAP_PAGES);
		SKIP(return, "no async uffd-wp: %s", strerror(errno));
	}
	__gaps(_metadata, self->pidfd, p, WR);
	close(uffd);
	unmap_guarded(p, GAP_PAGES);
}

/*
 * Runs of written pages, which the engine extends a region over without
 * testing each entry for the masks, starting and ending at every offset of
 * a group and one across a page table boundary, resumed at walk_end with
 * max_pages and vec_len cutting them anywhere: every call must report its
 * pages in maximal regions and re-arm exactly them, through process_memwatch
 * (soft-dirty, and written with MEMWATCH_WP_MATCHING) and PAGEMAP_SCAN.
 */
#define RUN_PAGES	192

enum run_iface { RUN_MW_SD, RUN_MW_WR, RUN_PM_WR };

static long __run_call(int pidfd, enum run_iface how, uint64_t start,
		       uint64_t end, struct page_region *vec, size_t vec_len,
		       uint64_t max_pages, uint64_t *walk_end)
{
	struct pm_scan_arg pm = {
		.size = sizeof(pm), .flags = PM_SCAN_WP_MATCHING,
		.start = start, .end = end, .vec = (uintptr_t)vec,
		.vec_len = vec_len, .max_pages = max_pages,
		.category_mask = WR, .return_mask = WR,
	};
	struct memwatch_arg arg;
	long ret;
	int fd;

	if (how == RUN_PM_WR) {
		fd = open("/proc/self/pagemap", O_RDONLY);
		if (fd < 0)
			return -1;
		ret = ioctl(fd, PAGEMAP_SCAN, &pm);
		close(fd);
		*walk_end = pm.walk_end;
		return ret;
	}
	mw_init(&arg, (void *)(uintptr_t)start, end - start, vec, vec_len);
	arg.max_pages = max_pages;
	if (how == RUN_MW_WR) {
		arg.category_mask = WR;
		arg.return_mask = WR;
	}
	ret = process_memwatch(pidfd, &arg, sizeof(arg),
			       how == RUN_MW_SD ? MEMWATCH_CLEAR_SOFT_DIRTY :
						  MEMWATCH_WP_MATCHING);
	*walk_end = arg.walk_end;
	return ret;
}

static void __runs(struct __test_metadata *_metadata, int pidfd, char *p,
		   const char *want, enum run_iface how)
{
	static const struct { size_t vec_len; uint64_t max_pages; } cfg[] = {
		{ 64, 0 }, { 1, 0 }, { 2, 0 }, { 64, 1 }, { 64, 3 }, { 64, 7 },
		{ 64, 8 }, { 64, 9 }, { 64, 13 }, { 3, 5 },
	};
	uint64_t cat = how == RUN_MW_SD ? SD : WR, base = (uintptr_t)p;
	uint64_t pos, end = PG(p, RUN_PAGES), walk_end, a, pages;
	struct page_region vec[64], now[RUN_PAGES];
	char seen[RUN_PAGES], left[RUN_PAGES];
	struct memwatch_arg arg;
	size_t c, i, j;
	long ret;

	for (c = 0; c < ARRAY_SIZE(cfg); c++) {
		/* Re-arm all, then write the pattern */
		ASSERT_LE(0, __run_call(pidfd, how, base, end, NULL, 0, 0,
					&walk_end));
		for (i = 0; i < RUN_PAGES; i++)
			if (want[i])
				touch(p, i);
		memset(seen, 0, sizeof(seen));
		for (pos = base; pos < end; pos = walk_end) {
			ret = __run_call(pidfd, how, pos, end, vec,
					 cfg[c].vec_len, cfg[c].max_pages,
					 &walk_end);
			ASSERT_LE(0, ret);
			ASSERT_LE(ret, cfg[c].vec_len);
			ASSERT_LT(pos, walk_end);
			ASSERT_LE(walk_end, end);
			for (i = 0, pages = 0; i < (size_t)ret; i++) {
				ASSERT_EQ(cat, vec[i].categories);
				ASSERT_LT(vec[i].start, vec[i].end);
				ASSERT_LE(pos, vec[i].start);
				ASSERT_LE(vec[i].end, walk_end);
				/* Regions are maximal: never adjacent */
				if (i)
					ASSERT_LT(vec[i - 1].end, vec[i].start);
				for (a = vec[i].start; a < vec[i].end;
				     a += pagesize, pages++) {
					j = (a - base) / pagesize;
					ASSERT_TRUE(want[j] && !seen[j]) {
						TH_LOG("cfg %zu, page %zu", c, j);
					}
					seen[j] = 1;
				}
			}
			if (cfg[c].max_pages)
				ASSERT_LE(pages, cfg[c].max_pages);
			/* Nothing wanted and unseen before walk_end */
			for (a = pos; a < walk_end; a += pagesize) {
				j = (a - base) / pagesize;
				ASSERT_FALSE(want[j] && !seen[j]) {
					TH_LOG("cfg %zu: page %zu skipped", c,
					       j);
				}
			}
			/* The call re-armed exactly what it reported */
			mw_init(&arg, p, RUN_PAGES * pagesize, now, RUN_PAGES);
			arg.category_mask = cat;
			arg.return_mask = cat;
			ret = process_memwatch(pidfd, &arg, sizeof(arg), 0);
			ASSERT_LE(0, ret);
			memset(left, 0, sizeof(left));
			for (i = 0; i < (size_t)ret; i++)
				for (a = now[i].start; a < now[i].end;
				     a += pagesize)
					left[(a - base) / pagesize] = 1;
			for (j = 0; j < RUN_PAGES; j++) {
				ASSERT_EQ(want[j] && !seen[j], left[j]) {
					TH_LOG("cfg %zu: page %zu", c, j);
				}
			}
		}
		for (j = 0; j < RUN_PAGES; j++)
			ASSERT_EQ(want[j], seen[j]);
	}
}

TEST_F(memwatch, runs_every_bound)
{
	size_t pmd = read_pmd_pagesize(), len, i, run, gap;
	char want[RUN_PAGES] = { 0 };
	char *raw, *p;
	int uffd;

	if (!pmd)
		SKIP(return, "no THP here to give the page table span");
	len = RUN_PAGES * pagesize + pmd;

	/* Runs of 1 to 17 pages between gaps of 1 to 3 */
	for (i = 0, run = 1, gap = 1; i < RUN_PAGES; gap = gap % 3 + 1) {
		memset(want + i, 1, run < RUN_PAGES - i ? run : RUN_PAGES - i);
		i += run + gap;
		run = run % 17 + 1;
	}
	/* and one across the page table boundary in the middle */
	memset(want + RUN_PAGES / 2 - 11, 1, 23);

	raw = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, raw);
	ASSERT_EQ(0, madvise(raw, len, MADV_NOHUGEPAGE));
	p = (char *)(((uintptr_t)raw + RUN_PAGES / 2 * pagesize + pmd - 1) &
		     ~(pmd - 1)) - RUN_PAGES / 2 * pagesize;
	memset(p, 1, RUN_PAGES * pagesize);
	__runs(_metadata, self->pidfd, p, want, RUN_MW_SD);

	uffd = uffd_wp_async(p, RUN_PAGES * pagesize, false, true);
	if (uffd < 0) {
		munmap(raw, len);
		SKIP(return, "no async uffd-wp: %s", strerror(errno));
	}
	__runs(_metadata, self->pidfd, p, want, RUN_MW_WR);
	__runs(_metadata, self->pidfd, p, want, RUN_PM_WR);
	close(uffd);
	munmap(raw, len);
}

/*
 * The loop for the usual masks reports present pages itself, skips the
 * entries that cannot match and leaves the others to the general code. In
 * an async uffd-wp range, one page table holds written (w) and protected
 * (p) present pages, markers (m: empty when the range was protected, as an
 * anonymous zap leaves none), empty entries (e: written, then zapped) and
 * swapped pages, written (W) and protected
 * (P), each after present ones: process_memwatch and PAGEMAP_SCAN report
 * written exactly w, e and W, and MEMWATCH_WP_MATCHING re-arms them all.
 * Without swap, W and P stay present.
 */
TEST_F(memwatch, written_entry_kinds)
{
	static const char kinds[] = "wpmwWwePwmwPpeWw";
	char want[NPAGES + 1] = "", map[NPAGES];
	struct page_region vec[NPAGES];
	char *a = self->addr;
	bool swap = have_swap();
	long ret, r;
	uint64_t x;
	size_t i;
	int uffd;

	ASSERT_EQ(NPAGES, strlen(kinds));
	for (i = 0; i < NPAGES; i++)
		if (kinds[i] == 'm')
			ASSERT_EQ(0, madvise(a + i * pagesize, pagesize,
					     MADV_DONTNEED));
	uffd = uffd_wp_async(a, NPAGES * pagesize, false, true);
	if (uffd < 0)
		SKIP(return, "no async uffd-wp: %s", strerror(errno));
	for (i = 0; i < NPAGES; i++)
		if (kinds[i] == 'W')
			touch(a, i);
	for (i = 0; swap && i < NPAGES; i++) {
		if (kinds[i] != 'W' && kinds[i] != 'P')
			continue;
		if (swap_out(self->pidfd, a + i * pagesize, 1) != 1) {
			TH_LOG("page %zu not swapped out: W and P stay present",
			       i);
			swap = false;
		}
	}
	for (i = 0; i < NPAGES; i++) {
		if (kinds[i] == 'w' || kinds[i] == 'e')
			touch(a, i);
		if (kinds[i] == 'e')
			ASSERT_EQ(0, madvise(a + i * pagesize, pagesize,
					     MADV_DONTNEED));
		want[i] = kinds[i] == 'w' || kinds[i] == 'e' ||
			  kinds[i] == 'W' ? '1' : '0';
	}
	wr_expect(a, 0, want);

	ret = pm_scan(a, NPAGES * pagesize, WR, 0, vec, NPAGES);
	ASSERT_LE(0, ret);
	memset(map, '0', sizeof(map));
	for (r = 0; r < ret; r++)
		for (x = vec[r].start; x < vec[r].end; x += pagesize)
			map[(x - (uintptr_t)a) / pagesize] = '1';
	ASSERT_EQ(0, memcmp(want, map, NPAGES)) {
		TH_LOG("PAGEMAP_SCAN reported %.*s, wanted %s (swap %d)",
		       NPAGES, map, want, swap);
	}
	wr_expect(a, MEMWATCH_WP_MATCHING, want);
	wr_expect(a, 0, "0000000000000000");
	for (i = 0; i < NPAGES; i++) {
		if (kinds[i] == 'm' || kinds[i] == 'e')
			continue;
		EXPECT_EQ(1, pm_uffd_wp(a, i)) {
			TH_LOG("page %zu (%c) not protected", i, kinds[i]);
		}
	}
	close(uffd);
}

/*
 * A call that re-arms pages flushes them from every TLB before it returns.
 * A thread on another CPU writes the pages of a pattern, so that its TLB
 * holds them writable, and waits without touching them; the monitor
 * re-arms them in calls of vec_len regions at most, which must report the
 * pattern; the thread then writes every page, and every page must be
 * reported. A page the flush missed is written through the old TLB entry,
 * without the fault that tracks it. The patterns cover three page tables:
 * every page, one in two, one in ten, single pages and runs at and across
 * the table boundaries (the first change of a table then extends the
 * region of the one before), runs of seven.
 */
struct tlb_writer {
	char *p;
	const char *want;
	size_t npages;
	int seq, done, cpu;
};

static void *tlb_writer(void *data)
{
	struct tlb_writer *t = data;
	int seq = 0, s;
	size_t i;

	pin_to_cpu(t->cpu);
	for (;;) {
		s = __atomic_load_n(&t->seq, __ATOMIC_ACQUIRE);
		if (s < 0)
			return NULL;
		if (s == seq)
			continue;
		for (i = 0; i < t->npages; i++)
			if (t->want[i])
				touch(t->p, i);
		seq = s;
		__atomic_store_n(&t->done, s, __ATOMIC_RELEASE);
	}
}

/* Have the writer write the pages of @want, and wait until it has */
static void tlb_write(struct tlb_writer *t, const char *want)
{
	int s = t->seq + 1;

	t->want = want;
	__atomic_store_n(&t->seq, s, __ATOMIC_RELEASE);
	while (__atomic_load_n(&t->done, __ATOMIC_ACQUIRE) != s)
		;
}

static bool tlb_pattern(int k, size_t i, size_t tbl)
{
	switch (k) {
	case 0:
		return true;
	case 1:
		return i % 2 == 0;
	case 2:
		return i % 10 == 3;
	case 3:
		return i % tbl == 0 || i % tbl == tbl - 1;
	case 4:
		return (i + 4) % tbl < 8 || (i + 9) % tbl < 3;
	default:
		return (i / 7) % 3 == 0;
	}
}

/* Report and re-arm the @npages pages at @p by @how, @vec_len at a time */
static void __tlb_scan(struct __test_metadata *_metadata, int pidfd,
		       enum run_iface how, char *p, size_t npages,
		       size_t vec_len, char *map)
{
	uint64_t base = (uintptr_t)p, end = PG(p, npages), pos, walk_end, a;
	struct page_region vec[64];
	long ret, i;

	memset(map, 0, npages);
	for (pos = base; pos < end; pos = walk_end) {
		ret = __run_call(pidfd, how, pos, end, vec, vec_len, 0,
				 &walk_end);
		ASSERT_LE(0, ret);
		ASSERT_LT(pos, walk_end);
		for (i = 0; i < ret; i++)
			for (a = vec[i].start; a < vec[i].end; a += pagesize)
				map[(a - base) / pagesize] = 1;
	}
}

#define TLB_CASE	"interface %zu, pattern %d, vec_len %zu"

TEST_F_TIMEOUT(memwatch, tlb_flushed_every_pattern, 120)
{
	static const size_t vec_lens[] = { 1, 3, 64 };
	static const enum run_iface ifaces[] = {
		RUN_MW_SD, RUN_MW_WR, RUN_PM_WR,
	};
	size_t pmd = read_pmd_pagesize(), tbl, npages, len, i, v, f;
	struct tlb_writer t = { 0 };
	char *raw, *p, *want, *all, *map;
	pthread_t thread;
	int k, uffd = -1;

	t.cpu = other_cpu();
	if (t.cpu < 0)
		SKIP(return, "one CPU: no other TLB to flush");
	if (!pmd)
		SKIP(return, "no THP here to give the page table span");
	tbl = pmd / pagesize;
	npages = 3 * tbl;
	len = npages * pagesize;
	raw = mmap(NULL, len + pmd, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, raw);
	ASSERT_EQ(0, madvise(raw, len + pmd, MADV_NOHUGEPAGE));
	p = (char *)(((uintptr_t)raw + pmd - 1) & ~(pmd - 1));
	memset(p, 1, len);
	want = malloc(npages);
	all = malloc(npages);
	map = malloc(npages);
	ASSERT_TRUE(want && all && map);
	memset(all, 1, npages);

	pin_to_cpu(0);
	t.p = p;
	t.npages = npages;
	t.want = all;
	ASSERT_EQ(0, pthread_create(&thread, NULL, tlb_writer, &t));
	for (f = 0; f < ARRAY_SIZE(ifaces); f++) {
		if (ifaces[f] != RUN_MW_SD && uffd < 0) {
			uffd = uffd_wp_async(p, len, false, true);
			if (uffd < 0) {
				TH_LOG("no async uffd-wp: %s", strerror(errno));
				break;
			}
		}
		for (k = 0; k < 6; k++) {
			for (i = 0; i < npages; i++)
				want[i] = tlb_pattern(k, i, tbl);
			for (v = 0; v < ARRAY_SIZE(vec_lens); v++) {
				__tlb_scan(_metadata, self->pidfd, ifaces[f],
					   p, npages, 64, map);
				tlb_write(&t, want);
				__tlb_scan(_metadata, self->pidfd, ifaces[f],
					   p, npages, vec_lens[v], map);
				ASSERT_EQ(0, memcmp(want, map, npages)) {
					TH_LOG(TLB_CASE ": not the pages written",
					       f, k, vec_lens[v]);
				}
				tlb_write(&t, all);
				__tlb_scan(_metadata, self->pidfd,
					   ifaces[f] == RUN_MW_SD ? RUN_MW_SD :
								    RUN_MW_WR,
					   p, npages, 64, map);
				for (i = 0; i < npages; i++) {
					ASSERT_EQ(1, map[i]) {
						TH_LOG(TLB_CASE ": page %zu not reported",
						       f, k, vec_lens[v], i);
					}
				}
			}
		}
	}
	__atomic_store_n(&t.seq, -1, __ATOMIC_RELEASE);
	pthread_join(thread, NULL);
	if (uffd >= 0)
		close(uffd);
	munmap(raw, len + pmd);
	free(want);
	free(all);
	free(map);
}

/*
 * Page tables far apart: in a 1 GiB-aligned MAP_NORESERVE range, one page
 * written under each of a set of PMD entries at every position of a cache
 * line of entries, with the empty entries between (that the page walker
 * steps over a group at a time) and ranges that start and end inside the
 * groups: each scan reports exactly the written pages of its range.
 */
TEST_F(memwatch, sparse_pmd_entries)
{
	static const unsigned int idx[] = {
		0, 7, 8, 9, 15, 16, 17, 23, 31, 32, 63, 64, 100, 255, 256,
		263, 264, 500, 510, 511,
	};
	size_t pmd = read_pmd_pagesize(), span = 512 * pmd, i, n;
	const uint64_t starts[] = { 0, pagesize, 3 * pmd + 5 * pagesize, 8 * pmd,
			      9 * pmd - pagesize, 250 * pmd };
	const uint64_t ends[] = { span, span - pmd, 264 * pmd, 17 * pmd + pagesize,
			    509 * pmd };
	struct page_region vec[ARRAY_SIZE(idx) + 1];
	struct memwatch_arg arg;
	char *raw, *p;
	int s, e, way;
	long ret;

	if (!pmd)
		SKIP(return, "no THP here to give the page table span");
	raw = mmap(NULL, 2 * span, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED && sizeof(long) == 4)
		SKIP(return, "no room for %zu MiB here", 2 * span >> 20);
	ASSERT_NE(MAP_FAILED, raw);
	ASSERT_EQ(0, madvise(raw, 2 * span, MADV_NOHUGEPAGE));
	p = (char *)(((uintptr_t)raw + span - 1) & ~(span - 1));
	for (i = 0; i < ARRAY_SIZE(idx); i++)
		p[idx[i] * pmd + (i % 3) * pagesize] = 1;
	mw_init(&arg, p, span, NULL, 0);
	ASSERT_EQ(0, process_memwatch(self->pidfd, &arg, sizeof(arg),
				      MEMWATCH_CLEAR_SOFT_DIRTY));
	for (i = 0; i < ARRAY_SIZE(idx); i++)
		p[idx[i] * pmd + (i % 3) * pagesize] = 2;

	for (s = 0; s < (int)ARRAY_SIZE(starts); s++) {
		for (e = 0; e < (int)ARRAY_SIZE(ends); e++) {
			uint64_t lo = starts[s] & ~(pagesize - 1);
			uint64_t hi = ends[e];

			if (lo >= hi)
				continue;
			for (way = 0; way < 2; way++) {
				memset(vec, 0, sizeof(vec));
				if (way) {
					ret = pm_scan(p + lo, hi - lo, SD, 0,
						      vec, ARRAY_SIZE(vec));
				} else {
					mw_init(&arg, p + lo, hi - lo, vec,
						ARRAY_SIZE(vec));
					ret = process_memwatch(self->pidfd,
							       &arg,
							       sizeof(arg), 0);
				}
				for (i = 0, n = 0; i < ARRAY_SIZE(idx); i++) {
					uint64_t a = idx[i] * pmd +
						     (i % 3) * pagesize;

					if (a < lo || a >= hi)
						continue;
					ASSERT_LT(n, (size_t)ret) {
						TH_LOG("%s [%#lx, %#lx): page under PMD %u missed",
						       way ? "PAGEMAP_SCAN" :
							     "process_memwatch",
						       (unsigned long)lo,
						       (unsigned long)hi,
						       idx[i]);
					}
					EXPECT_EQ(PG(p + a, 0), vec[n].start);
					EXPECT_EQ(PG(p + a, 1), vec[n].end);
					n++;
				}
				EXPECT_EQ(n, (size_t)ret);
			}
		}
	}
	ASSERT_EQ(0, munmap(raw, 2 * span));
}

/* ---- Migration entries: what clear_refs and write protection leave ---- */

struct wp_spinner {
	char *p;
	size_t len;
	char *hit;		/* pages reported, one byte each */
	int pidfd;		/* process_memwatch() if >= 0, else PAGEMAP_SCAN */
	int pagemap, kpageflags;	/* fds, kpageflags -1 if unreadable */
	unsigned long caught;	/* sd_clear_spin(): migration entries seen */
	bool split;		/* wp_spin(): split the PMD after a report */
	int stop;
};

/*
 * Whether the THP at s->p is still one: its first page is part of a THP
 * in /proc/kpageflags (true when that cannot be read)
 */
static bool thp_whole(struct wp_spinner *s)
{
	unsigned long pfn = pagemap_get_pfn(s->pagemap, s->p);
	uint64_t flags;

	if (s->kpageflags < 0 || pfn == -1UL ||
	    pread(s->kpageflags, &flags, sizeof(flags),
		  pfn * sizeof(flags)) != sizeof(flags))
		return true;
	return flags & (1ULL << KPF_THP);
}

/*
 * Clear soft-dirty with clear_refs over and over, until the THP at s->p
 * is split: a pass after the split would write-protect a page that the
 * split left writable and clean, and hide the write it lost
 */
static void *clear_refs_spin(void *data)
{
	struct wp_spinner *s = data;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		clear_softdirty();
		if (!thp_whole(s))
			break;
	}
	return NULL;
}

/* Write the pages of s->p over and over, so that they stay writable */
static void *write_spin(void *data)
{
	struct wp_spinner *s = data;
	size_t i = 0;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		touch(s->p, i);
		i = (i + 1) % (s->len / pagesize);
	}
	return NULL;
}

/*
 * Write-protect the written swap and migration entries of s->p, over and
 * over, and note the pages reported: present pages do not match.
 */
static void *wp_spin(void *data)
{
	const uint64_t mask = WR | PAGE_IS_SWAPPED;
	struct wp_spinner *s = data;
	struct memwatch_arg arg;
	struct page_region vec[64];
	uintptr_t a;
	long ret, r;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		if (s->pidfd >= 0) {
			mw_init(&arg, s->p, s->len, vec, ARRAY_SIZE(vec));
			arg.category_mask = mask;
			arg.return_mask = mask;
			ret = process_memwatch(s->pidfd, &arg, sizeof(arg),
					       MEMWATCH_WP_MATCHING);
		} else {
			ret = pm_scan(s->p, s->len, mask, PM_SCAN_WP_MATCHING,
				      vec, ARRAY_SIZE(vec));
		}
		for (r = 0; r < ret; r++)
			for (a = vec[r].start; a < vec[r].end; a += pagesize)
				s->hit[(a - (uintptr_t)s->p) / pagesize] = 1;
		/* Zapping its last page splits a PMD migration entry */
		if (ret > 0 && s->split) {
			madvise(s->p + s->len - pagesize, pagesize,
				MADV_DONTNEED);
			s->split = false;
		}
	}
	return NULL;
}

/* The NUMA node of the page at p, or -errno */
static int page_node(char *p)
{
	void *page = p;
	int status = -1;

	if (syscall(__NR_move_pages, 0, 1, &page, NULL, &status, 0))
		return -errno;
	return status;
}

/* Move the page (the THP) at p to node: its new node, or -errno */
static int page_move(char *p, int node)
{
	void *page = p;
	int status = -1;

	if (syscall(__NR_move_pages, 0, 1, &page, &node, &status,
		    MPOL_MF_MOVE))
		return -errno;
	return status;
}

/*
 * Clear soft-dirty over and over with process_memwatch() on the swapped
 * pages of s->p, which only a migration entry is, and count the calls
 * that met one
 */
static void *sd_clear_spin(void *data)
{
	struct wp_spinner *s = data;
	struct memwatch_arg arg;
	struct page_region vec[8];

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		mw_init(&arg, s->p, s->len, vec, ARRAY_SIZE(vec));
		arg.category_mask = PAGE_IS_SWAPPED;
		arg.return_mask = PAGE_IS_SWAPPED;
		if (process_memwatch(s->pidfd, &arg, sizeof(arg),
				     MEMWATCH_CLEAR_SOFT_DIRTY) > 0)
			s->caught++;
	}
	return NULL;
}

/*
 * Of the first npages pages of s->p, those that wp_spin() reported must
 * still be uffd-wp: count them in *caught, and return 1 (after logging
 * it) at the first that is not, else 0
 */
static int wp_hits_lost(struct __test_metadata *_metadata,
			struct wp_spinner *s, size_t npages, int round,
			unsigned long *caught)
{
	size_t i;

	for (i = 0; i < npages; i++) {
		if (!s->hit[i])
			continue;
		(*caught)++;
		if (pm_uffd_wp(s->p, i) != 1) {
			TH_LOG("round %d, %s: page %zu lost uffd-wp", round,
			       s->pidfd >= 0 ? "process_memwatch" :
			       "PAGEMAP_SCAN", i);
			return 1;
		}
	}
	return 0;
}

/* Stop the threads of a round, and wait for them */
static void spin_stop(struct wp_spinner *s, pthread_t *threads, int n)
{
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	while (n--)
		pthread_join(threads[n], NULL);
}

/*
 * A writable migration entry that clear_refs cleans must become read-only,
 * as change_pte_range() makes it for mprotect(): when the migration ends,
 * remove_migration_pte() maps a writable entry's page writable, and a page
 * that is writable and clean takes no fault on its next write, which is
 * never seen. clear_refs holds the mmap lock for write, so the migration
 * must not need it: a THP with one page zapped waits on the deferred split
 * queue, and dropping the slab caches splits it, through a migration entry
 * for each of its pages, while one thread writes its pages (so that the
 * entries are writable) and another clears soft-dirty until the split is
 * over. Then every page is written, and every page must read soft-dirty.
 * Up to 64 rounds, for at most 10 s.
 */
TEST_F_TIMEOUT(memwatch, clear_refs_migration_entry, 90)
{
	size_t pmd = read_pmd_pagesize(), n, i;
	struct wp_spinner s = { .kpageflags = -1 };
	int round, split = 0, lost = 0;
	pthread_t threads[2];
	uint64_t deadline;

	if (!pmd || !thp_available())
		SKIP(return, "no THP");
	if (access("/proc/sys/vm/drop_caches", W_OK))
		SKIP(return, "no drop_caches");
	n = pmd / pagesize;
	s.pagemap = open("/proc/self/pagemap", O_RDONLY);
	ASSERT_LE(0, s.pagemap);
	s.kpageflags = open("/proc/kpageflags", O_RDONLY);
	deadline = now_ns() + 10000000000ULL;
	for (round = 0; round < 64 && now_ns() < deadline && !lost; round++) {
		s.p = thp_fresh(pmd);
		if (!s.p)
			break;
		s.len = pmd - pagesize;
		EXPECT_EQ(0, madvise(s.p + s.len, pagesize, MADV_DONTNEED));
		__atomic_store_n(&s.stop, 0, __ATOMIC_RELEASE);
		if (pthread_create(&threads[0], NULL, write_spin, &s)) {
			munmap(s.p, pmd);
			break;
		}
		if (pthread_create(&threads[1], NULL, clear_refs_spin, &s)) {
			spin_stop(&s, threads, 1);
			munmap(s.p, pmd);
			break;
		}
		usleep(1000);
		EXPECT_EQ(0, write_file_str("/proc/sys/vm/drop_caches", "2"));
		spin_stop(&s, threads, 2);
		split += !thp_whole(&s);
		for (i = 0; i < n - 1; i++)
			touch(s.p, i);
		for (i = 0; i < n - 1 && !lost; i++) {
			if (!pagemap_is_softdirty(s.pagemap,
						  s.p + i * pagesize)) {
				TH_LOG("round %d: write to page %zu lost",
				       round, i);
				lost++;
			}
		}
		munmap(s.p, pmd);
	}
	if (s.kpageflags >= 0)
		close(s.kpageflags);
	close(s.pagemap);
	TH_LOG("%d rounds, %d THPs split", round, split);
	EXPECT_EQ(0, lost);
	/* Not over a failure */
	if (!round && _metadata->exit_code == KSFT_PASS)
		SKIP(return, "no THP to split");
}

/*
 * A writable migration entry that PAGEMAP_SCAN write-protects must become
 * read-only, as change_pte_range() makes it for UFFDIO_WRITEPROTECT: when
 * the migration ends, remove_migration_pte() maps a writable entry's page
 * writable and leaves its uffd-wp bit behind, so the page reads as written
 * although nothing wrote it. MADV_COLD on one page of a written THP splits
 * it, through a migration entry for each of its pages, while another
 * thread write-protects whatever migration entry it meets, through
 * PAGEMAP_SCAN and process_memwatch() in turn; every page it reported must
 * keep its protection. Up to 32 rounds, for at most 10 s.
 */
TEST_F_TIMEOUT(memwatch, pagemap_scan_wp_migration_entry, 90)
{
	size_t pmd = read_pmd_pagesize(), n;
	struct wp_spinner s = { .kpageflags = -1 };
	const char *why = "no THP to split";
	unsigned long caught = 0, lost = 0;
	int round, uffd, split = 0;
	pthread_t thread;
	uint64_t deadline;

	if (!pmd || !thp_available())
		SKIP(return, "no THP");
	n = pmd / pagesize;
	s.hit = calloc(n, 1);
	ASSERT_NE(NULL, s.hit);
	s.pagemap = open("/proc/self/pagemap", O_RDONLY);
	ASSERT_LE(0, s.pagemap);
	s.kpageflags = open("/proc/kpageflags", O_RDONLY);
	deadline = now_ns() + 10000000000ULL;
	for (round = 0; round < 32 && now_ns() < deadline && !lost; round++) {
		s.p = thp_fresh(pmd);
		if (!s.p)
			break;
		s.len = pmd;
		uffd = uffd_wp_async(s.p, pmd, false, false);
		if (uffd < 0) {
			why = "no async uffd-wp";
			munmap(s.p, pmd);
			break;
		}
		why = "no migration entry seen";
		memset(s.hit, 0, n);
		s.pidfd = round % 2 ? self->pidfd : -1;
		__atomic_store_n(&s.stop, 0, __ATOMIC_RELEASE);
		if (pthread_create(&thread, NULL, wp_spin, &s)) {
			close(uffd);
			munmap(s.p, pmd);
			break;
		}
		EXPECT_EQ(0, madvise(s.p, pagesize, MADV_COLD));
		spin_stop(&s, &thread, 1);
		split += !thp_whole(&s);
		lost += wp_hits_lost(_metadata, &s, n, round, &caught);
		close(uffd);
		munmap(s.p, pmd);
	}
	if (s.kpageflags >= 0)
		close(s.kpageflags);
	close(s.pagemap);
	free(s.hit);
	TH_LOG("%d rounds, %d THPs split, %lu migration entries protected",
	       round, split, caught);
	EXPECT_EQ(0, lost);
	/* Not over a failure */
	if (!caught && _metadata->exit_code == KSFT_PASS)
		SKIP(return, "%s", why);
}

/*
 * Set up a round of a PMD migration test: a written THP at s->p, of
 * s->len bytes, on a node that has another: that node, or -1 (and *why
 * says what was missing) to end the test.
 */
static int pmd_move_round(struct wp_spinner *s, size_t pmd, const char **why)
{
	int node;

	s->p = thp_fresh(pmd);
	if (!s->p) {
		*why = "no THP";
		return -1;
	}
	s->len = pmd;
	node = page_node(s->p);
	if (node < 0 || page_move(s->p, !node) != !node) {
		*why = "no second NUMA node to move a THP to";
		munmap(s->p, pmd);
		return -1;
	}
	if (!thp_whole(s)) {
		*why = "move_pages() split the THP";
		munmap(s->p, pmd);
		return -1;
	}
	return !node;
}

/*
 * Soft-dirty clearing of a PMD migration entry, which only a move of the
 * whole THP makes, with move_pages() to the other node (the same
 * clear_soft_dirty_pmd() as clear_refs): a writable entry must become
 * read-only, or the THP comes back writable and clean. The THP is made
 * clean first with MADV_FREE, which leaves it writable: the PMD of a
 * dirty THP comes back dirty, which on x86 sets its soft-dirty bit
 * anyway. So no write, and no clear_refs, which would write-protect the
 * PMD before the move: process_memwatch() on swapped pages only, over and
 * over while the THP moves. Then every page is written, and every page
 * must read soft-dirty. Up to 16 rounds, for at most 10 s.
 */
TEST_F_TIMEOUT(memwatch, clear_soft_dirty_pmd_migration_entry, 90)
{
	struct wp_spinner s = { .kpageflags = -1 };
	size_t pmd = read_pmd_pagesize(), n, i;
	int round, node, moved = 0, lost = 0;
	const char *why = NULL;
	pthread_t thread;
	uint64_t deadline;

	if (!pmd || !thp_available())
		SKIP(return, "no THP");
	node = page_node(self->addr);
	if (node < 0)
		SKIP(return, "no move_pages(): %s", strerror(-node));
	n = pmd / pagesize;
	s.pidfd = self->pidfd;
	s.pagemap = open("/proc/self/pagemap", O_RDONLY);
	ASSERT_LE(0, s.pagemap);
	s.kpageflags = open("/proc/kpageflags", O_RDONLY);
	deadline = now_ns() + 10000000000ULL;
	for (round = 0; round < 16 && now_ns() < deadline && !lost; round++) {
		node = pmd_move_round(&s, pmd, &why);
		if (node < 0)
			break;
		EXPECT_EQ(0, madvise(s.p, pmd, MADV_FREE));
		__atomic_store_n(&s.stop, 0, __ATOMIC_RELEASE);
		if (pthread_create(&thread, NULL, sd_clear_spin, &s)) {
			munmap(s.p, pmd);
			break;
		}
		moved += page_move(s.p, !node) == !node && thp_whole(&s);
		spin_stop(&s, &thread, 1);
		for (i = 0; i < n; i++)
			touch(s.p, i);
		for (i = 0; i < n && !lost; i++) {
			if (!pagemap_is_softdirty(s.pagemap,
						  s.p + i * pagesize)) {
				TH_LOG("round %d: write to page %zu lost",
				       round, i);
				lost++;
			}
		}
		munmap(s.p, pmd);
	}
	if (s.kpageflags >= 0)
		close(s.kpageflags);
	close(s.pagemap);
	TH_LOG("%d rounds, %d THPs moved whole, %lu migration entries cleared",
	       round, moved, s.caught);
	EXPECT_EQ(0, lost);
	/* Not over a failure */
	if (!s.caught && _metadata->exit_code == KSFT_PASS)
		SKIP(return, "%s", why ?: "no migration entry seen");
}

/*
 * pagemap_scan_wp_migration_entry for a PMD migration entry: a thread
 * write-protects whatever migration entry it meets while move_pages()
 * moves a written THP to the other node, and zaps the THP's last page as
 * soon as it reported one, which splits the PMD migration entry into PTE
 * migration entries with its write and uffd-wp bits (restoring a PMD
 * itself, x86 write-protects it with the uffd-wp bit). Every page it
 * reported must keep its protection. Up to 8 rounds, for at most 10 s.
 */
TEST_F_TIMEOUT(memwatch, wp_pmd_migration_entry, 90)
{
	struct wp_spinner s = { .kpageflags = -1 };
	size_t pmd = read_pmd_pagesize(), n;
	unsigned long caught = 0, lost = 0;
	int round, node, uffd, moved = 0;
	const char *why = NULL;
	pthread_t thread;
	uint64_t deadline;

	if (!pmd || !thp_available())
		SKIP(return, "no THP");
	node = page_node(self->addr);
	if (node < 0)
		SKIP(return, "no move_pages(): %s", strerror(-node));
	n = pmd / pagesize;
	s.hit = calloc(n, 1);
	ASSERT_NE(NULL, s.hit);
	s.pagemap = open("/proc/self/pagemap", O_RDONLY);
	ASSERT_LE(0, s.pagemap);
	s.kpageflags = open("/proc/kpageflags", O_RDONLY);
	deadline = now_ns() + 10000000000ULL;
	for (round = 0; round < 8 && now_ns() < deadline && !lost; round++) {
		node = pmd_move_round(&s, pmd, &why);
		if (node < 0)
			break;
		uffd = uffd_wp_async(s.p, pmd, false, false);
		if (uffd < 0) {
			why = "no async uffd-wp";
			munmap(s.p, pmd);
			break;
		}
		why = "no migration entry seen";
		memset(s.hit, 0, n);
		s.pidfd = round % 2 ? self->pidfd : -1;
		s.split = true;
		__atomic_store_n(&s.stop, 0, __ATOMIC_RELEASE);
		if (pthread_create(&thread, NULL, wp_spin, &s)) {
			close(uffd);
			munmap(s.p, pmd);
			break;
		}
		moved += page_move(s.p, !node) == !node;
		spin_stop(&s, &thread, 1);
		/* The last page may be zapped: it reads as written then */
		lost += wp_hits_lost(_metadata, &s, n - 1, round, &caught);
		close(uffd);
		munmap(s.p, pmd);
	}
	if (s.kpageflags >= 0)
		close(s.kpageflags);
	close(s.pagemap);
	free(s.hit);
	TH_LOG("%d rounds, %d THPs moved, %lu migration entries protected",
	       round, moved, caught);
	EXPECT_EQ(0, lost);
	/* Not over a failure */
	if (!caught && _metadata->exit_code == KSFT_PASS)
		SKIP(return, "%s", why ?: "no migration entry seen");
}

/* ---- Device-private and device-exclusive entries: lib/test_hmm.c ---- */

/* How __dev_entries() cleans or write-protects the device's entries */
enum dev_how {
	DEV_CLEAR_REFS,		/* "4" to /proc/self/clear_refs */
	DEV_MW_CLEAR,		/* process_memwatch(), clearing soft-dirty */
	DEV_PM_WP,		/* PAGEMAP_SCAN with PM_SCAN_WP_MATCHING */
	DEV_MW_WP,		/* process_memwatch(MEMWATCH_WP_MATCHING) */
};

/*
 * Send request to test_hmm's device behind fd (an open /dev/hmm_dmirror0,
 * which mirrors the mm that opened it) for the n pages at p:
 * HMM_DMIRROR_MIGRATE_TO_DEV moves them to the device's memory, leaving
 * device-private entries; HMM_DMIRROR_EXCLUSIVE takes them for atomic
 * access, leaving device-exclusive ones; both copy their data to mirror.
 * HMM_DMIRROR_CHECK_EXCLUSIVE fails with EPERM while the device still
 * maps one of them for atomic access.
 * Return: the pages the device copied, or -errno.
 */
static long dmirror_cmd(int fd, unsigned long request, char *p, size_t n,
			char *mirror)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = (uintptr_t)p,
		.ptr = (uintptr_t)mirror,
		.npages = n,
	};

	while (ioctl(fd, request, &cmd))
		if (errno != EINTR)
			return -errno;
	return cmd.cpages;
}

/* The kernel's taint flags, 0 if unreadable */
static unsigned long kernel_taint(void)
{
	char buf[32];

	if (read_file_str("/proc/sys/kernel/tainted", buf, sizeof(buf)))
		return 0;
	return strtoul(buf, NULL, 10);
}

#define TAINT_WARN	BIT_ULL(9)

/* Clean (or write-protect) the n pages at p as how says: see below */
static long __dev_track(int pidfd, char *p, size_t n, enum dev_how how,
			struct page_region *vec)
{
	struct memwatch_arg arg;

	mw_init(&arg, p, n * pagesize, vec, n);
	switch (how) {
	case DEV_CLEAR_REFS:
		clear_softdirty();
		return 0;
	case DEV_MW_CLEAR:
		arg.return_mask = SD | PAGE_IS_SWAPPED;
		return process_memwatch(pidfd, &arg, sizeof(arg),
					MEMWATCH_CLEAR_SOFT_DIRTY);
	case DEV_PM_WP:
		return pm_scan(p, n * pagesize, WR, PM_SCAN_WP_MATCHING, vec,
			       n);
	case DEV_MW_WP:
		arg.category_mask = WR;
		arg.return_mask = WR | PAGE_IS_SWAPPED;
		return process_memwatch(pidfd, &arg, sizeof(arg),
					MEMWATCH_WP_MATCHING);
	}
	return -1;
}

/*
 * A writable device entry that write tracking cleans or write-protects
 * must become read-only, as mprotect() makes it. The device gives the
 * page of a device-private entry back through a migration entry that is
 * writable if the device-private entry was, and remove_migration_pte()
 * maps the page of a writable one writable, clean but for the entry's
 * soft-dirty bit, and without its uffd-wp bit. The CPU's first access to
 * a device-exclusive entry, a read too, maps its page again
 * (restore_exclusive_pte()): with the entry's uffd-wp bit if it has it,
 * else writable and dirty (hence soft-dirty) if the entry is writable.
 * And no swap entry with uffd-wp may be writable: the kernel warns of
 * one if page_table_check is on, as in the debug kernel.
 *
 * So written pages are handed to the device (exclusive: for atomic
 * access), cleaned or write-protected there by the call under test,
 * which must also take them back from the device's atomic mapping, and
 * read by the CPU, which brings them back: a cleaned page must read
 * clean, and soft-dirty once the CPU writes it, a protected page must
 * still be uffd-wp, and the kernel must not have warned.
 */
static void __dev_entries(struct __test_metadata *_metadata, int pidfd,
			  enum dev_how how, bool exclusive)
{
	unsigned long request = exclusive ? HMM_DMIRROR_EXCLUSIVE :
					    HMM_DMIRROR_MIGRATE_TO_DEV;
	bool wp = how == DEV_PM_WP || how == DEV_MW_WP;
	uint64_t bit = wp ? PM_UFFD_WP : PM_SOFT_DIRTY;
	struct page_region vec[NPAGES];
	size_t len = NPAGES * pagesize, i;
	int fd, pagemap, uffd = -1;
	unsigned long taint;
	uint64_t ent, cats;
	char *p, *mirror;
	int lost = 0;
	long ret;

	fd = open("/dev/hmm_dmirror0", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		SKIP(return, "no /dev/hmm_dmirror0: %s", strerror(errno));
	/* test_hmm has no compat ioctl: a 32-bit program gets ENOTTY */
	if (dmirror_cmd(fd, HMM_DMIRROR_CHECK_EXCLUSIVE, NULL, 0, NULL) ==
	    -ENOTTY) {
		close(fd);
		SKIP(return, "test_hmm's ioctls: %s", strerror(ENOTTY));
	}
	pagemap = open("/proc/self/pagemap", O_RDONLY);
	ASSERT_LE(0, pagemap);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	/* Small pages: the device takes no large folio (fails without THP) */
	madvise(p, len, MADV_NOHUGEPAGE);
	mirror = malloc(len);
	ASSERT_NE(NULL, mirror);
	for (i = 0; i < NPAGES; i++)
		touch(p, i);
	if (wp) {
		uffd = uffd_wp_async(p, len, false, true);
		ASSERT_LE(0, uffd) TH_LOG("async uffd-wp: %s", strerror(errno));
	} else {
		/* Also drops the VMA's VM_SOFTDIRTY, which would mask them */
		ASSERT_LE(0, __dev_track(pidfd, p, NPAGES, how, vec));
	}
	/* Writable again, soft-dirty, not uffd-wp */
	for (i = 0; i < NPAGES; i++)
		touch(p, i);

	ret = dmirror_cmd(fd, request, p, NPAGES, mirror);
	ASSERT_EQ(NPAGES, ret) TH_LOG("%ld: %s", ret,
				      ret < 0 ? strerror(-ret) : "short");
	for (i = 0; i < NPAGES; i++) {
		ent = pagemap_get_entry(pagemap, p + i * pagesize);
		ASSERT_EQ(PM_SWAP, ent & (PM_SWAP | PM_PRESENT))
			TH_LOG("page %zu has no device entry", i);
		ASSERT_EQ(wp ? 0 : bit, ent & bit)
			TH_LOG("page %zu does not read written", i);
	}
	if (exclusive)
		EXPECT_EQ(-EPERM, dmirror_cmd(fd, HMM_DMIRROR_CHECK_EXCLUSIVE,
					      p, NPAGES, NULL));

	taint = kernel_taint();
	ret = __dev_track(pidfd, p, NPAGES, how, vec);
	if (!(taint & TAINT_WARN))
		EXPECT_EQ(0, kernel_taint() & TAINT_WARN)
			TH_LOG("the kernel warned during the call");
	if (how != DEV_CLEAR_REFS) {
		/* One region of every page, all still device entries */
		ASSERT_EQ(1, ret);
		EXPECT_EQ((uintptr_t)p, vec[0].start);
		EXPECT_EQ((uintptr_t)p + len, vec[0].end);
		if (how == DEV_PM_WP)
			cats = WR;	/* pm_scan() returns its category mask */
		else
			cats = (wp ? WR : SD) | PAGE_IS_SWAPPED;
		EXPECT_EQ(cats, vec[0].categories);
	}
	for (i = 0; i < NPAGES; i++) {
		ent = pagemap_get_entry(pagemap, p + i * pagesize);
		EXPECT_EQ(PM_SWAP, ent & (PM_SWAP | PM_PRESENT));
		EXPECT_EQ(wp ? bit : 0, ent & bit)
			TH_LOG("page %zu is not %s", i,
			       wp ? "write-protected" : "clean");
	}
	if (exclusive)
		EXPECT_EQ(0, dmirror_cmd(fd, HMM_DMIRROR_CHECK_EXCLUSIVE, p,
					 NPAGES, NULL))
			TH_LOG("the device still maps the pages for atomics");

	/* The CPU faults, and the device gives each page back */
	for (i = 0; i < NPAGES; i++) {
		peek(p, i);
		ent = pagemap_get_entry(pagemap, p + i * pagesize);
		EXPECT_NE(0, ent & PM_PRESENT)
			TH_LOG("page %zu still has a device entry", i);
		/* The first one tells, the count says how many */
		if (!!(ent & bit) != wp && !lost++)
			TH_LOG("page %zu: %s", i, wp ?
			       "back from the device without uffd-wp" :
			       "back from the device written, only read");
		if (wp)
			continue;
		touch(p, i);
		ent = pagemap_get_entry(pagemap, p + i * pagesize);
		if (!(ent & bit) && !lost++)
			TH_LOG("page %zu: the write after the clear is lost",
			       i);
	}
	EXPECT_EQ(0, lost);

	if (uffd >= 0)
		close(uffd);
	ASSERT_EQ(0, munmap(p, len));
	free(mirror);
	close(pagemap);
	close(fd);
}

TEST_F(memwatch, clear_refs_device_private)
{
	__dev_entries(_metadata, self->pidfd, DEV_CLEAR_REFS, false);
}

TEST_F(memwatch, clear_soft_dirty_device_private)
{
	__dev_entries(_metadata, self->pidfd, DEV_MW_CLEAR, false);
}

TEST_F(memwatch, pagemap_scan_wp_device_private)
{
	__dev_entries(_metadata, self->pidfd, DEV_PM_WP, false);
}

TEST_F(memwatch, wp_device_private)
{
	__dev_entries(_metadata, self->pidfd, DEV_MW_WP, false);
}

TEST_F(memwatch, clear_refs_device_exclusive)
{
	__dev_entries(_metadata, self->pidfd, DEV_CLEAR_REFS, true);
}

TEST_F(memwatch, clear_soft_dirty_device_exclusive)
{
	__dev_entries(_metadata, self->pidfd, DEV_MW_CLEAR, true);
}

TEST_F(memwatch, pagemap_scan_wp_device_exclusive)
{
	__dev_entries(_metadata, self->pidfd, DEV_PM_WP, true);
}

TEST_F(memwatch, wp_device_exclusive)
{
	__dev_entries(_metadata, self->pidfd, DEV_MW_WP, true);
}

/* ---- Clearing filters, hugetlb mremap, VMA layout, tagged walk_end ---- */

#define ALL_CATS	(PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_FILE | \
			 PAGE_IS_PFNZERO | SD)
#define CAT_REPORTED	BIT_ULL(63)	/* in cats[]: the page was reported */

/*
 * As __mw_scan(), with the masks of m and ALL_CATS returned: cats[i] is
 * CAT_REPORTED with the categories reported for page i, or 0 when page i
 * was not reported.  Returns the number of reported pages.
 */
static long __cats_scan(struct __test_metadata *_metadata, int pidfd,
			char *addr, size_t npages, const struct mw_masks *m,
			unsigned int flags, uint64_t *cats)
{
	uint64_t pos = (uintptr_t)addr, end = PG(addr, npages), a;
	struct page_region vec[SCAN_VEC];
	struct memwatch_arg arg;
	long total = 0, ret, i;

	memset(cats, 0, npages * sizeof(*cats));
	while (pos < end) {
		mw_init(&arg, (void *)(uintptr_t)pos, end - pos, vec, SCAN_VEC);
		arg.category_inverted = m->inverted;
		arg.category_mask = m->mask;
		arg.category_anyof_mask = m->anyof;
		arg.return_mask = ALL_CATS;
		ret = process_memwatch(pidfd, &arg, sizeof(arg), flags);
		ASSERT_GE(ret, 0) {
			TH_LOG("process_memwatch: %s", strerror(errno));
		}
		ASSERT_LE(ret, SCAN_VEC);
		ASSERT_GT(arg.walk_end, pos);
		ASSERT_LE(arg.walk_end, end);
		if (ret < SCAN_VEC)
			ASSERT_EQ(end, arg.walk_end);
		for (i = 0; i < ret; i++) {
			ASSERT_GE(vec[i].start, pos);
			ASSERT_LE(vec[i].end, arg.walk_end);
			for (a = vec[i].start; a < vec[i].end; a += pagesize) {
				ASSERT_EQ(0, cats[(a - (uintptr_t)addr) / pagesize]);
				cats[(a - (uintptr_t)addr) / pagesize] =
					CAT_REPORTED | vec[i].categories;
				total++;
			}
		}
		pos = arg.walk_end;
	}
	return total;
}

/* Masks that a clearing call may use, and what each selects */
static const struct mw_masks criu_masks = {	/* CRIU's pre-dump */
	.inverted = PAGE_IS_FILE | PAGE_IS_PFNZERO,
	.mask = PAGE_IS_FILE | PAGE_IS_PFNZERO,
	.anyof = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
};

static const struct mw_masks none_masks = {	/* matches no page */
	.mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
};

/*
 * Check the soft-dirty state of n pages at addr against expect, as
 * __sd_expect() does, naming what is checked in the failure message.
 */
static void __sd_expect_what(struct __test_metadata *_metadata, int pidfd,
			     char *addr, const char *expect, const char *what)
{
	size_t i, n = strlen(expect);
	char *map, *got;
	bool ok = true;

	map = malloc(n);
	got = malloc(n + 1);
	ASSERT_NE(NULL, map);
	ASSERT_NE(NULL, got);
	sd_scan(pidfd, addr, n, 0, map);
	for (i = 0; i < n; i++) {
		got[i] = map[i] ? '1' : '0';
		if (expect[i] != '.' && expect[i] != got[i])
			ok = false;
	}
	got[n] = '\0';
	EXPECT_TRUE(ok) {
		TH_LOG("%s: soft-dirty pages: expected %s, reported %s",
		       what, expect, got);
	}
	free(map);
	free(got);
}

/*
 * A clearing call changes the tracking state of exactly the pages it
 * reports, whatever its masks.  Hildenbrand's sequence leaves page 0
 * writable and clean in a VM_SOFTDIRTY VMA; a clearing call whose masks do
 * not select page 0 must not clear VM_SOFTDIRTY under it, or the next
 * write to it is made without a fault and never reported.
 */
TEST_F(memwatch, filtered_clear_vm_softdirty_mprotect)
{
	static const struct {
		const char *what;
		struct mw_masks m;
		long reported;		/* page 1 is a hole, never written */
	} cases[] = {
		{ "mask SOFT_DIRTY|SWAPPED",
		  { .mask = SD | PAGE_IS_SWAPPED }, 0 },
		{ "anyof SWAPPED|PFNZERO",
		  { .anyof = PAGE_IS_SWAPPED | PAGE_IS_PFNZERO }, 0 },
		{ "mask SOFT_DIRTY, anyof SWAPPED|FILE",
		  { .mask = SD, .anyof = PAGE_IS_SWAPPED | PAGE_IS_FILE }, 0 },
		{ "mask PRESENT|SWAPPED",
		  { .mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED }, 0 },
		{ "inverted PRESENT, mask PRESENT|SOFT_DIRTY",
		  { .inverted = PAGE_IS_PRESENT,
		    .mask = PAGE_IS_PRESENT | SD }, 1 },
	};
	uint64_t cats[2];
	char *p, *q, what[128];
	size_t k;

	for (k = 0; k < ARRAY_SIZE(cases); k++) {
		p = map_guarded(2);
		ASSERT_NE(NULL, p);
		memset(p, 1, 2 * pagesize);
		__sd_reset(_metadata, self->pidfd, p, 2);
		q = mmap(p + pagesize, pagesize, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		ASSERT_EQ(p + pagesize, q);
		madvise(p, 2 * pagesize, MADV_NOHUGEPAGE);
		ASSERT_EQ(0, mprotect(p, 2 * pagesize, PROT_READ));
		ASSERT_EQ(0, mprotect(p, 2 * pagesize,
				      PROT_READ | PROT_WRITE));

		EXPECT_EQ(cases[k].reported,
			  __cats_scan(_metadata, self->pidfd, p, 2,
				      &cases[k].m, MEMWATCH_CLEAR_SOFT_DIRTY,
				      cats)) {
			TH_LOG("%s: page categories %#llx %#llx", cases[k].what,
			       (unsigned long long)cats[0],
			       (unsigned long long)cats[1]);
		}
		/* Not selected: still soft-dirty, and a write is seen */
		snprintf(what, sizeof(what), "%s, not written", cases[k].what);
		__sd_expect_what(_metadata, self->pidfd, p, "1.", what);
		p[0] = 2;
		snprintf(what, sizeof(what), "%s, page 0 written",
			 cases[k].what);
		__sd_expect_what(_metadata, self->pidfd, p, "1.", what);
		EXPECT_EQ(2, peek(p, 0));
		unmap_guarded(p, 2);
	}
}

/*
 * The same with CRIU's filter on a read-faulted MAP_SHARED | MAP_ANONYMOUS
 * mapping: its shmem pages are FILE, nothing matches, and the read faults
 * mapped them writable (no write-notify while the VMA is VM_SOFTDIRTY).
 * A page the call did not report keeps its soft-dirty state, and a write
 * after the call is reported.
 */
TEST_F(memwatch, filtered_clear_shared_anon)
{
	static const struct mw_masks anyof_sp = {
		.anyof = PAGE_IS_SWAPPED | PAGE_IS_PFNZERO,
	};
	static const struct mw_masks sd_swapped = {
		.mask = SD | PAGE_IS_SWAPPED,
	};
	static const struct {
		const char *what;
		const struct mw_masks *m;
	} cases[] = {
		{ "CRIU: inverted FILE|PFNZERO, anyof PRESENT|SWAPPED",
		  &criu_masks },
		{ "anyof SWAPPED|PFNZERO", &anyof_sp },
		{ "mask PRESENT|SWAPPED", &none_masks },
		{ "mask SOFT_DIRTY|SWAPPED", &sd_swapped },
	};
	const struct mw_masks *m;
	uint64_t cats[4];
	char what[128], *area, *p;
	size_t k, i;

	for (k = 0; k < ARRAY_SIZE(cases); k++) {
		m = cases[k].m;
		area = mmap(NULL, 6 * pagesize, PROT_NONE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ASSERT_NE(MAP_FAILED, area);
		p = mmap(area + pagesize, 4 * pagesize, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		ASSERT_EQ(area + pagesize, p);
		for (i = 0; i < 4; i++)
			EXPECT_EQ(0, peek(p, i));

		EXPECT_EQ(0, __cats_scan(_metadata, self->pidfd, p, 4, m,
					 MEMWATCH_CLEAR_SOFT_DIRTY, cats)) {
			TH_LOG("%s: reported %#llx %#llx %#llx %#llx",
			       cases[k].what, (unsigned long long)cats[0],
			       (unsigned long long)cats[1],
			       (unsigned long long)cats[2],
			       (unsigned long long)cats[3]);
		}
		snprintf(what, sizeof(what), "%s, not written", cases[k].what);
		__sd_expect_what(_metadata, self->pidfd, p, "1111", what);
		touch(p, 0);
		touch(p, 2);
		snprintf(what, sizeof(what), "%s, pages 0 and 2 written",
			 cases[k].what);
		__sd_expect_what(_metadata, self->pidfd, p, "1111", what);
		/* Cleared as a whole, exact again */
		__sd_reset(_metadata, self->pidfd, p, 4);
		touch(p, 3);
		snprintf(what, sizeof(what), "%s, then cleared, page 3 written",
			 cases[k].what);
		__sd_expect_what(_metadata, self->pidfd, p, "0001", what);
		munmap(area, 6 * pagesize);
	}
}

/*
 * Private hugetlb pages cleared, then moved by mremap(), are reported at
 * their new address, as PTEs and whole page tables are (mremap_moved,
 * mremap_whole_page_table).  @written: both huge pages written; otherwise
 * the first is only read (mapped read-only, clean).
 */
static void __hugetlb_mremap(struct __test_metadata *_metadata, int pidfd,
			     bool written)
{
	size_t hp = 2UL << 20, n = 2 * hp / pagesize;
	char *p, *area, *dst, *q, *map;

	p = hugetlb_map(2 * hp, 21, false);
	if (!p)
		SKIP(return, "no two free 2 MiB hugetlb pages");
	area = mmap(NULL, 4 * hp, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, area);
	dst = (char *)(((uintptr_t)area + hp - 1) & ~(uintptr_t)(hp - 1));
	map = malloc(n);
	ASSERT_NE(NULL, map);

	if (written)
		touch(p, 0);
	else
		ASSERT_EQ(0, peek(p, 0));
	touch(p, hp / pagesize);
	EXPECT_EQ(3, __hp_dirty(_metadata, pidfd, p, n, map,
				MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(0, __hp_dirty(_metadata, pidfd, p, n, map, 0));

	q = mremap(p, 2 * hp, 2 * hp, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	ASSERT_EQ(dst, q) {
		TH_LOG("mremap: %s", strerror(errno));
	}
	EXPECT_EQ(3, __hp_dirty(_metadata, pidfd, dst, n, map, 0)) {
		TH_LOG("huge pages %s, cleared, moved: not reported",
		       written ? "written" : "read and written");
	}
	EXPECT_EQ(written ? 1 : 0, peek(dst, 0));
	EXPECT_EQ(1, peek(dst, hp / pagesize));
	/* Exact again after a clear at the new address */
	EXPECT_EQ(3, __hp_dirty(_metadata, pidfd, dst, n, map,
				MEMWATCH_CLEAR_SOFT_DIRTY));
	touch(dst, hp / pagesize + 3);
	EXPECT_EQ(2, __hp_dirty(_metadata, pidfd, dst, n, map, 0));
	free(map);
	munmap(dst, 2 * hp);
	munmap(area, 4 * hp);
}

TEST_F_TIMEOUT(memwatch, hugetlb_mremap_written, 60)
{
	__hugetlb_mremap(_metadata, self->pidfd, true);
}

TEST_F_TIMEOUT(memwatch, hugetlb_mremap_read_faulted, 60)
{
	__hugetlb_mremap(_metadata, self->pidfd, false);
}

/*
 * A clear never splits or merges the target's VMAs.  The target is a child
 * addressed by its pidfd: it maps @maps mappings of @n pages of a
 * fixture's kind, each between PROT_NONE pages, writes them, sends the
 * address of the first and then runs commands of two bytes, an operation
 * and a page index, answering each with a struct target_reply:
 *   'w' page	write page of the first mapping
 *   'b'	the number of its VMAs and the bounds of the first mapping's
 *   'm'	mremap() the first mapping to twice its size, MREMAP_MAYMOVE
 *		(ret: 0 or -errno)
 *   'q'	exit
 */
#define LAYOUT_PAGES	64
#define LAYOUT_MAPS	32

struct target {
	int sk;
	pid_t pid;
	int pidfd;
	char *addr;
};

struct target_reply {
	int64_t ret;
	uint64_t start, end;
};

/* A mapping of @kind at addr (MAP_FIXED), at off in fd, or NULL */
static char *map_kind_at(char *addr, enum kind kind, bool shared, int fd,
			 off_t off, size_t len)
{
	int flags = (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED;
	char *p;

	if (kind == ANON_PRIVATE || kind == ANON_SHARED) {
		flags |= MAP_ANONYMOUS;
		fd = -1;
	}
	p = mmap(addr, len, PROT_READ | PROT_WRITE, flags, fd, off);
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

static void target_loop(int sk, enum kind kind, bool shared, int fd,
			size_t n, size_t maps)
{
	struct target_reply r;
	uintptr_t start, end;
	char *area, *p, *q;
	unsigned char cmd[2];
	size_t i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	area = mmap(NULL, (maps * (n + 1) + 1) * pagesize, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		_exit(1);
	for (i = 0; i < maps; i++) {
		p = map_kind_at(area + (1 + i * (n + 1)) * pagesize, kind,
				shared, fd, 0, n * pagesize);
		if (!p)
			_exit(1);
		memset(p, 1, n * pagesize);
	}
	p = area + pagesize;
	vma_bounds(p, &start, &end);	/* let stdio allocate */
	if (send(sk, &p, sizeof(p), 0) != sizeof(p))
		_exit(1);
	while (recv(sk, cmd, sizeof(cmd), MSG_WAITALL) == sizeof(cmd)) {
		memset(&r, 0, sizeof(r));
		switch (cmd[0]) {
		case 'w':
			touch(p, cmd[1]);
			break;
		case 'b':
			r.ret = vma_bounds(p, &start, &end);
			r.start = start;
			r.end = end;
			break;
		case 'm':
			q = mremap(p, n * pagesize, 2 * n * pagesize,
				   MREMAP_MAYMOVE);
			if (q == MAP_FAILED) {
				r.ret = -errno;
			} else {
				p = q;
				r.start = (uintptr_t)q;
			}
			break;
		default:
			_exit(0);
		}
		if (send(sk, &r, sizeof(r), 0) != sizeof(r))
			_exit(1);
	}
	_exit(0);
}

static void __target_start(struct __test_metadata *_metadata,
			   struct target *t, enum kind k, bool shared,
			   int fd, size_t n, size_t maps)
{
	int sk[2];

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sk));
	t->pid = fork();
	ASSERT_GE(t->pid, 0);
	if (t->pid == 0) {
		close(sk[0]);
		target_loop(sk[1], k, shared, fd, n, maps);
	}
	close(sk[1]);
	t->sk = sk[0];
	ASSERT_EQ(sizeof(t->addr), recv(t->sk, &t->addr, sizeof(t->addr),
					MSG_WAITALL));
	t->pidfd = sys_pidfd_open(t->pid, 0);
	ASSERT_GE(t->pidfd, 0);
}

static void __target_cmd(struct __test_metadata *_metadata, struct target *t,
			 char op, unsigned int page, struct target_reply *r)
{
	unsigned char cmd[2] = { op, page };

	ASSERT_EQ(sizeof(cmd), send(t->sk, cmd, sizeof(cmd), 0));
	ASSERT_EQ(sizeof(*r), recv(t->sk, r, sizeof(*r), MSG_WAITALL));
}

static void __target_end(struct __test_metadata *_metadata, struct target *t)
{
	int status;

	send(t->sk, "q", 2, 0);
	ASSERT_EQ(t->pid, waitpid(t->pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	close(t->pidfd);
	close(t->sk);
}

/*
 * A sub-range clear of a fresh mapping: the target's VMA keeps its bounds,
 * its own mremap() of the whole mapping still works, and GetWriteWatch's
 * precision holds: the cleared pages are not reported again until written,
 * every other written page still is.
 */
TEST_F(kind, subrange_clear_no_vma_split)
{
	struct target_reply r0, r1, r;
	char expect[LAYOUT_PAGES + 1], map[16];
	struct target t;

	if (self->fd >= 0)
		ASSERT_EQ(0, ftruncate(self->fd, 2 * LAYOUT_PAGES * pagesize));
	__target_start(_metadata, &t, variant->kind, variant->shared,
		       self->fd, LAYOUT_PAGES, 1);
	__target_cmd(_metadata, &t, 'b', 0, &r0);
	ASSERT_LT(0, r0.ret);
	ASSERT_EQ((uintptr_t)t.addr, r0.start);
	ASSERT_EQ(PG(t.addr, LAYOUT_PAGES), r0.end);

	EXPECT_EQ(16, __mw_scan(_metadata, t.pidfd, t.addr + 16 * pagesize,
				16, MEMWATCH_CLEAR_SOFT_DIRTY, SD, map));
	__target_cmd(_metadata, &t, 'b', 0, &r1);
	EXPECT_EQ(r0.ret, r1.ret) {
		TH_LOG("the target has %lld VMAs before the clear, %lld after",
		       (long long)r0.ret, (long long)r1.ret);
	}
	EXPECT_TRUE(r0.start == r1.start && r0.end == r1.end) {
		TH_LOG("the target's VMA [%#llx, %#llx) is [%#llx, %#llx) after the clear",
		       (unsigned long long)r0.start,
		       (unsigned long long)r0.end,
		       (unsigned long long)r1.start,
		       (unsigned long long)r1.end);
	}

	memset(expect, '1', LAYOUT_PAGES);
	memset(expect + 16, '0', 16);
	expect[LAYOUT_PAGES] = '\0';
	__sd_expect_what(_metadata, t.pidfd, t.addr, expect,
			 "pages 16-31 cleared");
	__target_cmd(_metadata, &t, 'w', 20, &r);
	__target_cmd(_metadata, &t, 'w', 40, &r);
	expect[20] = '1';
	__sd_expect_what(_metadata, t.pidfd, t.addr, expect,
			 "pages 16-31 cleared, 20 and 40 written");

	__target_cmd(_metadata, &t, 'm', 0, &r);
	EXPECT_EQ(0, r.ret) {
		TH_LOG("the target's mremap(p, %d pages, %d pages, MREMAP_MAYMOVE): %s",
		       LAYOUT_PAGES, 2 * LAYOUT_PAGES, strerror(-r.ret));
	}
	__target_end(_metadata, &t);
}

/*
 * ResetWriteWatch on parts of many fresh mappings (Wine's heaps) does not
 * use up the target's max_map_count.
 */
TEST_F(kind, subrange_clears_keep_map_count)
{
	size_t n = 8, i;
	struct target_reply r0, r1;
	struct target t;
	char map[3];

	__target_start(_metadata, &t, variant->kind, variant->shared,
		       self->fd, n, LAYOUT_MAPS);
	__target_cmd(_metadata, &t, 'b', 0, &r0);
	ASSERT_LT(0, r0.ret);
	for (i = 0; i < LAYOUT_MAPS; i++)
		EXPECT_EQ(3, __mw_scan(_metadata, t.pidfd,
				       t.addr + (i * (n + 1) + 2) * pagesize,
				       3, MEMWATCH_CLEAR_SOFT_DIRTY, SD, map));
	__target_cmd(_metadata, &t, 'b', 0, &r1);
	EXPECT_EQ(r0.ret, r1.ret) {
		TH_LOG("the target has %lld VMAs before %d sub-range clears, %lld after",
		       (long long)r0.ret, LAYOUT_MAPS, (long long)r1.ret);
	}
	__sd_expect_what(_metadata, t.pidfd, t.addr, "11000111",
			 "first mapping, pages 2-4 cleared");
	__sd_expect_what(_metadata, t.pidfd,
			 t.addr + (LAYOUT_MAPS - 1) * (n + 1) * pagesize,
			 "11000111", "last mapping, pages 2-4 cleared");
	__target_end(_metadata, &t);
}

/*
 * A resume loop over tagged addresses ends, and walk_end keeps the tag
 * bits of start; regions are reported untagged.  The tag goes where the
 * CPU ignores it: x86 LAM_U57 (bits 57-62, enabled by arch_prctl()) or
 * arm64 TBI (bits 56-63, always on).  Returns the tag and sets *mask to
 * the tag bits, or returns 0 with the reason in why.
 */
#ifndef ARCH_ENABLE_TAGGED_ADDR
#define ARCH_ENABLE_TAGGED_ADDR	0x4002
#endif

static uint64_t tag_enable(uint64_t *mask, char *why, size_t len)
{
#if defined(__x86_64__)
	if (syscall(SYS_arch_prctl, ARCH_ENABLE_TAGGED_ADDR, 6UL)) {
		snprintf(why, len,
			 "arch_prctl(ARCH_ENABLE_TAGGED_ADDR, 6): %s (no LAM in this CPU or kernel)",
			 strerror(errno));
		return 0;
	}
	*mask = 0x3fULL << 57;
	return 0x2aULL << 57;
#elif defined(__aarch64__)
	*mask = 0xffULL << 56;
	return 0x5aULL << 56;
#else
	snprintf(why, len, "no tagged addresses on this architecture");
	*mask = 0;
	return 0;
#endif
}

TEST_F(memwatch, tagged_walk_end)
{
	const char *pattern = "1011011101101111";
	uint64_t tag, mask, pos, end, a, base = (uintptr_t)self->addr;
	struct page_region vec[1];
	struct memwatch_arg arg;
	char seen[NPAGES], why[160];
	int calls;
	long ret;
	size_t i;

	sd_prepare(self->addr, pattern);
	tag = tag_enable(&mask, why, sizeof(why));
	if (!tag)
		SKIP(return, "%s", why);
	pos = base | tag;
	end = PG(self->addr, NPAGES) | tag;
	memset(seen, 0, sizeof(seen));
	for (calls = 0; pos < end; calls++) {
		ASSERT_LT(calls, 2 * NPAGES) {
			TH_LOG("the resume loop does not end: walk_end %#llx",
			       (unsigned long long)pos);
		}
		mw_init(&arg, NULL, 0, vec, 1);
		arg.start = pos;
		arg.end = end;
		ret = process_memwatch(self->pidfd, &arg, sizeof(arg),
				       MEMWATCH_CLEAR_SOFT_DIRTY);
		ASSERT_GE(ret, 0) {
			TH_LOG("process_memwatch: %s", strerror(errno));
		}
		ASSERT_EQ(tag, arg.walk_end & mask) {
			TH_LOG("start %#llx end %#llx: walk_end %#llx",
			       (unsigned long long)arg.start,
			       (unsigned long long)arg.end,
			       (unsigned long long)arg.walk_end);
		}
		ASSERT_GT(arg.walk_end, pos);
		ASSERT_LE(arg.walk_end, end);
		for (i = 0; i < ret; i++) {
			ASSERT_EQ(0, vec[i].start & mask);
			ASSERT_GE(vec[i].start, base);
			ASSERT_LE(vec[i].end, arg.walk_end & ~mask);
			for (a = vec[i].start; a < vec[i].end; a += pagesize)
				seen[(a - base) / pagesize]++;
		}
		pos = arg.walk_end;
	}
	for (i = 0; i < NPAGES; i++) {
		EXPECT_EQ(pattern[i] == '1', seen[i]) {
			TH_LOG("page %zu", i);
		}
	}
	sd_expect(self->addr, 0, "0000000000000000");
}

/*
 * Clearing calls with masks that exclude some pages, on every kind of
 * memory.  Whatever the masks, the call changes the tracking state of
 * exactly the pages it reports: a reported page is clean after it, a
 * present or swapped page it did not report keeps its soft-dirty state,
 * and a write after it to any page is reported.  (A hole of a VM_SOFTDIRTY
 * VMA that the call did not report may read as clean after it: it holds
 * nothing written through this mm, and a write to it faults.)
 *
 * The mapping has FILTER_UNITS units (base pages; huge pages for hugetlb),
 * put in a state by a pattern, one character a unit:
 *   w	written			r	zapped, then read (the zero page
 *   -	zapped (a hole)			in a private anonymous mapping)
 *   c	left as it is		S, s	as w and c, then swapped out where
 *					MADV_PAGEOUT can do it
 * in three states: a fresh (VM_SOFTDIRTY) mapping; the steady state after
 * a whole clear; and the steady state after a MAP_FIXED mapping over the
 * last unit merges and mprotect() RO then RW makes the clean entries
 * writable (VM_SOFTDIRTY again, with writable clean entries).
 */
#define FILTER_UNITS	16
#define FILTER_HUGE	4	/* units of a hugetlb mapping */

static const struct mw_masks anyof_masks = {	/* any of three */
	.anyof = PAGE_IS_PFNZERO | PAGE_IS_SWAPPED | PAGE_IS_FILE,
};

static const struct mw_masks notpresent_masks = {	/* holes and swap */
	.inverted = PAGE_IS_PRESENT,
	.mask = PAGE_IS_PRESENT,
};

enum filter_masks { F_CRIU, F_ANYOF, F_NONE, F_NOTPRESENT };

static const struct mw_masks *filter_masks[] = {
	[F_CRIU] = &criu_masks,
	[F_ANYOF] = &anyof_masks,
	[F_NONE] = &none_masks,
	[F_NOTPRESENT] = &notpresent_masks,
};

/* The mapping of a filter test, and how it was made */
struct filter_map {
	int pidfd;
	int fd;
	enum kind kind;
	bool shared;
	bool hugetlb;
	const struct mw_masks *masks;
	char *area;	/* PROT_NONE around the mapping */
	size_t area_len;
	char *addr;
	size_t unit;	/* bytes of a unit */
	size_t units;
	size_t n;	/* base pages in the mapping */
	uint64_t *before, *pre, *got, *after;
};

FIXTURE(filter) {
	struct filter_map f;
};

FIXTURE_VARIANT(filter) {
	enum kind kind;
	bool shared;
	bool hugetlb;	/* private hugetlb, 2 MiB pages */
	enum filter_masks masks;
};

FIXTURE_VARIANT_ADD(filter, anon_private_criu) {
	.kind = ANON_PRIVATE,
	.masks = F_CRIU,
};

FIXTURE_VARIANT_ADD(filter, anon_private_anyof) {
	.kind = ANON_PRIVATE,
	.masks = F_ANYOF,
};

FIXTURE_VARIANT_ADD(filter, anon_private_none) {
	.kind = ANON_PRIVATE,
	.masks = F_NONE,
};

FIXTURE_VARIANT_ADD(filter, anon_private_notpresent) {
	.kind = ANON_PRIVATE,
	.masks = F_NOTPRESENT,
};

FIXTURE_VARIANT_ADD(filter, anon_shared_criu) {
	.kind = ANON_SHARED,
	.shared = true,
	.masks = F_CRIU,
};

FIXTURE_VARIANT_ADD(filter, anon_shared_anyof) {
	.kind = ANON_SHARED,
	.shared = true,
	.masks = F_ANYOF,
};

FIXTURE_VARIANT_ADD(filter, anon_shared_none) {
	.kind = ANON_SHARED,
	.shared = true,
	.masks = F_NONE,
};

FIXTURE_VARIANT_ADD(filter, anon_shared_notpresent) {
	.kind = ANON_SHARED,
	.shared = true,
	.masks = F_NOTPRESENT,
};

FIXTURE_VARIANT_ADD(filter, memfd_private_criu) {
	.kind = MEMFD_PRIVATE,
	.masks = F_CRIU,
};

FIXTURE_VARIANT_ADD(filter, memfd_private_anyof) {
	.kind = MEMFD_PRIVATE,
	.masks = F_ANYOF,
};

FIXTURE_VARIANT_ADD(filter, memfd_private_none) {
	.kind = MEMFD_PRIVATE,
	.masks = F_NONE,
};

FIXTURE_VARIANT_ADD(filter, memfd_private_notpresent) {
	.kind = MEMFD_PRIVATE,
	.masks = F_NOTPRESENT,
};

FIXTURE_VARIANT_ADD(filter, memfd_shared_criu) {
	.kind = MEMFD_SHARED,
	.shared = true,
	.masks = F_CRIU,
};

FIXTURE_VARIANT_ADD(filter, memfd_shared_anyof) {
	.kind = MEMFD_SHARED,
	.shared = true,
	.masks = F_ANYOF,
};

FIXTURE_VARIANT_ADD(filter, memfd_shared_none) {
	.kind = MEMFD_SHARED,
	.shared = true,
	.masks = F_NONE,
};

FIXTURE_VARIANT_ADD(filter, memfd_shared_notpresent) {
	.kind = MEMFD_SHARED,
	.shared = true,
	.masks = F_NOTPRESENT,
};

FIXTURE_VARIANT_ADD(filter, file_private_criu) {
	.kind = FILE_PRIVATE,
	.masks = F_CRIU,
};

FIXTURE_VARIANT_ADD(filter, file_private_anyof) {
	.kind = FILE_PRIVATE,
	.masks = F_ANYOF,
};

FIXTURE_VARIANT_ADD(filter, file_private_none) {
	.kind = FILE_PRIVATE,
	.masks = F_NONE,
};

FIXTURE_VARIANT_ADD(filter, file_private_notpresent) {
	.kind = FILE_PRIVATE,
	.masks = F_NOTPRESENT,
};

FIXTURE_VARIANT_ADD(filter, file_shared_criu) {
	.kind = FILE_SHARED,
	.shared = true,
	.masks = F_CRIU,
};

FIXTURE_VARIANT_ADD(filter, file_shared_anyof) {
	.kind = FILE_SHARED,
	.shared = true,
	.masks = F_ANYOF,
};

FIXTURE_VARIANT_ADD(filter, file_shared_none) {
	.kind = FILE_SHARED,
	.shared = true,
	.masks = F_NONE,
};

FIXTURE_VARIANT_ADD(filter, file_shared_notpresent) {
	.kind = FILE_SHARED,
	.shared = true,
	.masks = F_NOTPRESENT,
};

FIXTURE_VARIANT_ADD(filter, hugetlb_private_criu) {
	.kind = ANON_PRIVATE,
	.hugetlb = true,
	.masks = F_CRIU,
};

FIXTURE_VARIANT_ADD(filter, hugetlb_private_anyof) {
	.kind = ANON_PRIVATE,
	.hugetlb = true,
	.masks = F_ANYOF,
};

FIXTURE_VARIANT_ADD(filter, hugetlb_private_none) {
	.kind = ANON_PRIVATE,
	.hugetlb = true,
	.masks = F_NONE,
};

FIXTURE_VARIANT_ADD(filter, hugetlb_private_notpresent) {
	.kind = ANON_PRIVATE,
	.hugetlb = true,
	.masks = F_NOTPRESENT,
};

/* Map units [first, units) of the mapping at their place */
static char *filter_map(struct filter_map *f, size_t first)
{
	char *addr = f->addr + first * f->unit;
	size_t len = (f->units - first) * f->unit;
	char *p;

	if (!f->hugetlb)
		return map_kind_at(addr, f->kind, f->shared, f->fd,
				   first * f->unit, len);
	p = mmap(addr, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_FIXED |
		 (21 << MAP_HUGE_SHIFT), -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

FIXTURE_SETUP(filter)
{
	struct filter_map *f = &self->f;
	size_t len;

	f->fd = -1;
	f->pidfd = self_pidfd();
	if (f->pidfd < 0)
		return;
	f->kind = variant->kind;
	f->shared = variant->shared;
	f->hugetlb = variant->hugetlb;
	f->masks = filter_masks[variant->masks];
	f->unit = f->hugetlb ? 2UL << 20 : pagesize;
	f->units = f->hugetlb ? FILTER_HUGE : FILTER_UNITS;
	len = f->units * f->unit;
	f->n = len / pagesize;
	f->fd = __kind_fd(_metadata, f->kind, len);
	if (f->fd == -2)
		SKIP(return, "no O_TMPFILE here or in /tmp");
	/* Between PROT_NONE pages, aligned to the unit */
	f->area_len = len + 2 * f->unit;
	f->area = mmap(NULL, f->area_len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, f->area);
	f->addr = (char *)(((uintptr_t)f->area + pagesize + f->unit - 1) &
			   ~(uintptr_t)(f->unit - 1));
	if (!filter_map(f, 0)) {
		ASSERT_TRUE(f->hugetlb);
		SKIP(return, "no %d free 2 MiB hugetlb pages", FILTER_HUGE);
	}
	f->before = calloc(f->n, sizeof(uint64_t));
	f->pre = calloc(f->n, sizeof(uint64_t));
	f->got = calloc(f->n, sizeof(uint64_t));
	f->after = calloc(f->n, sizeof(uint64_t));
	ASSERT_TRUE(f->before && f->pre && f->got && f->after);
}

FIXTURE_TEARDOWN(filter)
{
	struct filter_map *f = &self->f;

	if (f->area && f->area != MAP_FAILED)
		munmap(f->area, f->area_len);
	if (f->fd >= 0)
		close(f->fd);
	free(f->before);
	free(f->pre);
	free(f->got);
	free(f->after);
	if (f->pidfd >= 0)
		close(f->pidfd);
}

/* Whether MADV_PAGEOUT can make swap entries of the mapping's pages */
static bool filter_can_swap(const struct filter_map *f)
{
	return !f->shared && !f->hugetlb && have_swap();
}

/* Put the units in the state of pattern (see above) */
static void __filter_apply(struct __test_metadata *_metadata,
			   struct filter_map *f, const char *pattern)
{
	size_t i, first = 0, last = 0;
	char *u;

	ASSERT_EQ(f->units, strlen(pattern));
	for (i = 0; i < f->units; i++) {
		u = f->addr + i * f->unit;
		switch (pattern[i]) {
		case 'w':
		case 'S':
			touch(u, 0);
			break;
		case 'r':
			ASSERT_EQ(0, madvise(u, f->unit, MADV_DONTNEED));
			peek(u, 0);
			break;
		case '-':
			ASSERT_EQ(0, madvise(u, f->unit, MADV_DONTNEED));
			break;
		}
		if (pattern[i] == 's' || pattern[i] == 'S') {
			if (!last)
				first = i;
			last = i + 1;
		}
	}
	if (last && filter_can_swap(f))
		ASSERT_LE(0, swap_out(f->pidfd, f->addr + first * f->unit,
				      (last - first) * f->unit / pagesize));
}

/* The categories of a cats[] entry, as letters */
static const char *cats_str(uint64_t c, char *buf, size_t len)
{
	if (!(c & CAT_REPORTED)) {
		snprintf(buf, len, "-");
		return buf;
	}
	snprintf(buf, len, "%s%s%s%s%s%s",
		 c & PAGE_IS_PRESENT ? "P" : "",
		 c & PAGE_IS_SWAPPED ? "S" : "",
		 c & PAGE_IS_FILE ? "F" : "",
		 c & PAGE_IS_PFNZERO ? "Z" : "",
		 c & SD ? "D" : "",
		 c & ~(ALL_CATS | CAT_REPORTED) ? "?" : "");
	return buf;
}

/*
 * The clearing call with the variant's masks, then the checks: it reported
 * what the same query reported just before; each reported page is clean;
 * each present or swapped page not reported kept its soft-dirty state; a
 * write to every unit is reported; cleared as a whole, the mapping is
 * exact again.  Pages are named by index and categories: P present,
 * S swapped, F file, Z zero page, D soft-dirty, - not reported.
 */
static void __filter_check(struct __test_metadata *_metadata,
			   struct filter_map *f, const char *state)
{
	const struct mw_masks all = { 0 };
	size_t i, bad_query = 0, bad_clear = 0, bad_kept = 0, bad_write = 0;
	size_t last = f->n - f->unit / pagesize;
	char b0[16], b1[16], b2[16];
	uint64_t b, g, a;
	long reported;

	__cats_scan(_metadata, f->pidfd, f->addr, f->n, &all, 0, f->before);
	reported = __cats_scan(_metadata, f->pidfd, f->addr, f->n, f->masks,
			       0, f->pre);
	EXPECT_EQ(reported,
		  __cats_scan(_metadata, f->pidfd, f->addr, f->n, f->masks,
			      MEMWATCH_CLEAR_SOFT_DIRTY, f->got));
	__cats_scan(_metadata, f->pidfd, f->addr, f->n, &all, 0, f->after);

	for (i = 0; i < f->n; i++) {
		b = f->before[i];
		g = f->got[i];
		a = f->after[i];
		if (g != f->pre[i] && !bad_query++)
			TH_LOG("%s: page %zu: %s by the query, %s by the clear",
			       state, i, cats_str(f->pre[i], b0, 16),
			       cats_str(g, b1, 16));
		if (g && (a & SD) && !bad_clear++)
			TH_LOG("%s: page %zu (%s) reported by the clear, %s after it",
			       state, i, cats_str(g, b0, 16),
			       cats_str(a, b1, 16));
		if (!g && (b & (PAGE_IS_PRESENT | PAGE_IS_SWAPPED)) &&
		    ((a ^ b) & SD) && !bad_kept++)
			TH_LOG("%s: page %zu not reported by the clear, %s before it, %s after it",
			       state, i, cats_str(b, b0, 16),
			       cats_str(a, b1, 16));
	}
	EXPECT_EQ(0, bad_query);
	EXPECT_EQ(0, bad_clear);
	EXPECT_EQ(0, bad_kept) {
		TH_LOG("%s: %zu pages the clear did not report changed state",
		       state, bad_kept);
	}

	for (i = 0; i < f->units; i++)
		touch(f->addr + i * f->unit, 0);
	__cats_scan(_metadata, f->pidfd, f->addr, f->n, &all, 0, f->after);
	for (i = 0; i < f->n; i++)
		if (!(f->after[i] & SD) && !bad_write++)
			TH_LOG("%s: page %zu written, unreported: %s before, %s by clear, %s now",
			       state, i, cats_str(f->before[i], b0, 16),
			       cats_str(f->got[i], b1, 16),
			       cats_str(f->after[i], b2, 16));
	EXPECT_EQ(0, bad_write) {
		TH_LOG("%s: %zu written pages not reported", state,
		       bad_write);
	}

	__sd_reset(_metadata, f->pidfd, f->addr, f->n);
	touch(f->addr + (f->units - 1) * f->unit, 0);
	__cats_scan(_metadata, f->pidfd, f->addr, f->n, &all, 0, f->after);
	bad_write = 0;
	for (i = 0; i < f->n; i++) {
		bool dirty = f->after[i] & SD, written = i >= last;

		if (dirty != written && !bad_write++)
			TH_LOG("%s, cleared, last unit written: page %zu %s",
			       state, i, cats_str(f->after[i], b0, 16));
	}
	EXPECT_EQ(0, bad_write);
}

static const char *filter_pattern(const struct filter_map *f, bool fresh)
{
	if (f->hugetlb)
		return fresh ? "wr-w" : "wcr-";
	return fresh ? "wwwwrrrr----SSSS" : "wwccrrrr----SSss";
}

/* A fresh mapping: VM_SOFTDIRTY, written, read, holes and swapped pages */
TEST_F_TIMEOUT(filter, fresh, 60)
{
	__filter_apply(_metadata, &self->f, filter_pattern(&self->f, true));
	__filter_check(_metadata, &self->f, "fresh");
}

/* The steady state: no VM_SOFTDIRTY, soft-dirty and clean entries */
static void __filter_steady(struct __test_metadata *_metadata,
			    struct filter_map *f)
{
	size_t i;

	for (i = 0; i < f->units; i++)
		touch(f->addr + i * f->unit, 0);
	__sd_reset(_metadata, f->pidfd, f->addr, f->n);
	__filter_apply(_metadata, f, filter_pattern(f, false));
}

TEST_F_TIMEOUT(filter, steady, 60)
{
	__filter_steady(_metadata, &self->f);
	__filter_check(_metadata, &self->f, "steady");
}

/*
 * VM_SOFTDIRTY again over clean entries that mprotect() made writable:
 * Hildenbrand's sequence, where the kind of memory allows the merge.
 */
TEST_F_TIMEOUT(filter, remerged, 60)
{
	struct filter_map *f = &self->f;
	size_t len = f->units * f->unit;

	__filter_steady(_metadata, f);
	ASSERT_NE(NULL, filter_map(f, f->units - 1)) {
		TH_LOG("mmap(MAP_FIXED): %s", strerror(errno));
	}
	if (!f->hugetlb)
		madvise(f->addr, len, MADV_NOHUGEPAGE);
	ASSERT_EQ(0, mprotect(f->addr, len, PROT_READ));
	ASSERT_EQ(0, mprotect(f->addr, len, PROT_READ | PROT_WRITE));
	__filter_check(_metadata, f, "remerged");
}

/* ---- Without CONFIG_MEM_SOFT_DIRTY ---- */

/*
 * The categories other than soft-dirty, which every architecture has:
 * this fixture does not need soft-dirty tracking, so it also runs where
 * there is none (arm64 in 6.12), and the uffd-wp asynchronous mode
 * through MEMWATCH_WP_MATCHING where the architecture has uffd-wp.
 */
FIXTURE(nosd) {
	int pidfd;
	char *addr;
};

FIXTURE_SETUP(nosd)
{
	self->pidfd = -1;
	self->addr = NULL;
	if (!memwatch_supported())
		SKIP(return, "process_memwatch() not supported");
	self->pidfd = sys_pidfd_open(getpid(), 0);
	ASSERT_GE(self->pidfd, 0);
	self->addr = map_guarded(NPAGES);
	ASSERT_NE(NULL, self->addr);
}

FIXTURE_TEARDOWN(nosd)
{
	if (self->addr)
		unmap_guarded(self->addr, NPAGES);
	if (self->pidfd >= 0)
		close(self->pidfd);
}

/* Written pages are present; a read-faulted one maps the zero page */
TEST_F(nosd, present_and_zero_page)
{
	const uint64_t p = PAGE_IS_PRESENT, z = PAGE_IS_PFNZERO;

	touch(self->addr, 0);
	touch(self->addr, 1);
	ASSERT_EQ(0, peek(self->addr, 2));
	query(self->addr, 4, 0, p, 0, p | z, { 0, 2, p }, { 2, 3, p | z });
	/* Inverted: the pages that are not the zero page */
	query(self->addr, 4, z, p | z, 0, p, { 0, 2, p });
	query_none(self->addr, 4, 0, 0, PAGE_IS_SWAPPED | PAGE_IS_FILE |
		   PAGE_IS_HUGE, p);
}

/* A shared file mapping's pages are present and file-backed */
TEST_F(nosd, file)
{
	const uint64_t p = PAGE_IS_PRESENT, f = PAGE_IS_FILE;
	int memfd = memfd_create("memwatch", 0);
	char *m;

	ASSERT_GE(memfd, 0);
	ASSERT_EQ(0, ftruncate(memfd, 4 * pagesize));
	m = mmap(NULL, 4 * pagesize, PROT_READ | PROT_WRITE, MAP_SHARED,
		 memfd, 0);
	ASSERT_NE(MAP_FAILED, m);
	touch(m, 1);
	touch(m, 2);
	query(m, 4, 0, p, 0, p | f, { 1, 3, p | f });
	query(m, 4, 0, f, 0, f, { 1, 3, f });
	munmap(m, 4 * pagesize);
	close(memfd);
}

/* A page swapped out is reported swapped, not present */
TEST_F(nosd, swapped)
{
	const uint64_t p = PAGE_IS_PRESENT, s = PAGE_IS_SWAPPED;

	if (!have_swap())
		SKIP(return, "no swap");
	touch(self->addr, 0);
	touch(self->addr, 1);
	if (swap_out(self->pidfd, self->addr, 1) != 1)
		SKIP(return, "MADV_PAGEOUT did not swap the page out");
	query(self->addr, 2, 0, 0, p | s, p | s, { 0, 1, s }, { 1, 2, p });
	EXPECT_EQ(1, peek(self->addr, 0));
	query(self->addr, 2, 0, p, 0, p | s, { 0, 2, p });
}

/* A transparent huge page is reported huge over its whole range */
TEST_F(nosd, thp)
{
	const uint64_t p = PAGE_IS_PRESENT, h = PAGE_IS_HUGE;
	size_t pmd = read_pmd_pagesize();
	struct page_region vec[2];
	struct memwatch_arg arg;
	char *t;

	if (!pmd || !thp_available())
		SKIP(return, "THP not available");
	t = thp_map(pmd);
	ASSERT_NE(NULL, t);
	memset(t, 1, pmd);
	if (!check_huge_anon(t, 1, pmd)) {
		munmap(t, pmd);
		SKIP(return, "could not allocate a THP");
	}
	mw_init(&arg, t, pmd, vec, 2);
	arg.category_mask = p;
	arg.return_mask = p | h;
	ASSERT_EQ(1, process_memwatch(self->pidfd, &arg, sizeof(arg), 0));
	EXPECT_EQ((uintptr_t)t, vec[0].start);
	EXPECT_EQ((uintptr_t)t + pmd, vec[0].end);
	EXPECT_EQ(p | h, vec[0].categories);
	munmap(t, pmd);
}

/*
 * uffd-wp in asynchronous mode (Wine's GetWriteWatch): MEMWATCH_WP_MATCHING
 * reports the written pages and write-protects them again, atomically.
 */
TEST_F(nosd, wp_matching)
{
	int uffd;

	memset(self->addr, 1, NPAGES * pagesize);
	uffd = uffd_wp_async(self->addr, NPAGES * pagesize, false, true);
	if (uffd < 0)
		SKIP(return, "no async uffd-wp: %s", strerror(errno));
	wr_expect(self->addr, 0, "0000000000000000");
	touch(self->addr, 1);
	touch(self->addr, 2);
	touch(self->addr, 9);
	wr_expect(self->addr, 0, "0110000001000000");
	wr_expect(self->addr, MEMWATCH_WP_MATCHING, "0110000001000000");
	wr_expect(self->addr, 0, "0000000000000000");
	touch(self->addr, 2);
	touch(self->addr, 15);
	wr_expect(self->addr, MEMWATCH_WP_MATCHING, "0010000000000001");
	wr_expect(self->addr, 0, "0000000000000000");
	EXPECT_EQ(3, peek(self->addr, 2));
	close(uffd);
}

TEST(no_soft_dirty)
{
	struct page_region vec[4];
	struct memwatch_arg arg;
	int pidfd, err;
	char *p;

	if (!memwatch_supported())
		SKIP(return, "process_memwatch() not supported");
	pidfd = sys_pidfd_open(getpid(), 0);
	ASSERT_GE(pidfd, 0);
	err = soft_dirty_probe(pidfd);
	if (!err)
		SKIP(return, "soft-dirty is supported");
	ASSERT_EQ(EOPNOTSUPP, err);
	p = map_guarded(4);
	ASSERT_NE(NULL, p);
	memset(p, 1, 4 * pagesize);
	mw_init(&arg, p, 4 * pagesize, vec, 4);
	errno = 0;
	EXPECT_EQ(-1, process_memwatch(pidfd, &arg, sizeof(arg), 0));
	EXPECT_EQ(EOPNOTSUPP, errno);
	arg.category_mask = PAGE_IS_PRESENT;
	arg.return_mask = PAGE_IS_PRESENT;
	EXPECT_EQ(1, process_memwatch(pidfd, &arg, sizeof(arg), 0));
	EXPECT_EQ(-1, process_memwatch(pidfd, &arg, sizeof(arg),
				       MEMWATCH_CLEAR_SOFT_DIRTY));
	EXPECT_EQ(EOPNOTSUPP, errno);
	unmap_guarded(p, 4);
	close(pidfd);
}

/*
 * The harness exits 0 when every test skipped; a kernel without the system
 * call should show up as a skip in run_vmtests.sh.
 */
static void exit_skip_if_all_skipped(void)
{
	if (ksft_plan && ksft_cnt.ksft_xskip == ksft_plan) {
		fflush(stdout);
		fflush(stderr);
		_exit(KSFT_SKIP);
	}
}

int main(int argc, char **argv)
{
	pagesize = getpagesize();
	atexit(exit_skip_if_all_skipped);
	return test_harness_run(argc, argv);
}
