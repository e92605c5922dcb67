/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * signalfd — a signalfd reading signals sent after the restore.
 *
 * SIGUSR2, SIGWINCH and SIGRTMIN+2 are blocked.
 *   fd 20   signalfd for {SIGUSR2, SIGRTMIN+2}, SFD_NONBLOCK
 *   fd 21   signalfd for {SIGWINCH}, blocking
 * Before ready, SIGRTMIN+2 is queued with value 4242 (pending over the
 * dump).  After SIGUSR1 the workload queues SIGUSR2 (value 77) and
 * SIGWINCH: fd 20 must read SIGRTMIN+2/4242 and SIGUSR2/77 and nothing
 * else, fd 21 SIGWINCH.
 */
#include "fsutil.h"

#include <poll.h>
#include <sys/signalfd.h>

static int read_sig(int fd, struct signalfd_siginfo *si)
{
	return read(fd, si, sizeof(*si)) == (ssize_t)sizeof(*si) ? 0 : -1;
}

int main(void)
{
	sigset_t block, m20, m21, pend;
	struct signalfd_siginfo si;
	union sigval sv;
	char want[32];

	wl_init("fs/signalfd");
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGWINCH);
	sigaddset(&block, SIGRTMIN + 2);
	if (sigprocmask(SIG_BLOCK, &block, NULL))
		wl_die("sigprocmask: %s", strerror(errno));
	sigemptyset(&m20);
	sigaddset(&m20, SIGUSR2);
	sigaddset(&m20, SIGRTMIN + 2);
	sigemptyset(&m21);
	sigaddset(&m21, SIGWINCH);
	fs_place(signalfd(-1, &m20, SFD_NONBLOCK), 20, "signalfd 20");
	fs_place(signalfd(-1, &m21, 0), 21, "signalfd 21");
	sv.sival_int = 4242;
	if (sigqueue(getpid(), SIGRTMIN + 2, sv))
		wl_die("sigqueue: %s", strerror(errno));

	wl_ready();
	wl_wait_usr1();

	WL_CHECK(!strcmp(fs_fdlink(20), "anon_inode:[signalfd]"), "fd 20 is %s", fs_fdlink(20));
	snprintf(want, sizeof(want), "sigmask:\t%016llx", (1ULL << (SIGUSR2 - 1)) | (1ULL << (SIGRTMIN + 2 - 1)));
	WL_CHECK(strstr(fs_fdinfo(20), want) != NULL, "fd 20 mask: %s", fs_fdinfo(20));
	WL_CHECK(fs_getfl(20) & O_NONBLOCK, "fd 20 lost O_NONBLOCK");
	WL_CHECK(!(fs_getfl(21) & O_NONBLOCK), "fd 21 became O_NONBLOCK");

	sv.sival_int = 77;
	WL_CHECK(sigqueue(getpid(), SIGUSR2, sv) == 0, "sigqueue SIGUSR2: %s", strerror(errno));
	WL_CHECK(kill(getpid(), SIGWINCH) == 0, "kill SIGWINCH: %s", strerror(errno));

	/* standard signals are dequeued before real-time ones */
	memset(&si, 0, sizeof(si));
	WL_CHECK(read_sig(20, &si) == 0 && si.ssi_signo == (uint32_t)SIGUSR2 && si.ssi_int == 77,
		 "fd 20 read signal %u value %d (%s), want SIGUSR2/77", si.ssi_signo, si.ssi_int, strerror(errno));
	memset(&si, 0, sizeof(si));
	WL_CHECK(read_sig(20, &si) == 0 && si.ssi_signo == (uint32_t)(SIGRTMIN + 2) && si.ssi_int == 4242,
		 "fd 20 read signal %u value %d (%s), want SIGRTMIN+2/4242 queued before the dump", si.ssi_signo,
		 si.ssi_int, strerror(errno));
	errno = 0;
	WL_CHECK(read_sig(20, &si) < 0 && errno == EAGAIN, "fd 20 read one more signal %u", si.ssi_signo);
	{
		int r = fs_poll(21, POLLIN, 1000);

		WL_CHECK(r == 1, "fd 21 not readable: SIGWINCH did not reach it");
		memset(&si, 0, sizeof(si));
		if (r == 1)
			WL_CHECK(read_sig(21, &si) == 0 && si.ssi_signo == (uint32_t)SIGWINCH, "fd 21 read signal %u",
				 si.ssi_signo);
	}
	sigpending(&pend);
	WL_CHECK(!sigismember(&pend, SIGUSR2) && !sigismember(&pend, SIGWINCH), "signals still pending");
	wl_finish();
}
