// SPDX-License-Identifier: GPL-2.0
/*
 * fairness: a long process_memwatch() walk must not starve the target's
 * mmap_lock writers.
 *
 * The target maps 4 GiB (MAP_NORESERVE) with one page written every
 * 256 KiB, so every PTE table of the range is populated, and 64 MiB split
 * into 8192 VMAs; a thread loops mmap + touch + munmap and records each
 * iteration's latency.  The monitor first idles (baseline), then loops
 * get+clear walks over the whole range for the same time.  Latencies are
 * printed as information only (TCG timing is noisy); the TAP lines say
 * that the walks completed and that the loop made progress during them.
 *
 * Usage: fairness [-d SECONDS_PER_PHASE]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "common.h"

#define PAGE		4096UL
#define BIG		(4UL << 30)
#define STRIDE		(256UL << 10)
#define NVMAS		8192
#define SMALL		(2UL * NVMAS * PAGE)
#define TOTAL		(BIG + SMALL)

struct ctl {
	atomic_int ready, phase, stop;
	atomic_ullong iters[2], worst_ns[2];
	uintptr_t base;
};

static struct ctl *ctl;

static void *loop(void *unused)
{
	while (!atomic_load(&ctl->stop)) {
		int ph = atomic_load(&ctl->phase);
		uint64_t t0 = now_ns(), t;
		char *p = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			abort();
		p[0] = 1;
		munmap(p, 16 * PAGE);
		t = now_ns() - t0;
		atomic_fetch_add(&ctl->iters[ph], 1);
		if (t > atomic_load(&ctl->worst_ns[ph]))
			atomic_store(&ctl->worst_ns[ph], t);
		usleep(100);
	}
	return NULL;
}

static void target(void)
{
	pthread_t t;
	char *p, *small;
	size_t i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	p = mmap(NULL, TOTAL, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		_exit(1);
	madvise(p, TOTAL, MADV_NOHUGEPAGE);
	for (i = 0; i < BIG; i += STRIDE)
		p[i] = 1;
	small = p + BIG;
	for (i = 0; i < NVMAS; i++) {
		small[2 * i * PAGE] = 1;
		mprotect(small + (2 * i + 1) * PAGE, PAGE, PROT_READ);
	}
	ctl->base = (uintptr_t)p;
	if (pthread_create(&t, NULL, loop, NULL))
		_exit(1);
	atomic_store(&ctl->ready, 1);
	pthread_join(t, NULL);
	_exit(0);
}

/* One get+clear walk over the whole range; the number of calls */
static long walk(int pidfd)
{
	struct page_region vec[64];
	uintptr_t addr = ctl->base, end = ctl->base + TOTAL;
	long calls = 0;

	while (addr < end) {
		struct memwatch_arg arg = {
			.start = addr, .end = end,
			.vec = (uintptr_t)vec, .vec_len = 64,
			.category_mask = SD, .return_mask = SD,
		};

		if (process_memwatch(pidfd, &arg, sizeof(arg),
				     MEMWATCH_CLEAR_SOFT_DIRTY) < 0) {
			printf("# process_memwatch: %s\n", strerror(errno));
			return -1;
		}
		calls++;
		addr = arg.walk_end;
	}
	return calls;
}

int main(int argc, char **argv)
{
	uint64_t phase_ns = 5000000000ULL, t0, t, worst_pass = 0, passes = 0,
		 walk_ns = 0;
	int opt, pidfd, status;
	long calls = 0, c;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "d:")) != -1) {
		if (opt != 'd')
			return 2;
		phase_ns = strtoull(optarg, NULL, 0) * 1000000000ULL;
	}
	tap_plan(2);
	if (!memwatch_supported()) {
		tap_skip("fairness: walk (process_memwatch not supported)");
		tap_skip("fairness: mmap loop progress");
		return tap_exit();
	}
	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid = fork();
	if (pid == 0)
		target();
	pidfd = sys_pidfd_open(pid, 0);
	while (!atomic_load(&ctl->ready) && waitpid(pid, &status, WNOHANG) == 0)
		usleep(10000);
	if (!atomic_load(&ctl->ready) || pidfd < 0) {
		tap_result(false, "fairness: target setup failed");
		tap_result(false, "fairness: mmap loop progress");
		return tap_exit();
	}
	/* the first walk clears VM_SOFTDIRTY (write lock); then steady */
	t0 = now_ns();
	c = walk(pidfd);
	printf("# first walk (clears VM_SOFTDIRTY): %ld calls, %.1f ms\n", c,
	       (now_ns() - t0) / 1e6);

	/* phase 0: baseline; phase 1: walking */
	atomic_store(&ctl->phase, 0);
	usleep(phase_ns / 1000);
	atomic_store(&ctl->phase, 1);
	t0 = now_ns();
	while ((t = now_ns()) - t0 < phase_ns && c >= 0) {
		c = walk(pidfd);
		calls += c;
		t = now_ns() - t;
		walk_ns += t;
		if (t > worst_pass)
			worst_pass = t;
		passes++;
	}
	atomic_store(&ctl->stop, 1);
	waitpid(pid, &status, 0);

	printf("# range %lu MiB: 4 GiB with a page per %lu KiB, %d VMAs\n",
	       TOTAL >> 20, STRIDE >> 10, NVMAS);
	printf("# walks: %llu passes, %ld calls, mean %.1f ms, worst %.1f ms\n",
	       (unsigned long long)passes, calls,
	       passes ? walk_ns / 1e6 / passes : 0.0, worst_pass / 1e6);
	printf("# mmap/munmap loop without walk: %llu iterations, worst %.3f ms\n",
	       (unsigned long long)ctl->iters[0], ctl->worst_ns[0] / 1e6);
	printf("# mmap/munmap loop during walks: %llu iterations, worst %.3f ms\n",
	       (unsigned long long)ctl->iters[1], ctl->worst_ns[1] / 1e6);
	tap_result(c >= 0 && passes > 0, "fairness: %llu walks of %lu MiB "
		   "completed", (unsigned long long)passes, TOTAL >> 20);
	tap_result(ctl->iters[1] > 0, "fairness: mmap loop made progress "
		   "during the walks (%llu iterations, worst %.3f ms)",
		   (unsigned long long)ctl->iters[1], ctl->worst_ns[1] / 1e6);
	return tap_exit();
}
