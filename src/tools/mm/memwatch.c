// SPDX-License-Identifier: GPL-2.0
/*
 * memwatch: watch and copy the memory a live process writes, with
 * process_memwatch(2) on a pidfd.
 *
 *   memwatch watch PID [-i SECONDS] [-n COUNT] [-t TOP] [-j] [RANGE]
 *   memwatch precopy PID -o FILE [-r MAXROUNDS] [--verify]
 *                    [--stop=sigstop] [--method=memwatch|clear_refs] [RANGE]
 *
 * watch gets and clears the soft-dirty pages of RANGE (by default the
 * whole address space) every interval and prints the pages written per
 * mapping and in total.  precopy copies the memory of a running process
 * into an image the way an iterative pre-dump or a live migration does:
 * round 0 copies every present page, each later round only the pages
 * written since the round before, then the target is stopped for the last
 * round.  Only the reported pages are re-armed, and nothing but the
 * target's page tables changes: its mappings are never split or merged.
 *
 * Soft-dirty has one consumer per process: clearing it here takes the
 * writes away from anyone else who clears it in the same target (bdwgc's
 * incremental mode, a CRIU pre-dump, another memwatch).  Do not watch a
 * process that tracks its own soft-dirty bits.
 *
 * The core needs only pidfd_open(2), process_memwatch(2) and
 * process_vm_readv(2).  /proc/PID/maps, when it can be read, names the
 * mappings in the output.  --method=clear_refs runs the same precopy loop
 * on /proc/PID/pagemap and /proc/PID/clear_refs, for comparison only.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
/* <sys/uio.h> and <linux/fs.h> both define the RWF_* flags */
#undef RWF_HIPRI
#undef RWF_DSYNC
#undef RWF_SYNC
#undef RWF_NOWAIT
#undef RWF_APPEND
#undef RWF_NOAPPEND
#undef RWF_ATOMIC
#include <linux/memwatch.h>

#ifndef __NR_process_memwatch
#define __NR_process_memwatch	463
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open		434
#endif
#ifndef __NR_pidfd_send_signal
#define __NR_pidfd_send_signal	424
#endif

#define NR_REGIONS	4096		/* struct page_region per call */
#define CALL_PAGES	(256UL * 1024)	/* max_pages: bound one call's work */
#define COPY_PAGES	256UL		/* pages per process_vm_readv() */
#define PM_SOFT_DIRTY	0x0080000000000000ULL
#define PM_FILE		0x2000000000000000ULL
#define PM_SWAP		0x4000000000000000ULL
#define PM_PRESENT	0x8000000000000000ULL
#define PM_PFN_MASK	0x007fffffffffffffULL
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ	22
#endif
#define PRESENT_OR_SWAPPED	(PAGE_IS_PRESENT | PAGE_IS_SWAPPED)
#define CATEGORIES	(PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_FILE | \
			 PAGE_IS_PFNZERO | PAGE_IS_SOFT_DIRTY)

static const char *prog = "memwatch";
static unsigned long page_size;
static pid_t pid;
static int pidfd = -1;
static bool stopped_by_us;	/* resume the target on the way out */

static int send_signal(int sig)
{
	return syscall(__NR_pidfd_send_signal, pidfd, sig, NULL, 0);
}

static void fatal(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (stopped_by_us)
		send_signal(SIGCONT);
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* "1.5 MiB": a size a person can read */
static const char *human(char *buf, double bytes)
{
	static const char * const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;

	while (bytes >= 1024 && i < 4) {
		bytes /= 1024;
		i++;
	}
	sprintf(buf, i ? "%.1f %s" : "%.0f %s", bytes, unit[i]);
	return buf;
}

static long sys_process_memwatch(struct memwatch_arg *arg, unsigned int flags)
{
	return syscall(__NR_process_memwatch, pidfd, arg, sizeof(*arg), flags);
}

static long sys_process_memwatch_probe(void)
{
	return syscall(__NR_process_memwatch, -1, NULL, 0, 0);
}

/* Why a call on the target failed, in words, and exit */
static void call_failed(const char *what)
{
	int err = errno;

	if (err == ESRCH)
		fatal("%s: process %d has exited", what, pid);
	if (err == EPERM || err == EACCES)
		fatal("%s: no permission to watch process %d (ptrace access needed)",
		      what, pid);
	if (err == EFAULT)
		fatal("%s: range outside the address space of process %d",
		      what, pid);
	if (err == EINVAL)
		fatal("%s: invalid range or arguments", what);
	fatal("%s: %s", what, strerror(err));
}

/* ---------------------------------------------------------- region lists */

struct regions {
	struct page_region *r;
	size_t nr, cap;
	uint64_t pages;
};

static void regions_add(struct regions *l, uint64_t start, uint64_t end,
			uint64_t cats)
{
	struct page_region *last = l->nr ? &l->r[l->nr - 1] : NULL;

	l->pages += (end - start) / page_size;
	if (last && last->end == start && last->categories == cats) {
		last->end = end;
		return;
	}
	if (l->nr == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 1024;
		l->r = realloc(l->r, l->cap * sizeof(*l->r));
		if (!l->r)
			fatal("out of memory");
	}
	l->r[l->nr++] = (struct page_region){ start, end, cats };
}

/*
 * Scan [start, end) of the target: every page matching the masks goes to
 * @out.  The walk resumes at walk_end until the whole range is examined;
 * with MEMWATCH_CLEAR_SOFT_DIRTY exactly the reported pages are re-armed.
 */
static void scan(uint64_t start, uint64_t end, unsigned int flags,
		 uint64_t mask, uint64_t anyof, struct regions *out)
{
	static struct page_region vec[NR_REGIONS];
	struct memwatch_arg arg = {
		.end = end,
		.vec = (uintptr_t)vec,
		.vec_len = NR_REGIONS,
		.max_pages = CALL_PAGES,
		.category_mask = mask,
		.category_anyof_mask = anyof,
		.return_mask = CATEGORIES,
	};
	long i, n;

	out->nr = 0;
	out->pages = 0;
	while (start < end) {
		arg.start = start;
		n = sys_process_memwatch(&arg, flags);
		if (n < 0 && errno == EINVAL && arg.max_pages) {
			/* a hugetlb page larger than max_pages comes first */
			arg.max_pages = 0;
			n = sys_process_memwatch(&arg, flags);
			arg.max_pages = CALL_PAGES;
		}
		if (n < 0)
			call_failed("process_memwatch");
		for (i = 0; i < n; i++)
			regions_add(out, vec[i].start, vec[i].end,
				    vec[i].categories);
		if (arg.walk_end <= start)
			fatal("process_memwatch: no progress at %#llx",
			      (unsigned long long)start);
		start = arg.walk_end;
	}
}

/* ------------------------------------------------------- target handling */

static int open_target(const char *arg)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || *end || v <= 0 || v != (pid_t)v)
		fatal("invalid PID '%s'", arg);
	pid = v;
	pidfd = syscall(__NR_pidfd_open, pid, 0);
	if (pidfd < 0) {
		if (errno == ESRCH)
			fatal("no process %d", pid);
		fatal("pidfd_open(%d): %s", pid, strerror(errno));
	}
	return pidfd;
}

/*
 * Whether the call accepts a range ending at @end: 1 if so, 0 if @end is
 * above the target's address space (EFAULT).  Anything else means this is
 * not process_memwatch(), or it is not allowed.
 */
static int end_accepted(uint64_t end)
{
	struct memwatch_arg arg = {
		.start = end - page_size,
		.end = end,
		.walk_end = 1,
	};

	if (!sys_process_memwatch(&arg, 0)) {
		if (arg.walk_end != arg.end)
			fatal("system call %d is not process_memwatch() in this kernel",
			      __NR_process_memwatch);
		return 1;
	}
	if (errno == EINVAL || errno == E2BIG || errno == EBADF)
		fatal("system call %d is not process_memwatch() in this kernel: %s",
		      __NR_process_memwatch, strerror(errno));
	if (errno != EFAULT)
		call_failed("process_memwatch");
	return 0;
}

/*
 * The end of the target's address space, found by bisection: the call
 * takes any range below it and refuses (EFAULT) one that ends above.  The
 * search stays below 2^56, where no architecture puts tag bits that the
 * kernel would strip.  This also tells whether the call exists and is
 * allowed, before anything changes.
 */
static uint64_t target_task_size(void)
{
	uint64_t lo = 1, hi = (1ULL << 56) / page_size, mid;

	/* the documented probe: a NULL arg of size 0 fails with EINVAL */
	if (sys_process_memwatch_probe() != -1 || errno != EINVAL)
		fatal("process_memwatch() is not available in this kernel: %s",
		      strerror(errno));
	if (!end_accepted(lo * page_size))
		fatal("cannot find the end of the address space of process %d",
		      pid);
	if (end_accepted(hi * page_size))
		return hi * page_size;
	/* in pages: lo is accepted, hi is not */
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (end_accepted(mid * page_size))
			lo = mid;
		else
			hi = mid;
	}
	return lo * page_size;
}

/* RANGE: START-END or START+LENGTH, in hex or decimal, page aligned */
static void parse_range(const char *s, uint64_t *start, uint64_t *end,
			uint64_t task_size)
{
	unsigned long long a, b;
	char sep, rest;

	if (sscanf(s, "%lli%c%lli%c", &a, &sep, &b, &rest) != 3 ||
	    (sep != '-' && sep != '+'))
		fatal("invalid range '%s' (START-END or START+LENGTH)", s);
	if (sep == '+')
		b += a;
	if (a % page_size || b <= a)
		fatal("invalid range '%s': start must be page aligned and below end",
		      s);
	if (b > task_size)
		fatal("range '%s' outside the address space of process %d (ends at %#llx)",
		      s, pid, (unsigned long long)task_size);
	*start = a;
	*end = b;
}

/*
 * Every thread of the target in group stop (state T) or dead (Z, X), from
 * /proc.  A ptrace stop (t) is not enough: the tracer may resume it.
 */
static bool target_stopped(void)
{
	char path[64], spath[512], buf[512], *p;
	bool stopped = true;
	struct dirent *de;
	FILE *f;
	DIR *d;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return false;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(spath, sizeof(spath), "%s/%s/stat", path, de->d_name);
		f = fopen(spath, "r");
		if (!f)
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n > 0 ? n : 0] = 0;
		p = strrchr(buf, ')');
		if (!p || p[1] != ' ' || !strchr("TZX", p[2]))
			stopped = false;
	}
	closedir(d);
	return stopped;
}

/*
 * SIGINT, SIGTERM, SIGHUP and SIGQUIT wait while the target is stopped,
 * so that it is never left stopped; they are delivered once it resumes.
 */
static void block_signals(int how)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigprocmask(how, &set, NULL);
}

static void stop_target(void)
{
	double t0 = now();

	block_signals(SIG_BLOCK);
	if (send_signal(SIGSTOP))
		fatal("cannot stop process %d: %s", pid, strerror(errno));
	stopped_by_us = true;
	while (!target_stopped()) {
		if (now() - t0 > 10)
			fatal("process %d did not stop within 10 s", pid);
		usleep(1000);
	}
}

static void resume_target(void)
{
	send_signal(SIGCONT);
	stopped_by_us = false;
	block_signals(SIG_UNBLOCK);
}

/* ---------------------------------------------------------- mapping names */

struct mapping {
	uint64_t start, end;
	char *name;
	uint64_t pages;
};

static struct mapping *maps;
static size_t nr_maps;

/* Read /proc/PID/maps to name mappings; without it everything is "?" */
static void read_maps(void)
{
	char path[64], line[4096], name[4096];
	unsigned long long s, e;
	FILE *f;
	size_t i, cap = 0;
	int n;

	for (i = 0; i < nr_maps; i++)
		free(maps[i].name);
	nr_maps = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		name[0] = 0;
		n = sscanf(line, "%llx-%llx %*s %*s %*s %*s %4095[^\n]",
			   &s, &e, name);
		if (n < 2)
			continue;
		if (nr_maps == cap) {
			cap = cap ? 2 * cap : 64;
			maps = realloc(maps, cap * sizeof(*maps));
			if (!maps)
				fatal("out of memory");
		}
		maps[nr_maps++] = (struct mapping){
			s, e, strdup(name[0] ? name : "[anon]"), 0
		};
	}
	fclose(f);
}

static struct mapping *find_mapping(uint64_t addr)
{
	size_t lo = 0, hi = nr_maps;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (addr < maps[mid].start)
			hi = mid;
		else if (addr >= maps[mid].end)
			lo = mid + 1;
		else
			return &maps[mid];
	}
	return NULL;
}

/* ------------------------------------------------------------------ watch */

struct named {
	const char *name;
	uint64_t pages;
};

static int by_pages(const void *a, const void *b)
{
	const struct named *x = a, *y = b;

	return x->pages < y->pages ? 1 : x->pages > y->pages ? -1 :
	       strcmp(x->name, y->name);
}

/* Pages per mapping name, most written first; returns the count */
static size_t tally(const struct regions *l, struct named **out,
		    uint64_t *unnamed)
{
	struct named *t = NULL;
	size_t i, j, nt = 0;

	*unnamed = 0;
	for (i = 0; i < l->nr; i++) {
		uint64_t a = l->r[i].start;

		while (a < l->r[i].end) {
			struct mapping *m = find_mapping(a);
			uint64_t e = l->r[i].end;

			if (!m) {
				*unnamed += (e - a) / page_size;
				break;
			}
			if (m->end < e)
				e = m->end;
			m->pages += (e - a) / page_size;
			a = e;
		}
	}
	for (i = 0; i < nr_maps; i++) {
		if (!maps[i].pages)
			continue;
		for (j = 0; j < nt && strcmp(t[j].name, maps[i].name); j++)
			;
		if (j == nt) {
			t = realloc(t, (nt + 1) * sizeof(*t));
			if (!t)
				fatal("out of memory");
			t[nt++] = (struct named){ maps[i].name, 0 };
		}
		t[j].pages += maps[i].pages;
	}
	qsort(t, nt, sizeof(*t), by_pages);
	*out = t;
	return nt;
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static const char watch_text[] =
	"usage: %s watch PID [-i SECONDS] [-n COUNT] [-t TOP] [-j] [RANGE]\n"
	"\n"
	"Every SECONDS (default 1), report and re-arm the pages of process PID\n"
	"written since the last interval, in RANGE (START-END or START+LENGTH;\n"
	"default: the whole address space), and print the total and the TOP\n"
	"(default 10) mappings by pages written.  COUNT intervals (default: until\n"
	"interrupted).  -j prints one JSON object per interval.  The first call\n"
	"only arms tracking.  Soft-dirty has one consumer: do not watch a process\n"
	"that tracks its own soft-dirty bits.\n";

static void watch_help(void)
{
	fprintf(stderr, watch_text, prog);
	exit(2);
}

static int cmd_watch(int argc, char **argv)
{
	uint64_t start = 0, end, task_size, unnamed, total = 0;
	double interval = 1, t_prev, t, secs;
	long count = -1, top = 10, k;
	struct regions l = { 0 };
	bool json = false;
	struct named *t_named;
	char b1[32], b2[32];
	size_t i, nt;
	int opt;

	while ((opt = getopt(argc, argv, "i:n:t:jh")) != -1) {
		switch (opt) {
		case 'i':
			interval = atof(optarg);
			break;
		case 'n':
			count = atol(optarg);
			break;
		case 't':
			top = atol(optarg);
			break;
		case 'j':
			json = true;
			break;
		default:
			watch_help();
		}
	}
	if (optind >= argc || argc - optind > 2 || interval <= 0 || top < 0)
		watch_help();
	open_target(argv[optind]);
	task_size = target_task_size();
	end = task_size;
	if (optind + 1 < argc)
		parse_range(argv[optind + 1], &start, &end, task_size);

	/* arm: every page written so far is reported once and re-armed */
	scan(start, end, MEMWATCH_CLEAR_SOFT_DIRTY, PAGE_IS_SOFT_DIRTY,
	     PRESENT_OR_SWAPPED, &l);
	t_prev = now();
	if (!json)
		printf("watching process %d, %#llx-%#llx, every %.3g s (%llu armed)\n",
		       pid, (unsigned long long)start, (unsigned long long)end,
		       interval, (unsigned long long)l.pages);
	fflush(stdout);
	for (k = 1; count < 0 || k <= count; k++) {
		usleep(interval * 1e6);
		scan(start, end, MEMWATCH_CLEAR_SOFT_DIRTY, PAGE_IS_SOFT_DIRTY,
		     PRESENT_OR_SWAPPED, &l);
		t = now();
		secs = t - t_prev;
		t_prev = t;
		total += l.pages;
		read_maps();
		nt = tally(&l, &t_named, &unnamed);
		if (json) {
			printf("{\"interval\":%ld,\"pid\":%d,", k, pid);
			printf("\"seconds\":%.6f,\"pages\":%llu,", secs,
			       (unsigned long long)l.pages);
			printf("\"bytes\":%llu,\"mib_per_s\":%.3f,",
			       (unsigned long long)(l.pages * page_size),
			       l.pages * page_size / secs / 1048576);
			printf("\"total_pages\":%llu,\"mappings\":[",
			       (unsigned long long)total);
			for (i = 0; i < nt && (long)i < top; i++) {
				printf("%s{\"name\":", i ? "," : "");
				json_string(t_named[i].name);
				printf(",\"pages\":%llu}",
				       (unsigned long long)t_named[i].pages);
			}
			printf("],\"unnamed_pages\":%llu}\n",
			       (unsigned long long)unnamed);
		} else {
			printf("#%ld %.2f s: %llu pages written (%s), %s/s, ",
			       k, secs,
			       (unsigned long long)l.pages,
			       human(b1, l.pages * page_size),
			       human(b2, l.pages * page_size / secs));
			printf("%zu mappings\n", nt);
			for (i = 0; i < nt && (long)i < top; i++)
				printf("  %10llu pages %10s  %s\n",
				       (unsigned long long)t_named[i].pages,
				       human(b1, t_named[i].pages * page_size),
				       t_named[i].name);
			if (unnamed)
				printf("  %10llu pages %10s  (unmapped since)\n",
				       (unsigned long long)unnamed,
				       human(b1, unnamed * page_size));
		}
		fflush(stdout);
		free(t_named);
	}
	if (!json)
		printf("total: %llu pages written (%s) in %ld intervals\n",
		       (unsigned long long)total,
		       human(b1, total * page_size), k - 1);
	return 0;
}

/* ---------------------------------------------------------------- precopy */

/*
 * The image: FILE holds page contents in slots, in the order they were
 * first copied; an open-addressing table maps a page address to its slot.
 * FILE.map lists "START-END OFFSET" (hex) for the pages of the image.
 */
struct slot {
	uint64_t addr;		/* 0: free */
	uint64_t off;
	bool live;
	bool stale;		/* written since its copy, which failed */
};

static struct slot *table;
static size_t table_size, table_used;
static uint64_t next_off;
static int image_fd;

static size_t slot_hash(uint64_t addr)
{
	return (addr / page_size * 0x9E3779B97F4A7C15ULL) & (table_size - 1);
}

static struct slot *lookup(uint64_t addr, bool create)
{
	size_t i;

	if (create && 2 * (table_used + 1) > table_size) {
		struct slot *old = table;
		size_t n = table_size;

		table_size = n ? 2 * n : 1 << 16;
		table = calloc(table_size, sizeof(*table));
		if (!table)
			fatal("out of memory");
		for (i = 0; i < n; i++)
			if (old[i].addr)
				*lookup(old[i].addr, false) = old[i];
		free(old);
	}
	if (!table_size)
		return NULL;
	for (i = slot_hash(addr); table[i].addr; i = (i + 1) & (table_size - 1))
		if (table[i].addr == addr)
			return &table[i];
	if (!create)
		return &table[i];	/* the free slot, for rehashing */
	table[i].addr = addr;
	table[i].off = next_off;
	next_off += page_size;
	table_used++;
	return &table[i];
}

static struct slot *find_slot(uint64_t addr)
{
	struct slot *s = table_size ? lookup(addr, false) : NULL;

	return s && s->addr == addr ? s : NULL;
}

struct round_stats {
	uint64_t copied, zero, gone;
};

static void store(uint64_t addr, const void *data)
{
	struct slot *s = lookup(addr, true);

	if (pwrite(image_fd, data, page_size, s->off) != (ssize_t)page_size)
		fatal("writing the image: %s", strerror(errno));
	s->live = true;
	s->stale = false;
}

/*
 * Read [addr, addr + len) of the target into @buf.  A page that cannot be
 * read (unmapped or made inaccessible since it was reported) is marked in
 * @ok as false; the rest is read around it.
 */
static void read_target(uint64_t addr, size_t len, char *buf, bool *ok)
{
	size_t done = 0;

	while (done < len) {
		struct iovec local = { buf + done, len - done };
		struct iovec remote = { (void *)(uintptr_t)(addr + done),
					len - done };
		ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);

		if (n < 0 && errno == ESRCH)
			fatal("process %d has exited", pid);
		if (n < 0 && errno != EFAULT && errno != ENOMEM)
			fatal("process_vm_readv: %s", strerror(errno));
		if (n < 0)
			n = 0;
		n -= n % page_size;
		memset(ok + done / page_size, 1, n / page_size);
		done += n;
		if (done < len) {
			ok[done / page_size] = false;
			done += page_size;
		}
	}
	/* the pid named the target, not a process that took its number */
	if (send_signal(0) && errno == ESRCH)
		fatal("process %d has exited", pid);
}

/* Copy the pages of @l into the image; a page no longer there is dropped */
static void copy_regions(const struct regions *l, struct round_stats *st)
{
	static char *buf;
	static bool ok[COPY_PAGES];
	size_t i, j;

	if (!buf)
		buf = malloc(COPY_PAGES * page_size);
	if (!buf)
		fatal("out of memory");
	for (i = 0; i < l->nr; i++) {
		uint64_t a = l->r[i].start;

		if (!(l->r[i].categories & PRESENT_OR_SWAPPED)) {
			/* a hole: nothing to copy, no longer in the image */
			for (; a < l->r[i].end; a += page_size) {
				struct slot *s = find_slot(a);

				if (s && s->live) {
					s->live = false;
					st->gone++;
				}
			}
			continue;
		}
		if (l->r[i].categories & PAGE_IS_PFNZERO) {
			memset(buf, 0, page_size);
			for (; a < l->r[i].end; a += page_size) {
				store(a, buf);
				st->zero++;
			}
			continue;
		}
		while (a < l->r[i].end) {
			size_t len = l->r[i].end - a;

			if (len > COPY_PAGES * page_size)
				len = COPY_PAGES * page_size;
			read_target(a, len, buf, ok);
			for (j = 0; j < len / page_size; j++) {
				uint64_t pa = a + j * page_size;
				struct slot *s;

				if (ok[j]) {
					store(pa, buf + j * page_size);
					st->copied++;
				} else {
					/*
					 * Reported, so its copy is out of date:
					 * never put it back in the image.
					 */
					s = find_slot(pa);
					if (s && s->live)
						st->gone++;
					if (s) {
						s->live = false;
						s->stale = true;
					}
				}
			}
			a += len;
		}
	}
}

/* --- the clear_refs method, for comparison: pagemap bit 55, clear_refs 4 */

static int pagemap_fd = -1, clear_refs_fd = -1;
static uint64_t zero_pfn;

static void open_clear_refs(void)
{
	char path[64];
	uint64_t pme;
	int fd;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	pagemap_fd = open(path, O_RDONLY);
	snprintf(path, sizeof(path), "/proc/%d/clear_refs", pid);
	clear_refs_fd = open(path, O_WRONLY);
	if (pagemap_fd < 0 || clear_refs_fd < 0)
		fatal("--method=clear_refs: %s: %s", path, strerror(errno));
	/* the zero page's PFN (visible with CAP_SYS_ADMIN), from our own */
	p = mmap(NULL, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fd = open("/proc/self/pagemap", O_RDONLY);
	if (p != MAP_FAILED && fd >= 0 &&
	    !madvise(p, page_size, MADV_POPULATE_READ)) {
		if (pread(fd, &pme, 8, (uintptr_t)p / page_size * 8) == 8 &&
		    (pme & PM_PRESENT))
			zero_pfn = pme & PM_PFN_MASK;
	}
	if (fd >= 0)
		close(fd);
}

/*
 * Pagemap of [start, end) for the pages that are present or swapped (and
 * soft-dirty, if @dirty) as page_region categories.
 */
static void pagemap_scan(uint64_t start, uint64_t end, bool dirty,
			 struct regions *out)
{
	static uint64_t pme[4096];
	size_t i;

	out->nr = 0;
	out->pages = 0;
	read_maps();
	for (i = 0; i < nr_maps; i++) {
		uint64_t a = maps[i].start > start ? maps[i].start : start;
		uint64_t e = maps[i].end < end ? maps[i].end : end;

		while (a < e) {
			size_t n = (e - a) / page_size, j;
			ssize_t got;

			if (n > 4096)
				n = 4096;
			got = pread(pagemap_fd, pme, n * 8, a / page_size * 8);
			if (got <= 0)
				break;
			n = got / 8;
			for (j = 0; j < n; j++) {
				uint64_t v = pme[j], cats = 0;

				if (v & PM_PRESENT)
					cats |= PAGE_IS_PRESENT;
				if (v & PM_SWAP)
					cats |= PAGE_IS_SWAPPED;
				if (v & PM_FILE)
					cats |= PAGE_IS_FILE;
				if (v & PM_SOFT_DIRTY)
					cats |= PAGE_IS_SOFT_DIRTY;
				if ((v & PM_PRESENT) && zero_pfn &&
				    (v & PM_PFN_MASK) == zero_pfn)
					cats |= PAGE_IS_PFNZERO;
				if (!(cats & PRESENT_OR_SWAPPED) ||
				    (dirty && !(cats & PAGE_IS_SOFT_DIRTY)))
					continue;
				regions_add(out, a + j * page_size,
					    a + (j + 1) * page_size, cats);
			}
			a += n * page_size;
		}
	}
}

enum method { M_MEMWATCH, M_CLEAR_REFS };

static enum method method = M_MEMWATCH;
static double stopped_time;	/* clear_refs: the target stopped per round */

/*
 * The pages to copy in a round: all present ones the first time (which
 * arms tracking), then the ones written since.  The clear_refs method
 * stops the target around the read of pagemap and the clear, which are
 * not atomic, and it re-arms the whole process.
 */
static void dirty_pages(uint64_t start, uint64_t end, bool first,
			bool stopped, struct regions *l)
{
	double t;

	if (method == M_MEMWATCH) {
		scan(start, end, MEMWATCH_CLEAR_SOFT_DIRTY,
		     first ? 0 : PAGE_IS_SOFT_DIRTY, PRESENT_OR_SWAPPED, l);
		return;
	}
	t = now();
	if (!stopped)
		stop_target();
	pagemap_scan(start, end, !first, l);
	if (write(clear_refs_fd, "4", 1) != 1)
		fatal("clear_refs: %s", strerror(errno));
	if (!stopped) {
		resume_target();
		stopped_time += now() - t;
	}
}

/* Every present or swapped page now, without changing anything */
static void present_pages(uint64_t start, uint64_t end, struct regions *l)
{
	if (method == M_MEMWATCH)
		scan(start, end, 0, 0, PRESENT_OR_SWAPPED, l);
	else
		pagemap_scan(start, end, false, l);
}

/*
 * The last round, with the target stopped: copy what was written, then
 * settle what soft-dirty does not track.  Discarded pages are no longer
 * present or are the zero page; page cache pages (shared memory, files)
 * can change through another mapping, a truncate or a hole punch: they
 * are copied again, as a dumper takes them from the file.  A page whose
 * copy after a write failed is copied again too.  A page still not in the
 * image was never reported written: tracking lost it, and it is left out
 * so that --verify finds it.
 */
static void final_pages(uint64_t start, uint64_t end, struct regions *l,
			struct round_stats *st, uint64_t *file_pages,
			uint64_t *unseen)
{
	struct regions file = { 0 };
	size_t i, k;

	present_pages(start, end, l);
	for (k = 0; k < table_size; k++)
		if (table[k].addr)
			table[k].live = false;
	for (i = 0; i < l->nr; i++) {
		struct page_region *r = &l->r[i];
		uint64_t a;

		if (r->categories & (PAGE_IS_FILE | PAGE_IS_PFNZERO)) {
			regions_add(&file, r->start, r->end, r->categories);
			continue;
		}
		for (a = r->start; a < r->end; a += page_size) {
			struct slot *s = find_slot(a);

			if (s && s->stale)
				regions_add(&file, a, a + page_size,
					    r->categories);
			else if (s)
				s->live = true;
			else
				(*unseen)++;
		}
	}
	*file_pages = file.pages;
	copy_regions(&file, st);
	free(file.r);
}

static int by_addr(const void *a, const void *b)
{
	const struct slot *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* FILE.map: one "START-END OFFSET" line per run; returns the runs */
static uint64_t write_map(const char *file, uint64_t *pages)
{
	struct slot *s = malloc((table_used + 1) * sizeof(*s));
	size_t i, n = 0;
	uint64_t runs = 0;
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s.map", file);
	f = fopen(path, "w");
	if (!f || !s)
		fatal("%s: %s", path, strerror(errno));
	for (i = 0; i < table_size; i++)
		if (table[i].addr && table[i].live)
			s[n++] = table[i];
	qsort(s, n, sizeof(*s), by_addr);
	fprintf(f, "# memwatch precopy of process %d: START-END FILE-OFFSET, page size %lu\n",
		pid, page_size);
	for (i = 0; i < n; runs++) {
		size_t j = i + 1;

		while (j < n && s[j].addr == s[j - 1].addr + page_size &&
		       s[j].off == s[j - 1].off + page_size)
			j++;
		fprintf(f, "%llx-%llx %llx\n", (unsigned long long)s[i].addr,
			(unsigned long long)(s[j - 1].addr + page_size),
			(unsigned long long)s[i].off);
		i = j;
	}
	fclose(f);
	free(s);
	*pages = n;
	return runs;
}

/*
 * Compare every page of @l (present in the stopped target) with the image:
 * pages and bytes that differ, pages missing from the image and pages that
 * could not be read.
 */
static void verify(const struct regions *l, uint64_t *pages, uint64_t *diff_pages,
		   uint64_t *diff_bytes, uint64_t *missing, uint64_t *unreadable)
{
	char *buf = malloc(COPY_PAGES * page_size), *img = malloc(page_size);
	static bool ok[COPY_PAGES];
	size_t i, j, b;

	if (!buf || !img)
		fatal("out of memory");
	for (i = 0; i < l->nr; i++) {
		uint64_t a = l->r[i].start;

		while (a < l->r[i].end) {
			size_t len = l->r[i].end - a;

			if (len > COPY_PAGES * page_size)
				len = COPY_PAGES * page_size;
			read_target(a, len, buf, ok);
			for (j = 0; j < len / page_size; j++) {
				struct slot *s = find_slot(a + j * page_size);
				char *p = buf + j * page_size;
				uint64_t d = 0;

				if (!ok[j]) {
					(*unreadable)++;
					continue;
				}
				(*pages)++;
				if (!s || !s->live) {
					memset(img, 0, page_size);
					(*missing)++;
				} else if (pread(image_fd, img, page_size, s->off) !=
					   (ssize_t)page_size) {
					fatal("reading the image: %s",
					      strerror(errno));
				}
				for (b = 0; b < page_size; b++)
					d += p[b] != img[b];
				if (d || !s || !s->live)
					(*diff_pages)++;
				*diff_bytes += d;
			}
			a += len;
		}
	}
	free(buf);
	free(img);
}

static const char precopy_text[] =
	"usage: %s precopy PID -o FILE [-r MAXROUNDS] [--verify] [--stop=sigstop]\n"
	"                  [--method=memwatch|clear_refs] [RANGE]\n"
	"\n"
	"Copy the memory of process PID into FILE while it runs, as an iterative\n"
	"pre-dump does.  Round 0 arms tracking and copies every present or\n"
	"swapped page; each later round copies the pages written since the round\n"
	"before, until the number of written pages stops shrinking or after\n"
	"MAXROUNDS rounds (default 8).  Then the target is stopped (SIGSTOP), the\n"
	"last round runs and the target is resumed (SIGCONT).  FILE holds the\n"
	"pages, FILE.map lists \"START-END OFFSET\" for each run of them.\n"
	"\n"
	"--verify compares the image, byte for byte, with the memory of the\n"
	"stopped target, before it resumes.  Only pages that are mapped,\n"
	"present or swapped and readable are compared; a page in the target that\n"
	"is not in the image counts as differing.  Page cache and zero pages are\n"
	"copied again in the last round, so this checks the tracking of private\n"
	"memory.\n"
	"\n"
	"Soft-dirty has one consumer: do not copy a process that tracks its own\n"
	"soft-dirty bits (bdwgc's incremental mode, a CRIU pre-dump), or both\n"
	"lose writes.  SIGSTOP does not stop asynchronous I/O in flight.\n"
	"\n"
	"--method=clear_refs runs the same loop with /proc/PID/pagemap and\n"
	"/proc/PID/clear_refs (the target stopped around each read and clear,\n"
	"every page re-armed); it is there for comparison only.\n"
	"\n"
	"RANGE (START-END or START+LENGTH) limits the copy; default: the whole\n"
	"address space.\n";

static void precopy_help(void)
{
	fprintf(stderr, precopy_text, prog);
	exit(2);
}

static int cmd_precopy(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "verify", no_argument, NULL, 'V' },
		{ "stop", required_argument, NULL, 'S' },
		{ "method", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	uint64_t start = 0, end, task_size, prev = UINT64_MAX, total = 0;
	uint64_t file_pages = 0, unseen = 0, nmap, npages;
	struct regions l = { 0 };
	const char *file = NULL;
	bool do_verify = false;
	long maxrounds = 8, round;
	double t, t_clear, t_stop = 0;
	char b1[32], b2[32];
	int opt, ret = 0;

	while ((opt = getopt_long(argc, argv, "o:r:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			file = optarg;
			break;
		case 'r':
			maxrounds = atol(optarg);
			break;
		case 'V':
			do_verify = true;
			break;
		case 'S':
			if (strcmp(optarg, "sigstop"))
				fatal("--stop: only 'sigstop' is supported");
			break;
		case 'M':
			if (!strcmp(optarg, "memwatch"))
				method = M_MEMWATCH;
			else if (!strcmp(optarg, "clear_refs"))
				method = M_CLEAR_REFS;
			else
				fatal("--method: 'memwatch' or 'clear_refs'");
			break;
		default:
			precopy_help();
		}
	}
	if (!file || optind >= argc || argc - optind > 2 || maxrounds < 1)
		precopy_help();
	open_target(argv[optind]);
	if (method == M_CLEAR_REFS) {
		/* needs no process_memwatch(): the end of the last mapping */
		open_clear_refs();
		read_maps();
		if (!nr_maps)
			fatal("--method=clear_refs: cannot read /proc/%d/maps", pid);
		task_size = maps[nr_maps - 1].end;
	} else {
		task_size = target_task_size();
	}
	end = task_size;
	if (optind + 1 < argc)
		parse_range(argv[optind + 1], &start, &end, task_size);
	image_fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (image_fd < 0)
		fatal("%s: %s", file, strerror(errno));

	printf("precopy of process %d, %#llx-%#llx, method %s, at most %ld rounds\n",
	       pid, (unsigned long long)start, (unsigned long long)end,
	       method == M_MEMWATCH ? "process_memwatch" : "clear_refs",
	       maxrounds);
	t_clear = now();
	for (round = 0; ; round++) {
		struct round_stats st = { 0 };
		bool last = round == maxrounds;
		uint64_t written;
		double since;

		if (last) {
			t_stop = now();
			stop_target();
		}
		t = now();
		since = t - t_clear;
		dirty_pages(start, end, round == 0, last, &l);
		t_clear = now();
		written = l.pages;
		copy_regions(&l, &st);
		if (last)
			final_pages(start, end, &l, &st, &file_pages, &unseen);
		total += st.copied + st.zero;
		printf("round %ld%s: %llu pages %s, %llu copied (%s), ",
		       round, last ? " (stopped)" : "",
		       (unsigned long long)written,
		       round ? "written" : "present",
		       (unsigned long long)st.copied,
		       human(b1, st.copied * page_size));
		printf("%llu zero, %llu gone, %.1f ms",
		       (unsigned long long)st.zero, (unsigned long long)st.gone,
		       (now() - t) * 1e3);
		if (round)
			printf(", dirty rate %s/s",
			       human(b2, written * page_size / since));
		printf("\n");
		fflush(stdout);
		if (last)
			break;
		/* stop iterating once the written set stops shrinking */
		if (round && written >= prev)
			maxrounds = round + 1;
		if (round)
			prev = written;
	}
	if (file_pages || unseen) {
		printf("last round: %llu page cache pages copied again, ",
		       (unsigned long long)file_pages);
		printf("%llu pages never reported written\n",
		       (unsigned long long)unseen);
	}
	nmap = write_map(file, &npages);
	printf("image: %llu pages in %llu runs, ",
	       (unsigned long long)npages, (unsigned long long)nmap);
	printf("%llu pages copied in all (%s) in %ld rounds",
	       (unsigned long long)total, human(b1, total * page_size),
	       round + 1);
	if (method == M_CLEAR_REFS)
		printf(", target stopped %.1f ms for clear_refs", stopped_time * 1e3);
	printf("\n");

	if (do_verify) {
		uint64_t pages = 0, dpages = 0, dbytes = 0, missing = 0,
			 unreadable = 0;

		present_pages(start, end, &l);
		verify(&l, &pages, &dpages, &dbytes, &missing, &unreadable);
		printf("verify: %llu pages compared, %llu differ (%llu bytes), ",
		       (unsigned long long)pages, (unsigned long long)dpages,
		       (unsigned long long)dbytes);
		printf("%llu missing from the image, %llu unreadable\n",
		       (unsigned long long)missing,
		       (unsigned long long)unreadable);
		if (dpages)
			ret = 1;
	}
	printf("target stopped for %.1f ms\n", (now() - t_stop) * 1e3);
	resume_target();
	close(image_fd);
	free(l.r);
	return ret;
}

static const char help_text[] =
	"usage: %s watch PID [-i SECONDS] [-n COUNT] [-t TOP] [-j] [RANGE]\n"
	"       %s precopy PID -o FILE [-r MAXROUNDS] [--verify] [--stop=sigstop]\n"
	"                      [--method=memwatch|clear_refs] [RANGE]\n"
	"\n"
	"Watch or copy the memory a running process writes, with process_memwatch(2).\n"
	"'%s COMMAND -h' describes a command.\n";

static void help(void)
{
	fprintf(stderr, help_text, prog, prog, prog);
	exit(2);
}

int main(int argc, char **argv)
{
	page_size = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		help();
	if (!strcmp(argv[1], "watch"))
		return cmd_watch(argc - 1, argv + 1);
	if (!strcmp(argv[1], "precopy"))
		return cmd_precopy(argc - 1, argv + 1);
	help();
	return 2;
}
