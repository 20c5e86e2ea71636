// SPDX-License-Identifier: GPL-2.0
/*
 * A parent watches a live child through its pidfd with process_memwatch():
 * every page the child has written is reported, the report clears the
 * pages' soft-dirty state, the child writes a few pages, and the next
 * report shows exactly those.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/memwatch.h>

#ifndef __NR_process_memwatch
#define __NR_process_memwatch 463
#endif

#define NPAGES 64

static long process_memwatch(int pidfd, struct memwatch_arg *arg,
			     size_t size, unsigned int flags)
{
	return syscall(__NR_process_memwatch, pidfd, arg, size, flags);
}

/* Report, and optionally clear, the soft-dirty pages of [start, end). */
static void report(int pidfd, char *start, size_t len, unsigned int flags,
		   const char *what)
{
	struct page_region regions[16];
	struct memwatch_arg arg = {
		.start = (unsigned long)start,
		.end = (unsigned long)start + len,
		.vec = (unsigned long)regions,
		.vec_len = 16,
		.category_mask = PAGE_IS_SOFT_DIRTY,
		.return_mask = PAGE_IS_SOFT_DIRTY | PAGE_IS_PRESENT,
	};
	long page = sysconf(_SC_PAGESIZE);
	long i, n;

	printf("parent: %s\n", what);
	do {
		n = process_memwatch(pidfd, &arg, sizeof(arg), flags);
		if (n < 0) {
			printf("  process_memwatch: %s\n", strerror(errno));
			exit(1);
		}
		for (i = 0; i < n; i++)
			printf("  pages %3lu-%3lu written%s\n",
			       (unsigned long)(regions[i].start - arg.start) / page,
			       (unsigned long)(regions[i].end - arg.start) / page - 1,
			       regions[i].categories & PAGE_IS_PRESENT ?
			       " (present)" : "");
		if (!n)
			printf("  no page written\n");
		arg.start = arg.walk_end;
	} while (arg.walk_end < (unsigned long)start + len);
}

int main(void)
{
	long page = sysconf(_SC_PAGESIZE);
	int go[2], done[2], pidfd;
	char *mem, c;
	pid_t child;

	mem = mmap(NULL, NPAGES * page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || pipe(go) || pipe(done))
		return 1;

	child = fork();
	if (!child) {
		/* The child dirties pages on request: first 0-9, then 3, 40-42. */
		memset(mem, 1, 10 * page);
		write(done[1], "x", 1);
		read(go[0], &c, 1);
		mem[3 * page] = 2;
		memset(mem + 40 * page, 2, 3 * page);
		write(done[1], "x", 1);
		pause();
		return 0;
	}

	pidfd = syscall(SYS_pidfd_open, child, 0);
	if (pidfd < 0 || read(done[0], &c, 1) != 1)
		return 1;
	printf("parent: watching child %d through pidfd %d\n", child, pidfd);
	report(pidfd, mem, NPAGES * page, 0,
	       "the new mapping: every page is reported (a new VMA is dirty)");
	report(pidfd, mem, NPAGES * page, MEMWATCH_CLEAR_SOFT_DIRTY,
	       "report and clear atomically");
	report(pidfd, mem, NPAGES * page, 0, "after the clear");

	printf("parent: the child writes page 3 and pages 40-42\n");
	write(go[1], "x", 1);
	read(done[0], &c, 1);
	report(pidfd, mem, NPAGES * page, MEMWATCH_CLEAR_SOFT_DIRTY,
	       "report and clear again");
	report(pidfd, mem, NPAGES * page, 0, "after the second clear");

	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return 0;
}
