/* What the `kumo img` subcommands share: messages, sizes, opening, reading
 * through backing chains, block status, JSON and the progress bar. */
#include "img.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void img_err(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("kumo img: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int img_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("kumo img: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'kumo img --help' for more information\n", stderr);
	return IMG_ERR;
}

int img_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "bkmgtpe";
	char *end;
	double v;
	int shift = 0;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	if (strchr(s, '.')) {
		v = strtod(s, &end);
	} else {
		unsigned long long u = strtoull(s, &end, 10);
		v = (double)u;
		if (!errno && !*end) {
			*out = u;
			return 0;
		}
	}
	if (errno || end == s)
		return -EINVAL;
	if (*end) {
		const char *u = strchr(units, (char)(*end | 0x20));
		if (!u || end[1])
			return -EINVAL;
		shift = (int)(u - units) * 10;
	}
	v = ldexp(v, shift);
	if (v < 0 || v >= 18446744073709551616.0 || v != v)
		return -ERANGE;
	*out = (uint64_t)v;
	return 0;
}

const char *img_human_size(uint64_t v, char *buf, size_t len)
{
	static const char *const suffix[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };
	int e, i;

	frexp((double)v / (1000.0 / 1024.0), &e);
	i = (e - 1) / 10;
	if (i < 0)
		i = 0;
	if (i > 6)
		i = 6;
	snprintf(buf, len, "%0.3g %sB", (double)v / (double)(1ULL << (i * 10)), suffix[i]);
	return buf;
}

bool img_force_share;

struct blk_image *img_open(const char *path, const char *fmt, bool read_only, bool no_backing)
{
	const struct blk_open_opts o = {
		.read_only = read_only, .format = fmt, .no_backing = no_backing,
		.force_share = read_only && img_force_share,
	};

	return img_open_opts(path, &o);
}

struct blk_image *img_open_opts(const char *path, const struct blk_open_opts *o)
{
	const char *fmt = o->format;
	struct blk_image *img;
	const char *why = "cannot open";

	if (fmt && !blk_format(fmt)) {
		img_err("Unknown file format '%s'", fmt);
		return NULL;
	}
	if (blk_open2(path, o, &img, &why)) {
		img_err("Could not open '%s': %s", path, why);
		return NULL;
	}
	return img;
}

bool img_is_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	/* Word at a time after the first 16 bytes agree. */
	if (len < 16)
		return !len || (!p[0] && !memcmp(p, p + 1, len - 1));
	for (size_t i = 0; i < 16; i++)
		if (p[i])
			return false;
	return !memcmp(p, p + 16, len - 16);
}

static int own_read(struct blk_image *img, void *buf, uint64_t len, uint64_t off)
{
	struct iovec iov = { buf, len };

	return img->ops->preadv(img, &iov, 1, off);
}

int img_read(struct blk_image *img, void *buf, uint64_t len, uint64_t off)
{
	uint8_t *p = buf;
	int err;

	if (off > img->size || len > img->size - off)
		return -EINVAL;
	if (!img->backing || !img->ops->block_status)
		return own_read(img, buf, len, off);
	while (len) {
		uint64_t pnum, map;
		int st = img->ops->block_status(img, off, len, &pnum, &map);

		if (st < 0)
			return st;
		pnum = MIN(pnum, len);
		if (st & BLK_ALLOCATED) {
			if ((err = own_read(img, p, pnum, off)))
				return err;
		} else {
			uint64_t in = off < img->backing->size ? MIN(pnum, img->backing->size - off) : 0;
			if (in && (err = img_read(img->backing, p, in, off)))
				return err;
			memset(p + in, 0, pnum - in);
		}
		p += pnum;
		off += pnum;
		len -= pnum;
	}
	return 0;
}

/* raw: data and holes of the file itself. */
static int file_status(struct blk_image *img, uint64_t off, uint64_t len, uint64_t *pnum,
		       uint64_t *map)
{
	off_t d, h;

	*map = off;
	d = lseek(img->fd, (off_t)off, SEEK_DATA);
	if (d < 0 && errno == ENXIO) {
		*pnum = len;   /* a hole to the end of the file */
		return BLK_ALLOCATED | BLK_ZERO | BLK_OFFSET_VALID;
	}
	if (d < 0) {
		*pnum = len;   /* no SEEK_DATA: all data */
		return BLK_ALLOCATED | BLK_DATA | BLK_OFFSET_VALID;
	}
	if ((uint64_t)d > off) {
		*pnum = MIN(len, (uint64_t)d - off);
		return BLK_ALLOCATED | BLK_ZERO | BLK_OFFSET_VALID;
	}
	h = lseek(img->fd, (off_t)off, SEEK_HOLE);
	*pnum = h < 0 || (uint64_t)h <= off ? len : MIN(len, (uint64_t)h - off);
	return BLK_ALLOCATED | BLK_DATA | BLK_OFFSET_VALID;
}

int img_block_status(struct blk_image *img, uint64_t off, uint64_t len, uint64_t *pnum,
		     uint64_t *map)
{
	int st;

	if (off >= img->size || !len)
		return -EINVAL;
	len = MIN(len, img->size - off);
	*map = 0;
	if (img->ops->block_status)
		st = img->ops->block_status(img, off, len, pnum, map);
	else if (!strcmp(img->ops->name, "raw") && !img->is_blockdev)
		st = file_status(img, off, len, pnum, map);
	else {
		*pnum = len;
		*map = off;
		st = BLK_ALLOCATED | BLK_DATA;
	}
	if (st >= 0 && (!*pnum || *pnum > len))
		*pnum = len;   /* a format that says nothing useful: take it all */
	return st;
}

int img_chain_status(struct blk_image *img, uint64_t off, uint64_t len, uint64_t *pnum,
		     uint64_t *map, int *depth, struct blk_image **owner)
{
	int d = 0;

	for (;;) {
		int st = img_block_status(img, off, len, pnum, map);

		if (st < 0)
			return st;
		if ((st & BLK_ALLOCATED) || !img->backing) {
			*depth = d;
			*owner = img;
			return st;
		}
		/* Not here: the backing file decides (zeros past its end). */
		len = *pnum;
		if (off >= img->backing->size) {
			*depth = d + 1;
			*owner = img->backing;
			return BLK_ZERO;
		}
		len = MIN(len, img->backing->size - off);
		img = img->backing;
		d++;
	}
}

int img_parse_create_opts(const char *s, struct blk_create_opts *o, const char **fmt)
{
	char *copy = strdup(s), *save = NULL, *kv;
	int err = 0;

	(void)fmt;
	if (!copy)
		return -ENOMEM;
	for (kv = strtok_r(copy, ",", &save); kv && !err; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');
		uint64_t n;

		if (v)
			*v++ = 0;
		if (!strcmp(kv, "cluster_size") && v) {
			if (img_parse_size(v, &n) || n < 512 || n > 2 * MiB || (n & (n - 1))) {
				img_err("Cluster size must be a power of two between 512 and 2048k");
				err = -EINVAL;
			}
			o->cluster_size = (uint32_t)n;
		} else if (!strcmp(kv, "refcount_bits") && v) {
			if (parse_uint(v, 1, 64, &n) || (n & (n - 1))) {
				img_err("Refcount width must be a power of two and may not exceed 64 bits");
				err = -EINVAL;
			}
			o->refcount_bits = (int)n;
		} else if (!strcmp(kv, "compression_type") && v) {
			if (strcmp(v, "zlib") && strcmp(v, "zstd")) {
				img_err("Invalid parameter '%s'", v);
				err = -EINVAL;
			}
			o->compression_type = !strcmp(v, "zlib") ? "zlib" : "zstd";
		} else if (!strcmp(kv, "lazy_refcounts") || !strcmp(kv, "extended_l2")) {
			bool on = !v || !strcmp(v, "on") || !strcmp(v, "true");
			if (v && !on && strcmp(v, "off") && strcmp(v, "false")) {
				img_err("Parameter '%s' expects 'on' or 'off'", kv);
				err = -EINVAL;
			}
			if (kv[0] == 'l')
				o->lazy_refcounts = on;
			else
				o->extended_l2 = on;
		} else if (!strcmp(kv, "size") && v) {
			if (img_parse_size(v, &o->size)) {
				img_err("Parameter 'size' expects a size");
				err = -EINVAL;
			}
		} else if (!strcmp(kv, "backing_file") && v) {
			o->backing_file = strdup(v);
		} else if (!strcmp(kv, "backing_fmt") && v) {
			o->backing_format = strdup(v);
		} else if (!strcmp(kv, "compat") && v && (!strcmp(v, "1.1") || !strcmp(v, "v3"))) {
			/* kumo writes version 3 only */
		} else {
			img_err("Invalid parameter '%s'", kv);
			err = -EINVAL;
		}
	}
	free(copy);
	return err;
}

void img_progress(struct img_progress *p, uint64_t done, uint64_t total)
{
	double pct = total ? 100.0 * (double)done / (double)total : 100.0;

	if (!p->on || (pct - p->last < 1.0 && pct < 100.0 && done))
		return;
	p->last = pct;
	printf("    (%3.2f/100%%)\r", pct);
	fflush(stdout);
}

void img_progress_end(struct img_progress *p)
{
	if (!p->on)
		return;
	printf("    (100.00/100%%)\r\n");
	fflush(stdout);
}

/* ---- JSON ---- */

static void json_indent(struct img_json *j)
{
	fputc('\n', j->f);
	for (int i = 0; i < j->depth; i++)
		fputs("    ", j->f);
}

static void json_key(struct img_json *j, const char *key)
{
	if (j->depth > 0) {
		if (!j->first[j->depth])
			fputc(',', j->f);
		j->first[j->depth] = false;
		json_indent(j);
	}
	if (key)
		fprintf(j->f, "\"%s\": ", key);
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

void json_begin(struct img_json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
}

static void json_open(struct img_json *j, const char *key, char c)
{
	json_key(j, key);
	fputc(c, j->f);
	if (j->depth < 15)
		j->depth++;
	j->first[j->depth] = true;
}

static void json_close(struct img_json *j, char c)
{
	bool empty = j->first[j->depth];

	if (j->depth > 0)
		j->depth--;
	if (!empty)
		json_indent(j);
	fputc(c, j->f);
}

void json_obj_open(struct img_json *j, const char *key) { json_open(j, key, '{'); }
void json_obj_close(struct img_json *j) { json_close(j, '}'); }
void json_arr_open(struct img_json *j, const char *key) { json_open(j, key, '['); }
void json_arr_close(struct img_json *j) { json_close(j, ']'); }

void json_str(struct img_json *j, const char *key, const char *v)
{
	json_key(j, key);
	json_string(j->f, v);
}

void json_u64(struct img_json *j, const char *key, uint64_t v)
{
	json_key(j, key);
	fprintf(j->f, "%llu", (unsigned long long)v);
}

void json_bool(struct img_json *j, const char *key, bool v)
{
	json_key(j, key);
	fputs(v ? "true" : "false", j->f);
}

void json_end(struct img_json *j)
{
	fputc('\n', j->f);
}

int img_output_format(const char *arg)
{
	if (!strcmp(arg, "json"))
		return 1;
	if (!strcmp(arg, "human"))
		return 0;
	img_err("--output must be used with human or json as argument.");
	return -1;
}

static int create_raw(const char *path, const struct blk_create_opts *o, const char **why)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0) {
		*why = strerror(errno);
		return -errno;
	}
	if (ftruncate(fd, (off_t)o->size)) {
		int err = -errno;
		*why = strerror(errno);
		close(fd);
		return err;
	}
	return close(fd) ? -errno : 0;
}

int img_do_create(const char *path, const char *fmt, const struct blk_create_opts *o, bool quiet)
{
	const struct blk_format_ops *ops = blk_format(fmt);
	const char *why = "cannot create";
	int err;

	if (!ops) {
		img_err("Unknown file format '%s'", fmt);
		return -EINVAL;
	}
	if (!strcmp(fmt, "raw") && o->backing_file) {
		img_err("%s: Backing file not supported for file format 'raw'", path);
		return -EINVAL;
	}
	if (strcmp(fmt, "raw") && !ops->create) {
		img_err("Format driver '%s' does not support image creation", fmt);
		return -ENOTSUP;
	}
	if (!quiet) {
		printf("Formatting '%s', fmt=%s", path, fmt);
		if (!strcmp(fmt, "qcow2"))
			printf(" cluster_size=%u extended_l2=%s compression_type=%s",
			       o->cluster_size ? o->cluster_size : 65536, o->extended_l2 ? "on" : "off",
			       o->compression_type ? o->compression_type : "zlib");
		printf(" size=%llu", (unsigned long long)o->size);
		if (o->backing_file)
			printf(" backing_file=%s", o->backing_file);
		if (o->backing_format)
			printf(" backing_fmt=%s", o->backing_format);
		if (!strcmp(fmt, "qcow2"))
			printf(" lazy_refcounts=%s refcount_bits=%d", o->lazy_refcounts ? "on" : "off",
			       o->refcount_bits ? o->refcount_bits : 16);
		printf("\n");
		fflush(stdout);
	}
	err = ops->create ? ops->create(path, o, &why) : create_raw(path, o, &why);
	if (err)
		img_err("%s: %s", path, why);
	return err;
}

char *img_resolve_backing(const char *overlay, const char *backing)
{
	char *dir, *copy, *out;

	if (backing[0] == '/' || !strchr(overlay, '/'))
		return strdup(backing);
	copy = strdup(overlay);
	if (!copy)
		return NULL;
	dir = dirname(copy);
	if (asprintf(&out, "%s/%s", dir, backing) < 0)
		out = NULL;
	free(copy);
	return out;
}
