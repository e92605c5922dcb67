/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * userns: a rootless-container-like tree.  A starter clones init with
 * CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWUTS|CLONE_NEWIPC, writes its maps
 * (ids 0..65535 inside are 100000.. outside), reports init's pid and goes
 * away.  init enters a time namespace of its own (+1000 s monotonic),
 * becomes root inside, sets a host name, its own groups (when setgroups is
 * allowed), KEEP_CAPS, a bounding set without CAP_MKNOD and an effective
 * set without CAP_NET_RAW; its child drops to uid/gid 1000 inside with
 * no_new_privs and starts a second thread.  After SIGUSR1 init checks its
 * maps, setgroups state, ids, groups, capability sets, securebits, host
 * name and clock, then asks the child (over a pipe) for its ids (both
 * threads), capabilities and user namespace, which must be init's.
 *
 *   userns        setgroups allowed
 *   userns deny   setgroups denied before gid_map was written
 *   userns mixed  the child moves into a user namespace nested in init's:
 *                 the dump must refuse the tree, which runs on
 *   userns nestedpid  the child has a grandchild in a pid namespace nested
 *                 below init's: refused as well
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "workload.h"

#define HOST "ckpt-userns-host"
#define MAP "0 100000 65536\n"
#define CHILD_ID 1000

static volatile sig_atomic_t usr2;
static void on_usr2(int sig)
{
	(void)sig;
	usr2 = 1;
}

static char uid_map[256], gid_map[256], setgroups_state[32];
/* the starter's namespaces (the harness's /proc/1 is not ours to look at) */
static unsigned long outer_user, outer_uts, outer_time;

static int write_to(pid_t pid, const char *file, const char *text)
{
	char path[64];
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	else /* our /proc is the harness's: its /proc/1 is not us */
		snprintf(path, sizeof(path), "/proc/self/%s", file);
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static unsigned long ns_ino(const char *ns)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/self/ns/%s", ns);
	return stat(path, &st) ? 0 : (unsigned long)st.st_ino;
}

static unsigned long long status_hex(const char *key)
{
	char buf[4096], *p;
	if (wl_read_file("/proc/self/status", buf, sizeof(buf)) < 0 || !(p = strstr(buf, key)))
		return ~0ULL;
	return strtoull(p + strlen(key), NULL, 16);
}

static void get_caps(uint64_t *eff, uint64_t *prm)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	syscall(SYS_capget, &h, d);
	*eff = d[0].effective | (uint64_t)d[1].effective << 32;
	*prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
}

static int set_eff(uint64_t eff, uint64_t prm)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	d[0].effective = eff;
	d[1].effective = eff >> 32;
	d[0].permitted = prm;
	d[1].permitted = prm >> 32;
	return syscall(SYS_capset, &h, d);
}

/* A second thread of the child: its own creds must come back too. */
static _Atomic int thread_go, thread_bad = -1;
static void *child_thread(void *arg)
{
	(void)arg;
	while (!atomic_load(&thread_go))
		usleep(1000);
	uid_t r, e, s;
	uint64_t eff, prm;
	syscall(SYS_getresuid, &r, &e, &s);
	get_caps(&eff, &prm);
	atomic_store(&thread_bad, (r != CHILD_ID || e != CHILD_ID || s != CHILD_ID) | (eff != 0) << 1);
	return NULL;
}

/* The child: uid/gid 1000 inside, answers SIGUSR2 with its state. */
static void __attribute__((noreturn)) child_main(int up, int report, int mixed, int nested_pid)
{
	char buf[256];
	struct sigaction sa = { .sa_handler = on_usr2 };
	sigaction(SIGUSR2, &sa, NULL);
	if (nested_pid) {
		/* a grandchild, init of a pid namespace below the tree's */
		if (unshare(CLONE_NEWPID))
			_exit(3);
		pid_t gc = fork();
		if (gc < 0)
			_exit(3);
		if (gc == 0) {
			close(up);
			close(report);
			for (;;)
				pause();
		}
	}
	if (mixed) {
		if (unshare(CLONE_NEWUSER))
			_exit(3);
	} else {
		gid_t g = 30;
		if (strcmp(setgroups_state, "deny") && setgroups(1, &g))
			_exit(3);
		if (setresgid(CHILD_ID, CHILD_ID, CHILD_ID) || setresuid(CHILD_ID, CHILD_ID, CHILD_ID) ||
		    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
			_exit(3);
	}
	pthread_t th;
	/* (no threads once pid_ns_for_children differs) */
	if (!mixed && !nested_pid && pthread_create(&th, NULL, child_thread, NULL))
		_exit(3);
	uint64_t eff, prm, eff0, prm0;
	get_caps(&eff0, &prm0);
	if (write(up, "c", 1) != 1)
		_exit(3);
	close(up);
	while (!usr2)
		pause();
	uid_t r, e, s;
	gid_t gr, ge, gs;
	getresuid(&r, &e, &s);
	getresgid(&gr, &ge, &gs);
	gid_t groups[8];
	int ng = getgroups(8, groups);
	get_caps(&eff, &prm);
	int bad = 0;
	if (!mixed) {
		if (!nested_pid) {
			atomic_store(&thread_go, 1);
			pthread_join(th, NULL);
			bad |= (atomic_load(&thread_bad) != 0) << 5;
		}
		bad |= (r != CHILD_ID || e != CHILD_ID || s != CHILD_ID) << 0;
		bad |= (gr != CHILD_ID || ge != CHILD_ID || gs != CHILD_ID) << 1;
		/* KEEP_CAPS, inherited from init, kept the permitted set */
		bad |= (eff || prm != prm0 || eff0) << 2;
		bad |= (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) << 3;
		if (strcmp(setgroups_state, "deny"))
			bad |= (ng != 1 || groups[0] != 30) << 4;
		else
			bad |= (ng != 0) << 4;
	}
	snprintf(buf, sizeof(buf), "%s %lu uid %u/%u/%u gid %u/%u/%u groups %d caps %llx/%llx bad %#x\n",
		 bad ? "BAD" : "OK", ns_ino("user"), r, e, s, gr, ge, gs, ng,
		 (unsigned long long)eff, (unsigned long long)prm, bad);
	if (write(report, buf, strlen(buf)) < 0)
		_exit(3);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	int go[2], up[2], cup[2], report[2];
	char buf[512];
	int deny = argc > 1 && !strcmp(argv[1], "deny");
	int mixed = argc > 1 && !strcmp(argv[1], "mixed");
	int nested_pid = argc > 1 && !strcmp(argv[1], "nestedpid");

	wl_init("userns");
	outer_user = ns_ino("user");
	outer_uts = ns_ino("uts");
	outer_time = ns_ino("time");
	if (pipe(go) || pipe(up) || pipe(cup) || pipe(report))
		wl_die("pipe");
	pid_t init = syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD,
			     0, 0, 0, 0);
	if (init < 0)
		wl_die("clone(CLONE_NEWUSER|CLONE_NEWPID...): %s", strerror(errno));
	if (init > 0) {
		/* the starter, privileged out here, writes the maps */
		close(go[0]);
		close(up[1]);
		close(cup[0]);
		close(cup[1]);
		close(report[0]);
		close(report[1]);
		if ((deny && write_to(init, "setgroups", "deny")) || write_to(init, "uid_map", MAP) ||
		    write_to(init, "gid_map", MAP))
			wl_die("cannot write the maps of the new user namespace: %s", strerror(errno));
		if (write(go[1], "g", 1) != 1)
			wl_die("init is gone");
		if (read(up[0], buf, 1) != 1)
			wl_die("the namespace's init did not get ready");
		const char *ready = getenv("CKPT_TEST_READY");
		snprintf(buf, sizeof(buf), "%d\n", (int)init);
		if (ready && wl_write_file(ready, buf))
			wl_die("cannot write %s", ready);
		printf("userns: ready, init is pid %d outside\n", (int)init);
		fflush(stdout);
		_exit(0);
	}
	/* init of the new pid namespace, in the new user namespace */
	close(go[1]);
	close(up[0]);
	if (read(go[0], buf, 1) != 1)
		_exit(2);
	close(go[0]);
	setsid();
	/* a time namespace owned by the user namespace, entered by init
	 * (before the uid change makes /proc/self root's) */
	int tfd;
	if (unshare(CLONE_NEWTIME) || write_to(0, "timens_offsets", "monotonic 1000 0\n") ||
	    (tfd = open("/proc/self/ns/time_for_children", O_RDONLY)) < 0 || setns(tfd, CLONE_NEWTIME))
		wl_die("time namespace: %s", strerror(errno));
	close(tfd);
	uint64_t before = wl_now_ns(CLOCK_MONOTONIC);
	if (before < 1000ULL * 1000000000ULL)
		wl_die("the time namespace offset is not in effect");
	if (setresgid(0, 0, 0) || setresuid(0, 0, 0))
		wl_die("cannot become root inside: %s", strerror(errno));
	if (sethostname(HOST, strlen(HOST)))
		wl_die("sethostname: %s", strerror(errno));
	if (wl_read_file("/proc/self/uid_map", uid_map, sizeof(uid_map)) < 0 ||
	    wl_read_file("/proc/self/gid_map", gid_map, sizeof(gid_map)) < 0 ||
	    wl_read_file("/proc/self/setgroups", setgroups_state, sizeof(setgroups_state)) < 0)
		wl_die("cannot read the maps");
	setgroups_state[strcspn(setgroups_state, "\n")] = 0;
	if (!deny) {
		gid_t g[2] = { 10, 20 };
		if (setgroups(2, g))
			wl_die("setgroups: %s", strerror(errno));
	}
	if (prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS) || prctl(PR_CAPBSET_DROP, CAP_MKNOD))
		wl_die("securebits / bounding set: %s", strerror(errno));
	uint64_t eff, prm;
	get_caps(&eff, &prm);
	if (set_eff(eff & ~(1ULL << CAP_NET_RAW), prm))
		wl_die("capset: %s", strerror(errno));
	uint64_t cap_eff = status_hex("CapEff:\t"), cap_prm = status_hex("CapPrm:\t"),
		 cap_bnd = status_hex("CapBnd:\t");

	pid_t child = fork();
	if (child < 0)
		wl_die("fork: %s", strerror(errno));
	if (child == 0) {
		close(report[0]);
		close(cup[0]);
		close(up[1]);
		child_main(cup[1], report[1], mixed, nested_pid);
	}
	close(report[1]);
	close(cup[1]);
	if (read(cup[0], buf, 1) != 1)
		wl_die("the child did not get ready");
	close(cup[0]);
	wl_ready_pid = getpid();
	if (write(up[1], "r", 1) != 1)
		_exit(2);
	close(up[1]);

	wl_wait_usr1();
	WL_CHECK(getpid() == 1, "init is pid %d, not 1", (int)getpid());
	WL_CHECK(child == 2, "the child is pid %d", (int)child);
	char now[256];
	WL_CHECK(wl_read_file("/proc/self/uid_map", now, sizeof(now)) > 0 && !strcmp(now, uid_map),
		 "uid_map is now \"%s\", was \"%s\"", now, uid_map);
	WL_CHECK(wl_read_file("/proc/self/gid_map", now, sizeof(now)) > 0 && !strcmp(now, gid_map),
		 "gid_map is now \"%s\", was \"%s\"", now, gid_map);
	WL_CHECK(wl_read_file("/proc/self/setgroups", now, sizeof(now)) > 0 &&
			 !strncmp(now, setgroups_state, strlen(setgroups_state)),
		 "setgroups is now %s, was %s", now, setgroups_state);
	WL_CHECK(!strcmp(setgroups_state, deny ? "deny" : "allow"), "setgroups was %s", setgroups_state);
	uid_t r, e, s;
	gid_t gr, ge, gs;
	getresuid(&r, &e, &s);
	getresgid(&gr, &ge, &gs);
	WL_CHECK(!r && !e && !s, "uids inside are %u/%u/%u", r, e, s);
	WL_CHECK(!gr && !ge && !gs, "gids inside are %u/%u/%u", gr, ge, gs);
	gid_t groups[8];
	int ng = getgroups(8, groups);
	if (deny) {
		WL_CHECK(ng == 0, "%d supplementary groups", ng);
		WL_CHECK(setgroups(0, NULL) && errno == EPERM, "setgroups is allowed again");
	} else {
		WL_CHECK(ng == 2 && groups[0] == 10 && groups[1] == 20, "groups: %d (%u...)", ng,
			 ng > 0 ? groups[0] : 0);
		WL_CHECK(!setgroups(ng, groups), "setgroups fails: %s", strerror(errno));
	}
	WL_CHECK(status_hex("CapEff:\t") == cap_eff, "CapEff %llx, was %llx", status_hex("CapEff:\t"),
		 (unsigned long long)cap_eff);
	WL_CHECK(status_hex("CapPrm:\t") == cap_prm, "CapPrm %llx, was %llx", status_hex("CapPrm:\t"),
		 (unsigned long long)cap_prm);
	WL_CHECK(status_hex("CapBnd:\t") == cap_bnd, "CapBnd %llx, was %llx", status_hex("CapBnd:\t"),
		 (unsigned long long)cap_bnd);
	WL_CHECK(prctl(PR_GET_SECUREBITS) == SECBIT_KEEP_CAPS, "securebits %#x",
		 prctl(PR_GET_SECUREBITS));
	char host[64] = "";
	gethostname(host, sizeof(host));
	WL_CHECK(!strcmp(host, HOST), "host name is \"%s\"", host);
	WL_CHECK(ns_ino("user") && ns_ino("user") != outer_user, "back in the harness's user namespace");
	WL_CHECK(ns_ino("uts") && ns_ino("uts") != outer_uts, "back in the harness's uts namespace");
	WL_CHECK(ns_ino("time") && ns_ino("time") != outer_time, "back in the harness's time namespace");
	uint64_t after = wl_now_ns(CLOCK_MONOTONIC);
	WL_CHECK(after >= before, "CLOCK_MONOTONIC went back by %.1f s (offset lost?)",
		 (before - after) / 1e9);

	kill(child, SIGUSR2);
	struct pollfd pf = { report[0], POLLIN, 0 };
	ssize_t n = poll(&pf, 1, 5000) == 1 ? read(report[0], buf, sizeof(buf) - 1) : -1;
	if (n <= 0) {
		wl_fail("the child did not report");
	} else {
		buf[n] = 0;
		buf[strcspn(buf, "\n")] = 0;
		unsigned long ino = strtoul(buf + 3, NULL, 10);
		WL_CHECK(!strncmp(buf, "OK ", 3), "child: %s", buf);
		if (mixed)
			WL_CHECK(ino != ns_ino("user"), "the child is in init's user namespace: %s", buf);
		else
			WL_CHECK(ino == ns_ino("user"), "the child is in another user namespace: %s", buf);
	}
	kill(-1, SIGKILL); /* every other process of the namespace */
	while (wait(NULL) > 0)
		;
	wl_finish();
}
