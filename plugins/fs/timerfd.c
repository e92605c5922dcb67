// SPDX-License-Identifier: GPL-2.0-only
/*
 * timerfd (class "timerfd", image fs-timerfds.img of ckpt.fs.Timerfd).
 *
 * Dump: fdinfo gives the clock, the settime flags, the unread expirations
 * ("ticks") and the timer.  A periodic timer whose expirations went unread
 * is only brought up to date by the kernel when it is read or asked: until
 * then fdinfo shows it_value 0 and one tick however many intervals passed.
 * So the dump first calls timerfd_gettime() on its copy of the open file,
 * which (like a read, but without taking the ticks) adds the missed
 * intervals to the tick count and restarts the timer at its next expiry;
 * fdinfo then reads true ticks and the time left.  The next expiry is also
 * saved on the timer's clock, for TFD_TIMER_ABSTIME timers.
 *
 * Restore: timerfd_create on the same clock; a relative timer is armed with
 * the time it had left, an absolute one at its absolute expiry, both with
 * their interval; then TFD_IOC_SET_TICKS puts the unread ticks back, so a
 * periodic timer keeps ticking and the task reads every tick it missed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif
#ifndef TFD_TIMER_CANCEL_ON_SET
#define TFD_TIMER_CANCEL_ON_SET (1 << 1)
#endif

#define NSEC 1000000000ULL

static uint32_t timerfd_id(const ProtobufCMessage *m)
{
	return ((const Ckpt__Fs__Timerfd *)m)->id;
}

struct tfd_info {
	int clockid;
	unsigned int settime_flags;
	uint64_t ticks, value_ns, interval_ns;
};

static int parse_info(const char *info, struct tfd_info *ti)
{
	unsigned long long a, b, c, d;
	const char *s;

	if (!(s = strstr(info, "clockid:")) || sscanf(s, "clockid: %d", &ti->clockid) != 1)
		return -1;
	if (!(s = strstr(info, "ticks:")) || sscanf(s, "ticks: %llu", &a) != 1)
		return -1;
	ti->ticks = a;
	if (!(s = strstr(info, "settime flags:")) || sscanf(s, "settime flags: %o", &ti->settime_flags) != 1)
		return -1;
	if (!(s = strstr(info, "it_value:")) || sscanf(s, "it_value: (%llu, %llu)", &a, &b) != 2)
		return -1;
	if (!(s = strstr(info, "it_interval:")) || sscanf(s, "it_interval: (%llu, %llu)", &c, &d) != 2)
		return -1;
	ti->value_ns = a * NSEC + b;
	ti->interval_ns = c * NSEC + d;
	return 0;
}

static int timerfd_dump(struct fs_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id)
{
	Ckpt__Fs__Timerfd r = CKPT__FS__TIMERFD__INIT;
	struct tfd_info ti;
	char what[64], *info = NULL;
	struct timespec now;
	int ret, tries;

	snprintf(what, sizeof(what), "fd %d of PID %d (timerfd)", fd->fd, (int)fd->pid);
	for (tries = 0;; tries++) {
		struct itimerspec cur;
		uint64_t left;

		/* brings a periodic timer's missed intervals into ticks */
		if (timerfd_gettime(fd->local_fd, &cur) < 0) {
			int e = errno;

			fs_err(p, "%s: timerfd_gettime failed: %s", what, strerror(e));
			return fs_errno(e);
		}
		free(info);
		ret = fs_read_fdinfo(p, fd->local_fd, what, &info);
		if (ret)
			return ret;
		if (parse_info(info, &ti)) {
			free(info);
			fs_err(p, "%s: cannot parse its fdinfo (clockid, ticks, settime flags, it_value, "
				  "it_interval); this kernel's format is not known to ckpt",
			       what);
			return -EINVAL;
		}
		if (clock_gettime(ti.clockid, &now) < 0) {
			int e = errno;

			free(info);
			fs_err(p, "%s: cannot read its clock %d: %s", what, ti.clockid, strerror(e));
			return fs_errno(e);
		}
		left = (uint64_t)cur.it_value.tv_sec * NSEC + (uint64_t)cur.it_value.tv_nsec;
		/* it expired between timerfd_gettime and fdinfo: ask again */
		if (left && !ti.value_ns && tries < 10)
			continue;
		break;
	}
	free(info);

	r.has_id = true;
	r.id = obj_id;
	r.has_flags = true;
	r.flags = fd->flags & ~(unsigned int)O_CLOEXEC;
	r.has_clockid = true;
	r.clockid = ti.clockid;
	r.has_settime_flags = true;
	r.settime_flags = ti.settime_flags;
	r.has_ticks = true;
	r.ticks = ti.ticks;
	r.has_interval_ns = true;
	r.interval_ns = ti.interval_ns;
	r.has_value_ns = true;
	r.value_ns = ti.value_ns;
	if (ti.value_ns) {
		r.has_expiry_ns = true;
		r.expiry_ns = (int64_t)((uint64_t)now.tv_sec * NSEC + (uint64_t)now.tv_nsec + ti.value_ns);
	}
	ret = fs_save(p, FS_TIMERFD, &r.base);
	if (ret)
		return ret;
	fs_debug(p, "%s: timerfd %u clock %d flags 0%o settime 0%o ticks %" PRIu64
		    " left %" PRIu64 " ns interval %" PRIu64 " ns",
		 what, obj_id, r.clockid, r.flags, r.settime_flags, r.ticks, r.value_ns,
		 r.interval_ns);
	return 0;
}

static struct timespec ns_ts(uint64_t ns)
{
	return (struct timespec){ .tv_sec = (time_t)(ns / NSEC), .tv_nsec = (long)(ns % NSEC) };
}

static int timerfd_restore(struct fs_priv *p, const ProtobufCMessage *m, int *out)
{
	const Ckpt__Fs__Timerfd *r = (const Ckpt__Fs__Timerfd *)m;
	unsigned int sflags = r->settime_flags & (TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET);
	int fd, e, ret;

	if (!r->has_clockid) {
		fs_err(p, "restore: timerfd object %u has no clock; the images are damaged", r->id);
		return -EBADMSG;
	}
	fd = timerfd_create(r->clockid, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0) {
		e = errno;
		fs_err(p, "restore: cannot create timerfd object %u on clock %d: %s%s", r->id,
		       r->clockid, strerror(e),
		       e == EPERM ? " (alarm clocks need CAP_WAKE_ALARM)" : "");
		return fs_errno(e);
	}
	if (r->value_ns || r->interval_ns) {
		struct itimerspec its;

		its.it_interval = ns_ts(r->interval_ns);
		if (sflags & TFD_TIMER_ABSTIME) {
			if (!r->has_expiry_ns || r->expiry_ns <= 0) {
				fs_err(p, "restore: absolute timerfd object %u has no expiry time; the "
					  "images are damaged",
				       r->id);
				e = EBADMSG;
				goto err;
			}
			its.it_value = ns_ts((uint64_t)r->expiry_ns);
		} else {
			/* a periodic timer due right now: 0 would disarm it */
			its.it_value = ns_ts(r->value_ns ? r->value_ns : 1);
		}
		if (timerfd_settime(fd, (int)sflags, &its, NULL) < 0) {
			e = errno;
			fs_err(p, "restore: cannot arm timerfd object %u (clock %d, flags 0%o): %s",
			       r->id, r->clockid, sflags, strerror(e));
			goto err;
		}
	}
	if (r->ticks) {
		uint64_t ticks = r->ticks;

		if (ioctl(fd, TFD_IOC_SET_TICKS, &ticks) < 0) {
			e = errno;
			fs_err(p, "restore: cannot give timerfd object %u back its %" PRIu64
				  " unread ticks: %s%s",
			       r->id, ticks, strerror(e),
			       e == ENOTTY ? " (the kernel lacks CONFIG_CHECKPOINT_RESTORE)" : "");
			goto err;
		}
	}
	ret = fs_set_fl(p, fd, r->flags, "a timerfd");
	if (ret) {
		close(fd);
		return ret;
	}
	*out = fd;
	return 0;
err:
	close(fd);
	return fs_errno(e);
}

const struct fs_class fs_timerfd_class = {
	.name = "timerfd",
	.img_name = "fs-timerfds.img",
	.desc = &ckpt__fs__timerfd__descriptor,
	.rec_id = timerfd_id,
	.dump = timerfd_dump,
	.restore = timerfd_restore,
};
