/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `ckpt show DIR [--json]`: decode every image of a dump directory.  Records
 * are printed generically by walking their protobuf descriptors, so a new
 * field or a plugin's record type needs no code here.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "pagecodec.h"
#include "log.h"
#include "plugin.h"
#include "show.h"

#include "inventory.pb-c.h"

#define BYTES_SHOWN 32 /* longer bytes fields are truncated */

/* ---- output primitives ---------------------------------------------------- */

struct show {
	FILE *f;
	bool json;
};

static void indent(FILE *f, int n)
{
	fprintf(f, "%*s", 2 * n, "");
}

/* Length of the valid UTF-8 sequence at s (0 when invalid). */
static size_t utf8_len(const unsigned char *s, size_t left)
{
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* A quoted string, JSON escaped (also used by the text form); bytes that are
 * not UTF-8 (paths and comm may hold any) are written as \u00XX. */
static void put_str(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t left = strlen(str);

	fputc('"', f);
	while (left) {
		size_t n = utf8_len(s, left);

		if (n == 1 && *s == '"')
			fputs("\\\"", f);
		else if (n == 1 && *s == '\\')
			fputs("\\\\", f);
		else if (n == 1 && *s == '\n')
			fputs("\\n", f);
		else if (n == 1 && *s == '\t')
			fputs("\\t", f);
		else if (n == 0 || *s < 0x20 || *s == 0x7f)
			fprintf(f, "\\u%04x", *s);
		else
			fwrite(s, 1, n, f);
		if (!n)
			n = 1;
		s += n;
		left -= n;
	}
	fputc('"', f);
}

static void put_hex(FILE *f, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		fprintf(f, "%02x", p[i]);
}

static void put_bytes(struct show *s, const ProtobufCBinaryData *b)
{
	size_t shown = b->len > BYTES_SHOWN ? BYTES_SHOWN : b->len;

	if (s->json) {
		fprintf(s->f, "{\"length\":%zu,\"hex\":\"", b->len);
		put_hex(s->f, b->data, shown);
		fprintf(s->f, "\"%s}", shown < b->len ? ",\"truncated\":true" : "");
		return;
	}
	put_hex(s->f, b->data, shown);
	if (shown < b->len)
		fprintf(s->f, "... (%zu bytes)", b->len);
}

static void put_double(struct show *s, double v)
{
	if (s->json && !isfinite(v))
		fputs("null", s->f); /* JSON has no NaN or infinity */
	else
		fprintf(s->f, "%.17g", v);
}

/* ---- generic message printer --------------------------------------------- */

static void put_msg(struct show *s, const ProtobufCMessage *m, int depth);

static size_t elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

/* How many values field fd has in m (0: absent), *data points at the first. */
static size_t field_count(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd,
			  const void **data)
{
	const char *base = (const char *)m;
	const void *p = base + fd->offset;

	if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
		*data = *(void *const *)p;
		return *(const size_t *)(base + fd->quantifier_offset);
	}
	*data = p;
	if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(base + fd->quantifier_offset) == fd->id;
	if (fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(void *const *)p != NULL;
	if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && fd->quantifier_offset)
		return *(const protobuf_c_boolean *)(base + fd->quantifier_offset) != 0;
	return 1; /* required, or proto3 without presence */
}

static void put_value(struct show *s, const ProtobufCFieldDescriptor *fd, const void *p,
		      int depth)
{
	FILE *f = s->f;

	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		fprintf(f, "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		fprintf(f, "%" PRIu32, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(f, "%" PRId64, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: {
		uint64_t v = *(const uint64_t *)p;

		fprintf(f, "%" PRIu64, v);
		/* addresses and masks read better in hex */
		if (!s->json && v > 0xffff)
			fprintf(f, " (0x%" PRIx64 ")", v);
		break;
	}
	case PROTOBUF_C_TYPE_FLOAT:
		put_double(s, *(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		put_double(s, *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		fputs(*(const protobuf_c_boolean *)p ? "true" : "false", f);
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev =
			protobuf_c_enum_descriptor_get_value(fd->descriptor, v);

		if (ev && s->json)
			put_str(f, ev->name);
		else if (ev)
			fputs(ev->name, f);
		else
			fprintf(f, "%d", v); /* a value newer than this build */
		break;
	}
	case PROTOBUF_C_TYPE_STRING:
		put_str(f, *(char *const *)p);
		break;
	case PROTOBUF_C_TYPE_BYTES:
		put_bytes(s, p);
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		if (!s->json)
			fputs("{\n", f);
		put_msg(s, *(ProtobufCMessage *const *)p, depth);
		if (!s->json) {
			indent(f, depth - 1);
			fputs("}\n", f);
		}
		break;
	}
}

/* JSON: {"a":1,"b":[..]}.  Text: the fields only, one "name: value" line
 * each indented by depth, nested messages as "name {" ... "}" blocks. */
static void put_msg(struct show *s, const ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	bool first = true;
	FILE *f = s->f;

	if (s->json)
		fputc('{', f);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		bool rep = fd->label == PROTOBUF_C_LABEL_REPEATED;
		bool is_msg = fd->type == PROTOBUF_C_TYPE_MESSAGE;
		size_t n, sz = elem_size(fd->type);
		const void *data;

		n = field_count(m, fd, &data);
		if (!n)
			continue;
		if (s->json) {
			fprintf(f, "%s\"%s\":", first ? "" : ",", fd->name);
			if (rep)
				fputc('[', f);
			for (size_t j = 0; j < n; j++) {
				if (j)
					fputc(',', f);
				put_value(s, fd, (const char *)data + j * sz, depth + 1);
			}
			if (rep)
				fputc(']', f);
		} else if (rep && is_msg) {
			for (size_t j = 0; j < n; j++) {
				indent(f, depth);
				fprintf(f, "%s ", fd->name);
				put_value(s, fd, (const char *)data + j * sz, depth + 1);
			}
		} else {
			indent(f, depth);
			fprintf(f, "%s%s", fd->name, is_msg ? " " : ": ");
			if (rep)
				fputc('[', f);
			for (size_t j = 0; j < n; j++) {
				if (j)
					fputs(", ", f);
				put_value(s, fd, (const char *)data + j * sz, depth + 1);
			}
			if (rep)
				fputc(']', f);
			if (!is_msg)
				fputc('\n', f);
		}
		first = false;
	}
	if (s->json)
		fputc('}', f);
}

/* ---- images --------------------------------------------------------------- */

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.img files of the store, sorted by name. */
static int list_images(char ***out, size_t *count)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *dir;
	int fd, ret = 0;

	fd = openat(img_store_dirfd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		ret = -errno;
		if (fd >= 0)
			close(fd);
		pr_err("show", "cannot list %s: %s", img_store_dir(), strerror(-ret));
		return ret;
	}
	while ((de = readdir(dir))) {
		size_t len = strlen(de->d_name);

		if (len <= 4 || strcmp(de->d_name + len - 4, ".img"))
			continue;
		if (n == cap) {
			char **p = realloc(names, (cap = cap ? cap * 2 : 32) * sizeof(*names));

			if (!p)
				goto nomem;
			names = p;
		}
		if (!(names[n] = strdup(de->d_name)))
			goto nomem;
		n++;
	}
	closedir(dir);
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	*out = names;
	*count = n;
	return 0;
nomem:
	closedir(dir);
	while (n)
		free(names[--n]);
	free(names);
	pr_err("show", "out of memory listing %s", img_store_dir());
	return -ENOMEM;
}

static const char *inventory_type_of(const Ckpt__Inventory *inv, const char *name)
{
	for (size_t i = 0; inv && i < inv->n_images; i++)
		if (inv->images[i]->name && !strcmp(inv->images[i]->name, name))
			return inv->images[i]->type;
	return NULL;
}

static void image_error(struct show *s, const char *msg, int err)
{
	if (s->json) {
		fputs(",\"error\":", s->f);
		put_str(s->f, msg);
	} else {
		fprintf(s->f, "  error: %s (%s)\n", msg, strerror(-err));
	}
}

/* Print the records of a framed image; a decode failure is reported in the
 * output and returned. */
static int show_records(struct show *s, const char *name, const char *type)
{
	/* core ckpt.* types and those of the loaded plugins */
	const ProtobufCMessageDescriptor *d = plugins_find_image_type(type);
	struct ckpt_img *img;
	uint64_t nrec = 0;
	size_t len;
	void *rec;
	int ret, bad = 0;

	if (!d) {
		if (s->json)
			fputs(",\"note\":\"unknown type, load the plugin that wrote it\"", s->f);
		else
			fputs("  unknown type, load the plugin that wrote it\n", s->f);
	}
	img = img_open(name, type);
	if (!img) {
		ret = -errno;
		image_error(s, "cannot open the image", ret);
		return ret;
	}
	if (s->json)
		fputs(",\"records\":[", s->f);
	while ((ret = img_read(img, &rec, &len)) > 0) {
		ProtobufCMessage *m = d ? protobuf_c_message_unpack(d, NULL, len, rec) : NULL;

		free(rec);
		if (s->json) {
			fputs(nrec ? ",\n  " : "\n  ", s->f);
			if (m)
				put_msg(s, m, 0);
			else
				fprintf(s->f, "{\"length\":%zu%s}", len,
					d ? ",\"error\":\"does not decode\"" : "");
		} else {
			fprintf(s->f, "record %" PRIu64 ":", nrec);
			if (m) {
				fputc('\n', s->f);
				put_msg(s, m, 1);
			} else {
				fprintf(s->f, " %zu bytes%s\n", len,
					d ? ", does not decode" : "");
			}
		}
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
		else if (d)
			bad = -EBADMSG;
		nrec++;
	}
	img_close(img);
	if (s->json)
		fputc(']', s->f);
	if (ret < 0)
		image_error(s, "truncated or corrupted record", ret);
	else if (bad)
		image_error(s, "records that do not decode", (ret = bad));
	else if (!s->json)
		fprintf(s->f, "%" PRIu64 " record(s)\n", nrec);
	return ret < 0 ? ret : 0;
}

/* The codec and ratio of a compressed page image, from its block index. */
static void show_compression(struct show *s, const char *name)
{
	struct pagecodec_stats st;
	if (pagecodec_stats(name, &st))
		return;
	double ratio = st.stored_bytes ? (double)st.raw_bytes / st.stored_bytes : 0;
	if (s->json)
		fprintf(s->f,
			",\"compression\":{\"codec\":\"%s\",\"blocks\":%" PRIu64
			",\"raw_bytes\":%" PRIu64 ",\"stored_bytes\":%" PRIu64 ",\"ratio\":%.3f}",
			st.codec, st.blocks, st.raw_bytes, st.stored_bytes, ratio);
	else
		fprintf(s->f, "compression: %s, %" PRIu64 " blocks, %" PRIu64 " bytes of pages stored in %" PRIu64 " (ratio %.2f)\n",
			st.codec, st.blocks, st.raw_bytes, st.stored_bytes, ratio);
}

static int show_image(struct show *s, const char *name, const Ckpt__Inventory *inv,
		      bool first)
{
	const char *listed = inventory_type_of(inv, name);
	struct img_header h;
	const char *type;
	struct stat st;
	int ret, framed;

	if (fstatat(img_store_dirfd(), name, &st, 0) || !S_ISREG(st.st_mode))
		return 0; /* vanished or not a file: not an image */
	framed = img_peek_header(name, &h);
	if (!strcmp(name, "inventory.img"))
		type = ckpt__inventory__descriptor.name;
	else if (framed == 1)
		type = h.type;
	else
		type = listed ? listed : "raw";

	if (s->json) {
		fputs(first ? "\n {\"name\":" : ",\n {\"name\":", s->f);
		put_str(s->f, name);
		fputs(",\"type\":", s->f);
		put_str(s->f, type);
		fprintf(s->f, ",\"size\":%lld", (long long)st.st_size);
	} else {
		fprintf(s->f, "\n== %s (%s, %lld bytes)\n", name, type, (long long)st.st_size);
	}

	ret = 0;
	if (framed < 0) {
		ret = framed;
		image_error(s, "cannot read the image", ret);
	} else if (!strcmp(name, "inventory.img")) {
		/* framed but with a checksum trailer; printed in full above */
		if (!s->json)
			fputs("  (the inventory, shown above)\n", s->f);
	} else if (framed == 1) {
		ret = show_records(s, name, type);
		if (!ret && !strcmp(type, ckpt__page_block__descriptor.name))
			show_compression(s, name);
	} else if (listed && strcmp(listed, "raw")) {
		ret = -EBADMSG;
		image_error(s, "not a ckpt image (bad magic)", ret);
	}
	if (s->json)
		fputc('}', s->f);
	return ret;
}

int cmd_show(const char *dir, bool json)
{
	struct show s = { .f = stdout, .json = json };
	Ckpt__Inventory *inv = NULL;
	char **names = NULL;
	size_t n = 0;
	int ret, inv_ret, err = 0;

	ret = img_store_open(dir, false);
	if (ret)
		return ret;
	inv_ret = img_inventory_read(&inv);
	ret = list_images(&names, &n);
	if (ret)
		goto out;

	if (json) {
		fputs("{\"dir\":", s.f);
		put_str(s.f, dir);
		fputs(",\n\"inventory\":", s.f);
		if (inv)
			put_msg(&s, &inv->base, 0);
		else
			fputs("null", s.f);
		if (inv_ret && inv_ret != -ENOENT) {
			fputs(",\n\"inventory_error\":", s.f);
			put_str(s.f, strerror(-inv_ret));
		}
		fputs(",\n\"images\":[", s.f);
	} else {
		fprintf(s.f, "dump directory: %s\n", dir);
		if (inv) {
			fputs("inventory:\n", s.f);
			put_msg(&s, &inv->base, 1);
		} else if (inv_ret == -ENOENT) {
			fputs("inventory: missing (the dump is incomplete)\n", s.f);
		} else {
			fprintf(s.f, "inventory: unreadable (%s)\n", strerror(-inv_ret));
		}
	}
	for (size_t i = 0; i < n; i++) {
		ret = show_image(&s, names[i], inv, i == 0);
		if (ret && !err)
			err = ret;
	}
	if (json)
		fputs("\n]}\n", s.f);
	if (fflush(s.f) && !err)
		err = -errno;
	ret = err;
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (inv)
		ckpt__inventory__free_unpacked(inv, NULL);
	img_store_close();
	return ret;
}
