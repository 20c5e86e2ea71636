// SPDX-License-Identifier: GPL-2.0
/*
 * mwrun: run a command as another user or without process_memwatch(), for
 * the bad-input tests of tools/mm/memwatch in the tool guest.
 *
 * Usage: mwrun [-u UID] [-n] COMMAND [ARG...]
 * -u: setgid() and setuid() to UID (no ptrace access to root's processes).
 * -n: system call 463 fails with ENOSYS, as on a kernel without it: the
 *     command runs under ptrace, and each entry to 463 has its number
 *     replaced by -1 (x86-64 only; the test kernel has no seccomp).
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>

#define NR_MEMWATCH	463

static int run_without_memwatch(char **argv)
{
	long off = offsetof(struct user_regs_struct, orig_rax);
	int status, entry = 0, sig = 0;
	pid_t child;

	child = fork();
	if (child < 0)
		return 1;
	if (!child) {
		ptrace(PTRACE_TRACEME, 0, NULL, NULL);
		raise(SIGSTOP);
		execv(argv[0], argv);
		perror("mwrun: exec");
		_exit(127);
	}
	waitpid(child, &status, 0);
	ptrace(PTRACE_SETOPTIONS, child, NULL, (void *)PTRACE_O_TRACESYSGOOD);
	for (;;) {
		ptrace(PTRACE_SYSCALL, child, NULL, (void *)(long)sig);
		sig = 0;
		if (waitpid(child, &status, 0) < 0)
			return 1;
		if (WIFEXITED(status))
			return WEXITSTATUS(status);
		if (WIFSIGNALED(status))
			return 128 + WTERMSIG(status);
		if (WSTOPSIG(status) != (SIGTRAP | 0x80)) {
			/* pass signals on, but not the SIGTRAP of execve() */
			if (WSTOPSIG(status) != SIGTRAP)
				sig = WSTOPSIG(status);
			continue;
		}
		entry = !entry;
		if (entry && ptrace(PTRACE_PEEKUSER, child, (void *)off, NULL) ==
			     NR_MEMWATCH)
			ptrace(PTRACE_POKEUSER, child, (void *)off, (void *)-1L);
	}
}

int main(int argc, char **argv)
{
	int opt, nomemwatch = 0;

	while ((opt = getopt(argc, argv, "+u:n")) != -1) {
		switch (opt) {
		case 'u':
			if (setgid(atoi(optarg)) || setuid(atoi(optarg))) {
				perror("mwrun: setuid");
				return 1;
			}
			break;
		case 'n':
			nomemwatch = 1;
			break;
		default:
			return 2;
		}
	}
	if (optind >= argc)
		return 2;
	if (nomemwatch)
		return run_without_memwatch(argv + optind);
	execv(argv[optind], argv + optind);
	perror("mwrun: exec");
	return 127;
}
