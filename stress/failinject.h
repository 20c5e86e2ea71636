/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Fault injection for the stress programs that make each allocation of a
 * call fail in turn (failnth, scanfail): /proc/thread-self/fail-nth with
 * failslab and fail_page_alloc set up to be quiet and deterministic.
 */
#ifndef MEMWATCH_STRESS_FAILINJECT_H
#define MEMWATCH_STRESS_FAILINJECT_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEBUGFS		"/sys/kernel/debug"

static int nth_fd = -1;

static inline int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

/*
 * Quiet, deterministic injection: no random failures (probability stays
 * 0), no messages or stack dumps, and GFP_KERNEL and order-0 allocations
 * are eligible, as are those that may sleep. Return: NULL, or why the
 * injection cannot be set up.
 */
static inline const char *setup_injection(void)
{
	static const char * const settings[][2] = {
		{ DEBUGFS "/failslab/verbose", "0" },
		{ DEBUGFS "/failslab/ignore-gfp-wait", "N" },
		{ DEBUGFS "/fail_page_alloc/verbose", "0" },
		{ DEBUGFS "/fail_page_alloc/ignore-gfp-wait", "N" },
		{ DEBUGFS "/fail_page_alloc/ignore-gfp-highmem", "N" },
		{ DEBUGFS "/fail_page_alloc/min-order", "0" },
	};
	size_t i;

	if (geteuid())
		return "needs root";
	nth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
	if (nth_fd < 0)
		return "no fail-nth (CONFIG_FAULT_INJECTION)";
	for (i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
		if (write_file(settings[i][0], settings[i][1]))
			return "no failslab or fail_page_alloc in debugfs";
	return NULL;
}

/* Make the @n-th injection site this thread reaches fail (0: none) */
static inline void set_fail_nth(unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	if (pwrite(nth_fd, buf, len, 0) != len)
		abort();
}

/* Whether the failure set up by set_fail_nth() was injected */
static inline bool fail_nth_injected(void)
{
	char buf[16] = "";

	if (pread(nth_fd, buf, sizeof(buf) - 1, 0) <= 0)
		abort();
	return atoi(buf) == 0;
}

#endif
