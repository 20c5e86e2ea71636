// SPDX-License-Identifier: GPL-2.0
/*
 * perm: the permission matrix of process_memwatch().
 *
 * Per SPEC: reporting needs PTRACE_MODE_READ_REALCREDS, clearing needs
 * PTRACE_MODE_ATTACH_REALCREDS, and a failed check is EPERM.  Each cell
 * starts a fresh target (uid, dumpable, PR_SET_PTRACER, PID namespace)
 * whose 8 pages have the soft-dirty pattern 10010100, and a caller (uid,
 * real/effective uid split, CAP_SYS_PTRACE, PID namespace, parent of the
 * target or not) that makes one call: READ (report only), CLEAR (report
 * and clear) or RESET (clear, vec NULL).  The expected errno is checked,
 * then root reads the target's pattern: unchanged after READ or a denied
 * call, all clean after an allowed clear.  Yama cells set
 * /proc/sys/kernel/yama/ptrace_scope to 1 and 2 and restore it; scope 3
 * cannot be lowered again, so its cells run only with -3, last.
 *
 * Usage: perm [-3] [-v]    (as root)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <linux/capability.h>

#include "common.h"

#define NP		8
#define PATTERN		"10010100"
#define YAMA		"/proc/sys/kernel/yama/ptrace_scope"

enum op { READ, CLEAR, RESET };
static const char * const op_names[] = { "read", "clear", "reset" };

struct cell {
	const char *name;
	int scope;		/* Yama ptrace_scope, -1 for "leave at 0" */
	int t_uid;		/* target uid (and gid) */
	int t_undumpable;
	int t_ptracer_any;
	int t_pidns;		/* target in a child PID namespace */
	int c_ruid, c_euid;	/* caller real and effective uid */
	int c_cap;		/* caller keeps CAP_SYS_PTRACE only */
	int c_parent;		/* caller is the target's parent */
	int c_pidns;		/* caller in a child PID namespace */
	int allow_read, allow_change;
};

#define ROOT 0
#define U1 1000
#define U2 1001

static const struct cell cells[] = {
	{ "same uid", 0, U1, 0, 0, 0, U1, U1, 0, 0, 0, 1, 1 },
	{ "other uid", 0, U1, 0, 0, 0, U2, U2, 0, 0, 0, 0, 0 },
	{ "other uid with CAP_SYS_PTRACE", 0, U1, 0, 0, 0, U2, U2, 1, 0, 0, 1, 1 },
	{ "root", 0, U1, 0, 0, 0, ROOT, ROOT, 0, 0, 0, 1, 1 },
	{ "same uid, non-dumpable target", 0, U1, 1, 0, 0, U1, U1, 0, 0, 0, 0, 0 },
	{ "root, non-dumpable target", 0, U1, 1, 0, 0, ROOT, ROOT, 0, 0, 0, 1, 1 },
	{ "CAP_SYS_PTRACE, non-dumpable target", 0, U1, 1, 0, 0, U2, U2, 1, 0, 0, 1, 1 },
	{ "real uid other, effective uid same (REALCREDS)", 0, U1, 0, 0, 0, U2, U1, 0, 0, 0, 0, 0 },
	{ "real uid same, effective uid other (REALCREDS)", 0, U1, 0, 0, 0, U1, U2, 0, 0, 0, 1, 1 },
	{ "same uid, target in child pidns", 0, U1, 0, 0, 1, U1, U1, 0, 0, 0, 1, 1 },
	{ "other uid, target in child pidns", 0, U1, 0, 0, 1, U2, U2, 0, 0, 0, 0, 0 },
	{ "same uid, caller in child pidns", 0, U1, 0, 0, 0, U1, U1, 0, 0, 1, 1, 1 },
	{ "yama 1, same uid, not parent", 1, U1, 0, 0, 0, U1, U1, 0, 0, 0, 1, 0 },
	{ "yama 1, same uid, parent", 1, U1, 0, 0, 0, U1, U1, 0, 1, 0, 1, 1 },
	{ "yama 1, same uid, PR_SET_PTRACER_ANY", 1, U1, 0, 1, 0, U1, U1, 0, 0, 0, 1, 1 },
	{ "yama 1, CAP_SYS_PTRACE, not parent", 1, U1, 0, 0, 0, U2, U2, 1, 0, 0, 1, 1 },
	{ "yama 1, other uid, parent", 1, U1, 0, 0, 0, U2, U2, 0, 1, 0, 0, 0 },
	{ "yama 2, same uid, parent", 2, U1, 0, 0, 0, U1, U1, 0, 1, 0, 1, 0 },
	{ "yama 2, CAP_SYS_PTRACE", 2, U1, 0, 0, 0, U2, U2, 1, 0, 0, 1, 1 },
	{ "yama 2, root", 2, U1, 0, 0, 0, ROOT, ROOT, 0, 0, 0, 1, 1 },
	{ "yama 3, root", 3, U1, 0, 0, 0, ROOT, ROOT, 0, 0, 0, 1, 0 },
	{ "yama 3, same uid, parent", 3, U1, 0, 0, 0, U1, U1, 0, 1, 0, 1, 0 },
};

#define NCELLS (sizeof(cells) / sizeof(cells[0]))

/* Shared with the target and the caller */
struct shm {
	uintptr_t addr;		/* the target's 8 pages */
	pid_t tpid;		/* the target, in the root PID namespace */
	int ready;
	int caller_errno;	/* 0: success, -1: setup failed */
	int called;		/* the caller has made its call */
	char where[64];
};

static struct shm *shm;
static int verbose, yama_orig = -1;

static long call(int pidfd, uintptr_t addr, enum op op, char *pattern)
{
	struct page_region vec[NP];
	struct memwatch_arg arg = {
		.start = addr, .end = addr + NP * 4096UL,
		.category_mask = SD, .return_mask = SD,
	};
	long n, i;
	size_t p;

	if (op != RESET) {
		arg.vec = (uintptr_t)vec;
		arg.vec_len = NP;
	}
	n = process_memwatch(pidfd, &arg, sizeof(arg),
			     op == READ ? 0 : MEMWATCH_CLEAR_SOFT_DIRTY);
	if (n >= 0 && pattern) {
		memset(pattern, '0', NP);
		pattern[NP] = 0;
		for (i = 0; i < n; i++)
			for (p = (vec[i].start - addr) / 4096;
			     p < (vec[i].end - addr) / 4096; p++)
				pattern[p] = '1';
	}
	return n;
}

static void set_ids(int ruid, int euid)
{
	if (setgroups(0, NULL) || setresgid(ruid, euid, euid) ||
	    setresuid(ruid, euid, euid)) {
		shm->caller_errno = -1;
		_exit(1);
	}
}

/* The target: a fresh mapping with soft-dirty pattern 10010100 */
static void target(const struct cell *c)
{
	int pidfd, i;
	char *p;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (c->t_uid)
		set_ids(c->t_uid, c->t_uid);
	/* a uid change made it non-dumpable (suid_dumpable 0) */
	prctl(PR_SET_DUMPABLE, !c->t_undumpable);
	if (c->t_ptracer_any)
		prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY);
	p = mmap(NULL, NP * 4096, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(p, 1, NP * 4096);
	pidfd = sys_pidfd_open(getpid(), 0);
	if (p == MAP_FAILED || pidfd < 0 || call(pidfd, (uintptr_t)p, RESET, NULL))
		_exit(1);
	for (i = 0; i < NP; i++)
		if (PATTERN[i] == '1')
			p[i * 4096] = 2;
	shm->addr = (uintptr_t)p;
	__atomic_store_n(&shm->ready, 1, __ATOMIC_RELEASE);
	for (;;)
		pause();
}

static pid_t spawn(bool pidns)
{
	if (pidns)
		return syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
	return fork();
}

static pid_t start_target(const struct cell *c)
{
	pid_t pid = spawn(c->t_pidns);

	if (pid == 0)
		target(c);
	while (pid > 0 && !__atomic_load_n(&shm->ready, __ATOMIC_ACQUIRE))
		usleep(1000);
	shm->tpid = pid;
	return pid;
}

static void keep_ptrace_cap(void)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct d[2] = { { 0 } };

	d[0].effective = d[0].permitted = 1U << CAP_SYS_PTRACE;
	if (syscall(SYS_capset, &h, d)) {
		shm->caller_errno = -1;
		_exit(1);
	}
}

/* The caller: becomes who the cell says, makes one call, reports errno */
static void caller(const struct cell *c, enum op op, int pidfd)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (c->c_parent) {
		if (start_target(c) < 0)
			_exit(1);
		pidfd = sys_pidfd_open(shm->tpid, 0);
	}
	if (c->c_cap)
		prctl(PR_SET_KEEPCAPS, 1);
	if (c->c_ruid || c->c_euid)
		set_ids(c->c_ruid, c->c_euid);
	if (c->c_cap)
		keep_ptrace_cap();
	shm->caller_errno = call(pidfd, shm->addr, op, NULL) < 0 ? errno : 0;
	__atomic_store_n(&shm->called, 1, __ATOMIC_RELEASE);
	/* keep a target that is our child until root has looked at it */
	while (__atomic_load_n(&shm->ready, __ATOMIC_ACQUIRE) != 2)
		usleep(1000);
	_exit(0);
}

static int set_scope(int scope)
{
	char buf[4];
	int fd = open(YAMA, O_RDWR), n;

	if (fd < 0)
		return -1;
	if (yama_orig < 0 && (n = read(fd, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = 0;
		yama_orig = atoi(buf);
	}
	n = snprintf(buf, sizeof(buf), "%d", scope);
	n = pwrite(fd, buf, n, 0) == n ? 0 : -1;
	close(fd);
	return n;
}

static void run_cell(const struct cell *c, enum op op)
{
	bool allowed = op == READ ? c->allow_read : c->allow_change;
	int expect = allowed ? 0 : EPERM, status, pidfd = -1, e;
	char pattern[NP + 1] = "", want[NP + 1];
	pid_t tpid = -1, cpid;
	bool ok;

	memset(shm, 0, sizeof(*shm));
	if (!c->c_parent) {
		tpid = start_target(c);
		pidfd = sys_pidfd_open(tpid, 0);
	}
	cpid = spawn(c->c_pidns);
	if (cpid == 0)
		caller(c, op, pidfd);
	/* wait for the call (or the caller's failure), look, release */
	while (!__atomic_load_n(&shm->called, __ATOMIC_ACQUIRE)) {
		if (waitpid(cpid, &status, WNOHANG) == cpid) {
			cpid = -1;
			break;
		}
		usleep(1000);
	}
	e = cpid < 0 ? -1 : shm->caller_errno;
	if (c->c_parent && shm->tpid > 0) {
		tpid = shm->tpid;
		pidfd = sys_pidfd_open(tpid, 0);
	}
	if (pidfd >= 0)
		call(pidfd, shm->addr, READ, pattern);
	__atomic_store_n(&shm->ready, 2, __ATOMIC_RELEASE);
	if (cpid > 0)
		waitpid(cpid, &status, 0);

	strcpy(want, PATTERN);
	if (allowed && op != READ)
		strcpy(want, "00000000");
	ok = e == expect && !strcmp(pattern, want);
	tap_result(ok, "perm: %s: %s %s (got %s, target %s, want %s)",
		   c->name, op_names[op], allowed ? "allowed" : "EPERM",
		   e < 0 ? "setup failure" : e ? strerrorname_np(e) : "success",
		   pattern, want);
	if (tpid > 0) {
		kill(tpid, SIGKILL);
		waitpid(tpid, NULL, 0);
	}
	if (pidfd >= 0)
		close(pidfd);
}

int main(int argc, char **argv)
{
	bool scope3 = false, have_yama;
	unsigned int i, n = 0;
	int opt, op;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "3v")) != -1) {
		if (opt == '3')
			scope3 = true;
		else if (opt == 'v')
			verbose = 1;
		else
			return 2;
	}
	for (i = 0; i < NCELLS; i++)
		if (cells[i].scope < 3 || scope3)
			n += 3;
	tap_plan(n);
	if (!memwatch_supported() || geteuid()) {
		for (i = 0; i < n; i++)
			tap_skip("perm: %s", geteuid() ? "needs root" :
				 "process_memwatch not supported");
		return tap_exit();
	}
	/* orphaned targets of "parent" callers come back to us */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	have_yama = !access(YAMA, W_OK);
	for (i = 0; i < NCELLS; i++) {
		const struct cell *c = &cells[i];

		if (c->scope == 3 && !scope3)
			continue;
		if (have_yama && set_scope(c->scope)) {
			printf("# cannot set ptrace_scope %d\n", c->scope);
			have_yama = false;
		}
		for (op = READ; op <= RESET; op++) {
			if (c->scope > 0 && !have_yama) {
				tap_skip("perm: %s: %s (no Yama)", c->name,
					 op_names[op]);
				continue;
			}
			run_cell(c, op);
		}
	}
	if (have_yama && yama_orig >= 0 && yama_orig < 3 && !scope3)
		set_scope(yama_orig);
	return tap_exit();
}
