/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * nsrun — run a command as the only child of a fresh init in a new pid and
 * mount namespace.
 *
 *     nsrun CMD [ARGS...]
 *
 * The caller unshares CLONE_NEWPID|CLONE_NEWNS, makes every mount private
 * (so nothing mounted inside leaks out) and forks.  The child is PID 1 of
 * the new pid namespace: it mounts a fresh proc on /proc, marks itself a
 * child subreaper, forks and execs CMD, and then reaps every process that
 * ends up as its child (orphans of the namespace are reparented to it,
 * processes restored with `ckpt restore -d` too).  When CMD exits, PID 1
 * exits with CMD's status, and the kernel kills whatever else still runs
 * in the namespace.
 *
 * Exit status: CMD's exit status, 128+N when CMD was killed by signal N,
 * 125 when nsrun itself failed, 127 when CMD could not be executed.
 *
 * SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to nsrun are forwarded to the
 * namespace's init, which forwards them to CMD.  If nsrun dies, the init
 * gets SIGKILL (PR_SET_PDEATHSIG), which tears the namespace down.
 */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_NSRUN 125
#define EXIT_NOEXEC 127

static volatile pid_t forward_to;

static void die(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	fprintf(stderr, "nsrun: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", strerror(e));
	exit(EXIT_NSRUN);
}

static void forward_signal(int sig)
{
	int e = errno;

	if (forward_to > 0)
		kill(forward_to, sig);
	errno = e;
}

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

static void install_forwarders(void)
{
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		if (sigaction(forwarded[i], &sa, NULL))
			die("sigaction");
}

static void reset_forwarders(void)
{
	size_t i;

	for (i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		signal(forwarded[i], SIG_DFL);
}

static int status_to_exit(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_NSRUN;
}

/* The command name of a (zombie) process, for messages. */
static void comm_of(pid_t pid, char *buf, size_t size)
{
	char path[64];
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, size - 1);
		close(fd);
	}
	if (n <= 0) {
		snprintf(buf, size, "?");
		return;
	}
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
}

/* PID 1 of the new namespace. */
static int ns_init(char **argv)
{
	sigset_t all, old;
	pid_t cmd, pid;
	int status, cmd_status = 0;

	/* (getppid() is 0 here: the parent lives outside the namespace.) */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL))
		die("PR_SET_PDEATHSIG");

	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
		die("mount proc on /proc");
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		die("PR_SET_CHILD_SUBREAPER");

	/* Block the forwarded signals over fork so none is lost between the
	 * fork and the moment forward_to is set. */
	sigemptyset(&all);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&all, forwarded[i]);
	sigprocmask(SIG_BLOCK, &all, &old);
	install_forwarders();

	cmd = fork();
	if (cmd < 0)
		die("fork");
	if (cmd == 0) {
		reset_forwarders();
		sigprocmask(SIG_SETMASK, &old, NULL);
		prctl(PR_SET_PDEATHSIG, 0);
		execvp(argv[0], argv);
		fprintf(stderr, "nsrun: exec %s: %s\n", argv[0], strerror(errno));
		_exit(EXIT_NOEXEC);
	}
	forward_to = cmd;
	sigprocmask(SIG_SETMASK, &old, NULL);

	/* Reap everything; leave when CMD is gone. */
	for (;;) {
		siginfo_t si;
		char comm[64];

		memset(&si, 0, sizeof(si));
		if (waitid(P_ALL, 0, &si, WEXITED | WNOWAIT | __WALL)) {
			if (errno == EINTR)
				continue;
			die("waitid");
		}
		comm_of(si.si_pid, comm, sizeof(comm));
		pid = waitpid(si.si_pid, &status, __WALL);
		if (pid < 0) {
			if (errno == EINTR || errno == ECHILD)
				continue;
			die("waitpid");
		}
		if (pid == cmd) {
			cmd_status = status;
			break;
		}
		/* An orphan (a test workload, a restored task) died of a signal
		 * other than the SIGKILL of a dump: say so, for the test logs. */
		if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
			fprintf(stderr, "nsrun: pid %d (%s) killed by signal %d (%s)%s\n", (int)pid, comm,
				WTERMSIG(status), strsignal(WTERMSIG(status)),
				WCOREDUMP(status) ? ", core dumped" : "");
	}
	/* Exiting kills every other process of the namespace. */
	return status_to_exit(cmd_status);
}

int main(int argc, char **argv)
{
	sigset_t all, old;
	pid_t child, pid;
	int status;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fprintf(stderr, "usage: nsrun CMD [ARGS...]\n"
				"Runs CMD under a fresh init in new pid and mount namespaces.\n");
		return argc < 2 ? EXIT_NSRUN : 0;
	}

	if (unshare(CLONE_NEWPID | CLONE_NEWNS))
		die("unshare(CLONE_NEWPID|CLONE_NEWNS)");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		die("make / rprivate");

	sigemptyset(&all);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&all, forwarded[i]);
	sigprocmask(SIG_BLOCK, &all, &old);
	install_forwarders();

	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		reset_forwarders();
		sigprocmask(SIG_SETMASK, &old, NULL);
		_exit(ns_init(argv + 1));
	}
	forward_to = child;
	sigprocmask(SIG_SETMASK, &old, NULL);

	for (;;) {
		pid = waitpid(child, &status, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			die("waitpid");
		}
		break;
	}
	return status_to_exit(status);
}
