// SPDX-License-Identifier: GPL-2.0-only
/*
 * Packet sockets (class "packet", image net-packet.img of ckpt.net.PacketSk).
 *
 * The kernel's view comes from packet_diag (bound interface and protocol,
 * version, reserve, copy threshold, timestamping, aux/origdev/vnet/loss
 * flags, multicast and promiscuous memberships, fanout, rings, queued
 * bytes); the classic BPF filter from SO_GET_FILTER.  Interfaces are saved
 * by name: the index of the same interface may differ after a restore.
 *
 * Packets waiting in the receive queue are not saved (the network may drop
 * packets anyway; a warning tells how many bytes).  Sockets with mmap()ed
 * rings (PACKET_RX_RING / PACKET_TX_RING) are refused.
 */
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/packet_diag.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

struct pk_diag {
	uint64_t ino;
	bool found, has_info, rings;
	uint32_t protocol; /* host order */
	struct packet_diag_info info;
	struct packet_diag_mclist *mc;
	size_t nmc;
	bool has_fanout;
	uint32_t fanout;
	uint32_t rmem;
};

static int pk_diag_cb(const struct nlmsghdr *h, void *arg)
{
	const struct packet_diag_msg *m = NLMSG_DATA(h);
	struct pk_diag *d = arg;
	const struct rtattr *a;
	int len;

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) || m->pdiag_ino != d->ino)
		return 0;
	d->found = true;
	d->protocol = m->pdiag_num;
	len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
	for (a = (const struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		size_t dl = RTA_PAYLOAD(a);

		switch (a->rta_type) {
		case PACKET_DIAG_INFO:
			if (dl >= sizeof(d->info)) {
				memcpy(&d->info, RTA_DATA(a), sizeof(d->info));
				d->has_info = true;
			}
			break;
		case PACKET_DIAG_MCLIST:
			free(d->mc);
			d->nmc = dl / sizeof(*d->mc);
			d->mc = d->nmc ? malloc(d->nmc * sizeof(*d->mc)) : NULL;
			if (d->nmc && !d->mc)
				return -ENOMEM;
			if (d->nmc)
				memcpy(d->mc, RTA_DATA(a), d->nmc * sizeof(*d->mc));
			break;
		case PACKET_DIAG_RX_RING:
		case PACKET_DIAG_TX_RING:
			d->rings = true;
			break;
		case PACKET_DIAG_FANOUT:
			if (dl >= sizeof(uint32_t)) {
				memcpy(&d->fanout, RTA_DATA(a), sizeof(uint32_t));
				d->has_fanout = true;
			}
			break;
		case PACKET_DIAG_MEMINFO:
			if (dl >= sizeof(uint32_t))
				memcpy(&d->rmem, RTA_DATA(a), sizeof(uint32_t)); /* SK_MEMINFO_RMEM_ALLOC */
			break;
		default:
			break;
		}
	}
	return 0;
}

static int get_int(int fd, int opt, int *v)
{
	socklen_t l = sizeof(*v);

	*v = 0;
	return getsockopt(fd, SOL_PACKET, opt, v, &l);
}

static char *ifname_of(unsigned int index)
{
	char name[IF_NAMESIZE + 1] = "";

	if (!index || !if_indextoname(index, name))
		return NULL;
	return strdup(name);
}

int packet_dump(struct net_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id, int type)
{
	Ckpt__Net__PacketSk r = CKPT__NET__PACKET_SK__INIT;
	Ckpt__Net__SockOpts so = CKPT__NET__SOCK_OPTS__INIT;
	struct packet_diag_req req = {
		.sdiag_family = AF_PACKET,
		.pdiag_show = PACKET_SHOW_INFO | PACKET_SHOW_MCLIST | PACKET_SHOW_RING_CFG |
			      PACKET_SHOW_FANOUT | PACKET_SHOW_MEMINFO,
		.pdiag_cookie = { ~0u, ~0u },
	};
	struct pk_diag d = { .ino = fd->st.st_ino };
	Ckpt__Net__PacketMc *mcs = NULL, **mcp = NULL;
	char desc[200];
	bool locked;
	int ret, v;

	req.pdiag_ino = (uint32_t)fd->st.st_ino;
	snprintf(desc, sizeof(desc), "fd %d of PID %d (packet socket, %s)", fd->fd, (int)fd->pid,
		 fd->link);
	ret = sock_diag_dump(&req, sizeof(req), pk_diag_cb, &d);
	if (ret || !d.found || !d.has_info) {
		net_err(p, "%s: sock_diag cannot describe it: %s (is the af_packet_diag module loaded?)",
			desc, ret ? strerror(-ret) : "not listed");
		ret = ret ? net_errno(ret) : -ENOENT;
		goto out;
	}
	if (d.rings) {
		net_err(p, "%s: it has mmap()ed packet rings (PACKET_RX_RING/TX_RING), which are not "
			   "supported; close it before the dump",
			desc);
		ret = -EOPNOTSUPP;
		goto out;
	}

	r.has_id = r.has_ino = r.has_type = r.has_protocol = r.has_flags = true;
	r.id = obj_id;
	r.ino = fd->st.st_ino;
	r.type = (uint32_t)type;
	r.protocol = d.protocol;
	r.flags = fd->flags;
	if (d.info.pdi_index) {
		r.ifname = ifname_of(d.info.pdi_index);
		if (!r.ifname) {
			net_err(p, "%s: bound to interface %u, which has no name", desc, d.info.pdi_index);
			ret = -ENODEV;
			goto out;
		}
	}
	r.has_version = r.has_reserve = r.has_copy_thresh = r.has_timestamp = true;
	r.version = d.info.pdi_version;
	r.reserve = d.info.pdi_reserve;
	r.copy_thresh = d.info.pdi_copy_thresh;
	r.timestamp = d.info.pdi_tstamp;
	r.has_auxdata = r.has_origdev = r.has_vnet_hdr = r.has_loss = true;
	r.auxdata = d.info.pdi_flags & PDI_AUXDATA;
	r.origdev = d.info.pdi_flags & PDI_ORIGDEV;
	r.vnet_hdr = d.info.pdi_flags & PDI_VNETHDR;
	r.loss = d.info.pdi_flags & PDI_LOSS;
	if (get_int(fd->local_fd, PACKET_QDISC_BYPASS, &v) == 0) {
		r.has_qdisc_bypass = true;
		r.qdisc_bypass = v != 0;
	}
	if (get_int(fd->local_fd, PACKET_IGNORE_OUTGOING, &v) == 0) {
		r.has_ignore_outgoing = true;
		r.ignore_outgoing = v != 0;
	}
	/* getsockopt gives the fanout flags too (the diag attribute does not),
	 * in the layout setsockopt takes */
	if (d.has_fanout && get_int(fd->local_fd, PACKET_FANOUT, &v) == 0 && v) {
		r.has_fanout = true;
		r.fanout = (uint32_t)v;
	}
	if (d.nmc) {
		mcs = calloc(d.nmc, sizeof(*mcs));
		mcp = calloc(d.nmc, sizeof(*mcp));
		if (!mcs || !mcp) {
			ret = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < d.nmc; i++) {
			const struct packet_diag_mclist *m = &d.mc[i];

			ckpt__net__packet_mc__init(&mcs[i]);
			mcp[i] = &mcs[i];
			mcs[i].ifname = ifname_of(m->pdmc_index);
			if (!mcs[i].ifname) {
				net_err(p, "%s: membership on interface %u, which has no name", desc,
					m->pdmc_index);
				ret = -ENODEV;
				r.mclist = mcp;
				r.n_mclist = i + 1;
				goto out;
			}
			mcs[i].has_type = mcs[i].has_count = mcs[i].has_addr = true;
			mcs[i].type = m->pdmc_type;
			mcs[i].count = m->pdmc_count;
			mcs[i].addr.data = (uint8_t *)m->pdmc_addr;
			mcs[i].addr.len = m->pdmc_alen > sizeof(m->pdmc_addr) ? sizeof(m->pdmc_addr)
									       : m->pdmc_alen;
		}
		r.mclist = mcp;
		r.n_mclist = d.nmc;
	}
	sockopt_dump(fd->local_fd, AF_PACKET, type, &so);
	r.opts = &so;
	ret = sock_filter_dump(p, fd->local_fd, &r.filter, &locked, desc);
	if (ret)
		goto out;
	r.has_filter = r.filter.len > 0;
	r.has_filter_locked = locked;
	r.filter_locked = locked;
	if (d.rmem) {
		r.has_dropped = true;
		r.dropped = d.rmem;
		net_warn(p, "%s: %u bytes of queued packets are not saved; the restored socket starts "
			    "with an empty queue",
			 desc, d.rmem);
	}

	ret = net_save(p, NET_PACKET, &r.base);
	if (!ret)
		net_debug(p, "%s: protocol 0x%04x on %s, saved as %u", desc, d.protocol,
			  r.ifname ? r.ifname : "any interface", obj_id);
out:
	for (size_t i = 0; i < r.n_mclist; i++)
		free(mcs[i].ifname);
	free(mcs);
	free(mcp);
	free(r.ifname);
	free(r.filter.data);
	free(so.bindtodevice);
	free(d.mc);
	return ret;
}

static int set_int(struct net_priv *p, int s, int opt, int v, const char *name, const char *desc)
{
	if (setsockopt(s, SOL_PACKET, opt, &v, sizeof(v)) == 0)
		return 0;
	net_err(p, "restore: %s: cannot set %s to %d: %s", desc, name, v, strerror(errno));
	return net_errno(errno);
}

static int ifindex_of(struct net_priv *p, const char *name, const char *desc)
{
	unsigned int i = if_nametoindex(name);

	if (!i)
		net_err(p, "restore: %s: interface %s does not exist here; create it or restore in "
			   "a network namespace that has it",
			desc, name);
	return (int)i;
}

int packet_restore(struct net_priv *p, uint32_t obj_id, int *out)
{
	const Ckpt__Net__PacketSk *r =
		(const Ckpt__Net__PacketSk *)net_find_rec(p, NET_PACKET, obj_id);
	char desc[160];
	int s, ret = 0;

	if (!r) {
		net_err(p, "restore: no packet socket object %u in net-packet.img; the images are "
			   "incomplete",
			obj_id);
		return -EBADMSG;
	}
	snprintf(desc, sizeof(desc), "packet socket %u (protocol 0x%04x on %s)", obj_id,
		 r->protocol, r->ifname ? r->ifname : "any interface");
	/* protocol 0 until bind: it must not see packets of other interfaces */
	s = socket(AF_PACKET, (int)r->type | SOCK_CLOEXEC, 0);
	if (s < 0) {
		ret = net_errno(errno);
		net_err(p, "restore: %s: cannot create it: %s", desc, strerror(errno));
		return ret;
	}
#define SETI(cond, opt, val) \
	if (!ret && (cond))  \
		ret = set_int(p, s, opt, (int)(val), #opt, desc)
	SETI(r->has_version && r->version, PACKET_VERSION, r->version);
	SETI(r->has_reserve && r->reserve, PACKET_RESERVE, r->reserve);
	SETI(r->auxdata, PACKET_AUXDATA, 1);
	SETI(r->origdev, PACKET_ORIGDEV, 1);
	SETI(r->vnet_hdr, PACKET_VNET_HDR, 1);
	SETI(r->loss, PACKET_LOSS, 1);
	SETI(r->has_timestamp && r->timestamp, PACKET_TIMESTAMP, r->timestamp);
	SETI(r->has_copy_thresh && r->copy_thresh, PACKET_COPY_THRESH, r->copy_thresh);
	SETI(r->qdisc_bypass, PACKET_QDISC_BYPASS, 1);
	SETI(r->ignore_outgoing, PACKET_IGNORE_OUTGOING, 1);
#undef SETI
	if (!ret)
		ret = sockopt_restore(p, s, r->opts, desc);
	if (!ret && r->has_filter)
		ret = sock_filter_restore(p, s, &r->filter, r->filter_locked, desc);
	if (ret)
		goto fail;
	if (r->ifname || r->protocol) {
		struct sockaddr_ll sll = { .sll_family = AF_PACKET,
					   .sll_protocol = htons((uint16_t)r->protocol) };

		if (r->ifname) {
			sll.sll_ifindex = ifindex_of(p, r->ifname, desc);
			if (!sll.sll_ifindex) {
				ret = -ENODEV;
				goto fail;
			}
		}
		if (bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
			ret = net_errno(errno);
			net_err(p, "restore: %s: cannot bind: %s", desc, strerror(errno));
			goto fail;
		}
	}
	if (r->has_fanout) {
		ret = set_int(p, s, PACKET_FANOUT, (int)r->fanout, "PACKET_FANOUT", desc);
		if (ret)
			goto fail;
	}
	for (size_t i = 0; i < r->n_mclist; i++) {
		const Ckpt__Net__PacketMc *m = r->mclist[i];
		struct packet_mreq mr = { .mr_type = (unsigned short)m->type };

		if (!m->ifname || m->addr.len > sizeof(mr.mr_address)) {
			net_err(p, "restore: %s: bad membership record; the images are damaged", desc);
			ret = -EBADMSG;
			goto fail;
		}
		mr.mr_ifindex = ifindex_of(p, m->ifname, desc);
		if (!mr.mr_ifindex) {
			ret = -ENODEV;
			goto fail;
		}
		mr.mr_alen = (unsigned short)m->addr.len;
		if (m->addr.len)
			memcpy(mr.mr_address, m->addr.data, m->addr.len);
		/* the kernel counts repeated memberships; add it as often */
		for (uint32_t c = 0; c < (m->count ? m->count : 1); c++) {
			if (setsockopt(s, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
				ret = net_errno(errno);
				net_err(p, "restore: %s: cannot add membership type %u on %s: %s", desc,
					m->type, m->ifname, strerror(errno));
				goto fail;
			}
		}
	}
	ret = sock_restore_flags(p, s, r->flags, desc);
	if (ret)
		goto fail;
	*out = s;
	return 0;
fail:
	close(s);
	return net_errno(ret);
}
