/* SPDX-License-Identifier: GPL-2.0-only */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel.h"
#include "log.h"
#include "ptrace.h"

int ptrace_wait_stop(pid_t tid, int *sig, int *event)
{
	int status;
	for (;;) {
		pid_t r = waitpid(tid, &status, __WALL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (WIFEXITED(status) || WIFSIGNALED(status))
			return -ESRCH;
		if (WIFSTOPPED(status)) {
			*sig = WSTOPSIG(status);
			*event = status >> 16;
			return 0;
		}
	}
}

/* PTRACE_CONT clears the single-step flag (TF) a PTRACE_SINGLESTEP left
 * set; the kernel does not when the tracer dies, and the task then traps
 * on its next instruction and dies of SIGTRAP.  The pending interrupt stops
 * it again in get_signal, before it returns to user space. */
int ptrace_repark(pid_t tid)
{
	int sig = 0, event, ret;

	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0))
		return -errno;
	for (;;) {
		if (ptrace(PTRACE_CONT, tid, 0, sig))
			return -errno;
		ret = ptrace_wait_stop(tid, &sig, &event);
		if (ret)
			return ret;
		if (event == PTRACE_EVENT_STOP)
			return 0;
		/* a step's trap is ours; anything else that stops a task whose
		 * signals are all blocked (SIGSTOP) goes through */
		if (event || sig == SIGTRAP)
			sig = 0;
	}
}

int ptrace_seize_stop(pid_t tid, bool exitkill)
{
	if (ptrace(PTRACE_SEIZE, tid, 0, exitkill ? PTRACE_O_EXITKILL : 0))
		return -errno;
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0)) {
		int err = -errno;
		ptrace(PTRACE_DETACH, tid, 0, 0);
		return err;
	}
	for (;;) {
		int sig, event, ret = ptrace_wait_stop(tid, &sig, &event);
		if (ret)
			return ret;
		if (event == PTRACE_EVENT_STOP) {
			if (sig == SIGTRAP)
				return 0;
			/* a group stop (the task was stopped by SIGSTOP & co) */
			if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
				pr_err("seize", "task %d is stopped by signal %d; stopped tasks are not supported yet, resume it with kill -CONT", tid, sig);
				ptrace(PTRACE_DETACH, tid, 0, 0);
				return -EBUSY;
			}
			return 0;
		}
		/* a signal-delivery-stop came first: let the signal through and
		 * wait for the pending interrupt */
		if (ptrace(PTRACE_CONT, tid, 0, sig)) {
			int err = -errno;
			ptrace(PTRACE_DETACH, tid, 0, 0);
			return err;
		}
	}
}

int ptrace_detach(pid_t tid)
{
	if (ptrace(PTRACE_DETACH, tid, 0, 0))
		return -errno;
	return 0;
}

int ptrace_get_regs(pid_t tid, struct user_regs_struct *regs)
{
	struct iovec iov = { regs, sizeof(*regs) };
	if (ptrace(PTRACE_GETREGSET, tid, NT_PRSTATUS, &iov))
		return -errno;
	return 0;
}

int ptrace_set_regs(pid_t tid, const struct user_regs_struct *regs)
{
	struct iovec iov = { (void *)regs, sizeof(*regs) };
	if (ptrace(PTRACE_SETREGSET, tid, NT_PRSTATUS, &iov))
		return -errno;
	return 0;
}

int ptrace_get_xstate(pid_t tid, void **buf, size_t *len)
{
	/* the kernel trims the iovec to the real xstate size */
	size_t cap = 64 * 1024;
	void *b = calloc(1, cap);
	if (!b)
		return -ENOMEM;
	struct iovec iov = { b, cap };
	if (ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &iov)) {
		int err = -errno;
		free(b);
		return err;
	}
	*buf = b;
	*len = iov.iov_len;
	return 0;
}

int ptrace_set_xstate(pid_t tid, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };
	if (ptrace(PTRACE_SETREGSET, tid, NT_X86_XSTATE, &iov))
		return -errno;
	return 0;
}

int ptrace_get_sigmask(pid_t tid, uint64_t *mask)
{
	if (ptrace(PTRACE_GETSIGMASK, tid, sizeof(*mask), mask))
		return -errno;
	return 0;
}

int ptrace_set_sigmask(pid_t tid, uint64_t mask)
{
	if (ptrace(PTRACE_SETSIGMASK, tid, sizeof(mask), &mask))
		return -errno;
	return 0;
}

/* process_vm_readv cannot read PROT_NONE or unreadable pages; /proc/PID/mem
 * can (FOLL_FORCE), so it is the fallback. */
static int proc_mem_rw(pid_t pid, uint64_t addr, void *buf, size_t len, bool write)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	int fd = open(path, (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t done = 0;
	while (done < len) {
		ssize_t r = write ? pwrite(fd, (char *)buf + done, len - done, addr + done)
				  : pread(fd, (char *)buf + done, len - done, addr + done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int err = r < 0 ? -errno : -EIO;
			close(fd);
			return err;
		}
		done += r;
	}
	close(fd);
	return 0;
}

int task_mem_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)addr, len };
	ssize_t r = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (r == (ssize_t)len)
		return 0;
	return proc_mem_rw(pid, addr, buf, len, false);
}

int task_mem_write(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec local = { (void *)buf, len }, remote = { (void *)addr, len };
	ssize_t r = process_vm_writev(pid, &local, 1, &remote, 1, 0);
	if (r == (ssize_t)len)
		return 0;
	return proc_mem_rw(pid, addr, (void *)buf, len, true);
}
