// SPDX-License-Identifier: GPL-2.0
/*
 * writer: a known write load for tools/mm/memwatch in the tool guest.
 *
 * Maps 4 * PAGES pages of private anonymous memory and, every 10 ms,
 * writes a new value into each of the first PAGES pages (so every watch
 * interval of 10 ms or more sees at least PAGES written pages), one more
 * page of the rest in turn, and every 50 ticks discards 8 pages of the
 * rest with MADV_DONTNEED.  Runs until killed.
 *
 * Usage: writer [PAGES]	(default 256)
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/mman.h>

#define PAGE 4096UL

int main(int argc, char **argv)
{
	unsigned long pages = argc > 1 ? strtoul(argv[1], NULL, 0) : 256;
	unsigned long i, k, rest = 3 * pages;
	char *p;

	p = mmap(NULL, 4 * pages * PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!pages || p == MAP_FAILED) {
		perror("writer: mmap");
		return 1;
	}
	printf("writer: pid %d, %lu pages at %p, %lu written every 10 ms\n",
	       getpid(), 4 * pages, p, pages);
	fflush(stdout);
	for (k = 1; ; k++) {
		for (i = 0; i < pages; i++)
			p[i * PAGE + k % PAGE] = k + i;
		p[(pages + k % rest) * PAGE + k % PAGE] = k;
		if (k % 50 == 0)
			madvise(p + (pages + (k / 50 * 8) % (rest - 8)) * PAGE,
				8 * PAGE, MADV_DONTNEED);
		usleep(10000);
	}
}
