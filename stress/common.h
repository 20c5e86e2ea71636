/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the process_memwatch() stress programs: the system
 * call wrappers, a seeded PRNG, a clock and plain kselftest-style TAP
 * output with a fixed plan.
 */
#ifndef MEMWATCH_STRESS_COMMON_H
#define MEMWATCH_STRESS_COMMON_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
/* glibc's <sys/uio.h> and <linux/fs.h> both define these */
#undef RWF_HIPRI
#undef RWF_DSYNC
#undef RWF_SYNC
#undef RWF_NOWAIT
#undef RWF_APPEND
#undef RWF_NOAPPEND
#undef RWF_ATOMIC
#include <linux/fs.h>
#include <linux/memwatch.h>

#ifndef __NR_process_memwatch
#define __NR_process_memwatch 463
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define KSFT_PASS	0
#define KSFT_FAIL	1
#define KSFT_SKIP	4

#define SD		PAGE_IS_SOFT_DIRTY

static inline long process_memwatch(int pidfd, struct memwatch_arg *arg,
				    size_t size, unsigned int flags)
{
	return syscall(__NR_process_memwatch, pidfd, arg, size, flags);
}

static inline int sys_pidfd_open(pid_t pid, unsigned int flags)
{
	return syscall(__NR_pidfd_open, pid, flags);
}

/* xorshift64*: small, seedable, good enough to pick cases */
static inline uint64_t rnd_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static inline uint64_t rnd_below(uint64_t *s, uint64_t n)
{
	return n ? rnd_next(s) % n : 0;
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* TAP: "1..N" first, then one "ok N desc" or "not ok N desc" per test */
static int tap_count, tap_failed, tap_skipped;

static inline void tap_plan(int n)
{
	printf("TAP version 13\n1..%d\n", n);
	fflush(stdout);
}

static inline void __attribute__((format(printf, 2, 3)))
tap_result(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d ", ok ? "" : "not ", ++tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok)
		tap_failed++;
}

static inline void __attribute__((format(printf, 1, 2)))
tap_skip(const char *fmt, ...)
{
	va_list ap;

	printf("ok %d ", ++tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" # SKIP\n");
	fflush(stdout);
	tap_skipped++;
}

/* Exit status as checks/tap expects: 1 with failures, 4 if all skipped */
static inline int tap_exit(void)
{
	if (tap_failed)
		return KSFT_FAIL;
	if (tap_count && tap_skipped == tap_count)
		return KSFT_SKIP;
	return KSFT_PASS;
}

/*
 * Whether process_memwatch() exists: the documented probe, then a call
 * that must succeed, since 463 is another system call on later kernels.
 */
static inline bool memwatch_supported(void)
{
	struct memwatch_arg arg = { 0 };
	int pidfd;
	bool ok;

	if (process_memwatch(-1, NULL, 0, 0) != -1 || errno != EINVAL)
		return false;
	pidfd = sys_pidfd_open(getpid(), 0);
	if (pidfd < 0)
		return false;
	arg.start = (uintptr_t)&arg & -(uintptr_t)sysconf(_SC_PAGESIZE);
	arg.end = arg.start;
	arg.walk_end = 1;
	ok = !process_memwatch(pidfd, &arg, sizeof(arg), 0) &&
	     arg.walk_end == arg.end;
	close(pidfd);
	return ok;
}

#endif /* MEMWATCH_STRESS_COMMON_H */
