// SPDX-License-Identifier: GPL-2.0-only
/*
 * Addresses of inet sockets: sockaddr <-> ckpt.net.InetAddr, and text for
 * messages.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "net.h"

void inet_addr_from(const struct sockaddr_storage *ss, Ckpt__Net__InetAddr *a)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;

		a->has_addr = true;
		a->addr.data = (uint8_t *)&s->sin_addr;
		a->addr.len = 4;
		a->has_port = true;
		a->port = ntohs(s->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;

		a->has_addr = true;
		a->addr.data = (uint8_t *)&s->sin6_addr;
		a->addr.len = 16;
		a->has_port = true;
		a->port = ntohs(s->sin6_port);
		if (s->sin6_scope_id) {
			a->has_scope_id = true;
			a->scope_id = s->sin6_scope_id;
		}
		if (s->sin6_flowinfo) {
			a->has_flowinfo = true;
			a->flowinfo = s->sin6_flowinfo;
		}
	}
}

int inet_addr_to(const Ckpt__Net__InetAddr *a, int family, struct sockaddr_storage *ss,
		 socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (!a || !a->has_addr || a->port > 65535)
		return -EINVAL;
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;

		if (a->addr.len != 4)
			return -EINVAL;
		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, a->addr.data, 4);
		s->sin_port = htons((uint16_t)a->port);
		*len = sizeof(*s);
		return 0;
	}
	if (family == AF_INET6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;

		if (a->addr.len != 16)
			return -EINVAL;
		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, a->addr.data, 16);
		s->sin6_port = htons((uint16_t)a->port);
		s->sin6_scope_id = a->has_scope_id ? a->scope_id : 0;
		s->sin6_flowinfo = a->has_flowinfo ? a->flowinfo : 0;
		*len = sizeof(*s);
		return 0;
	}
	return -EINVAL;
}

const char *inet_str(const Ckpt__Net__InetAddr *a, int family, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (!a || !a->has_addr) {
		snprintf(buf, len, "(unbound)");
		return buf;
	}
	if ((family == AF_INET && a->addr.len == 4) || (family == AF_INET6 && a->addr.len == 16))
		inet_ntop(family, a->addr.data, ip, sizeof(ip));
	if (family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", ip, a->port);
	else
		snprintf(buf, len, "%s:%u", ip, a->port);
	return buf;
}

const char *sa_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	Ckpt__Net__InetAddr a = CKPT__NET__INET_ADDR__INIT;

	inet_addr_from(ss, &a);
	return inet_str(&a, ss->ss_family, buf, len);
}

bool inet_is_unbound(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;

		return s->sin_port == 0 && s->sin_addr.s_addr == htonl(INADDR_ANY);
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;

		return s->sin6_port == 0 && IN6_IS_ADDR_UNSPECIFIED(&s->sin6_addr);
	}
	return true;
}
