/* Host-side decompression of a bzImage's kernel payload: one table of
 * decoders keyed by magic, the formats of Linux's HAVE_KERNEL_* (less LZO).
 *
 * Output goes to a growing buffer that never holds more than max + 1 bytes:
 * the one spare byte lets a stream of exactly max bytes reach its end
 * marker, and any stream that writes it is a bomb (-EFBIG). Decoders whose
 * memory depends on the stream (xz/lzma dictionaries, zstd windows) get a
 * fixed limit. */
#include "kumo/kernel_unpack.h"

#include <bzlib.h>
#include <errno.h>
#include <limits.h>
#include <lz4.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

/* Decoder memory: Linux builds xz with a 32 MiB dictionary and zstd with
 * -22 --ultra (a 128 MiB window); nothing a kernel needs goes past this. */
#define DECODER_MEM_MAX (256 * MiB)
#define ZSTD_WINDOW_LOG_MAX 27
#define LZ4_LEGACY_MAGIC 0x184c2102U
#define LZ4_LEGACY_BLOCK (8 * MiB)

struct outbuf {
	uint8_t *p;
	size_t len, cap;
	size_t limit; /* max + 1 */
};

/* Room for need more bytes of output (at least one): doubles the buffer
 * up to limit. -EFBIG when the buffer is at limit and full. */
static int out_reserve(struct outbuf *o, size_t need, const char **why)
{
	while (o->cap - o->len < need && o->cap < o->limit) {
		size_t cap = o->cap > o->limit / 2 ? o->limit : MAX(o->cap * 2, (size_t)64 * KiB);
		uint8_t *p;

		cap = MIN(cap, o->limit);
		p = realloc(o->p, cap);
		if (!p) {
			*why = "out of memory unpacking the kernel payload";
			return -ENOMEM;
		}
		o->p = p;
		o->cap = cap;
	}
	if (o->len == o->cap) {
		*why = "the kernel payload unpacks to more than its size limit";
		return -EFBIG;
	}
	return 0;
}

static int truncated(const char **why)
{
	*why = "the kernel payload is truncated (the stream ends early)";
	return -EBADMSG;
}

static int corrupt(const char **why)
{
	*why = "the kernel payload is corrupt";
	return -EBADMSG;
}

/* ---- xz and lzma (liblzma) ---- */

static int lzma_run(lzma_stream *s, const uint8_t *in, size_t len, struct outbuf *o,
		    const char **why)
{
	int err = 0;

	s->next_in = in;
	s->avail_in = len;
	for (;;) {
		size_t in_before, out_before;
		lzma_ret r;

		if ((err = out_reserve(o, 1, why)))
			break;
		s->next_out = o->p + o->len;
		s->avail_out = o->cap - o->len;
		in_before = s->avail_in;
		out_before = s->avail_out;
		r = lzma_code(s, LZMA_FINISH);
		o->len = o->cap - s->avail_out;
		if (r == LZMA_STREAM_END)
			break;
		if (r == LZMA_MEM_ERROR || r == LZMA_MEMLIMIT_ERROR) {
			*why = "the kernel payload needs more decoder memory than kumo allows";
			err = -ENOMEM;
			break;
		}
		if (r == LZMA_BUF_ERROR || (r == LZMA_OK && s->avail_out && !s->avail_in)) {
			err = truncated(why);
			break;
		}
		if (r != LZMA_OK || (s->avail_in == in_before && s->avail_out == out_before)) {
			err = corrupt(why);
			break;
		}
	}
	lzma_end(s);
	return err;
}

static int unpack_xz(const uint8_t *in, size_t len, struct outbuf *o, const char **why)
{
	lzma_stream s = LZMA_STREAM_INIT;

	if (lzma_stream_decoder(&s, DECODER_MEM_MAX, 0) != LZMA_OK) {
		*why = "cannot start the xz decoder";
		return -ENOMEM;
	}
	return lzma_run(&s, in, len, o, why);
}

static int unpack_lzma(const uint8_t *in, size_t len, struct outbuf *o, const char **why)
{
	lzma_stream s = LZMA_STREAM_INIT;

	if (lzma_alone_decoder(&s, DECODER_MEM_MAX) != LZMA_OK) {
		*why = "cannot start the lzma decoder";
		return -ENOMEM;
	}
	return lzma_run(&s, in, len, o, why);
}

/* ---- gzip (zlib) ---- */

static int unpack_gzip(const uint8_t *in, size_t len, struct outbuf *o, const char **why)
{
	z_stream z = { 0 };
	int err = 0;

	if (len > UINT_MAX)
		return corrupt(why);
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) { /* gzip wrapper only */
		*why = "cannot start the gzip decoder";
		return -ENOMEM;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	for (;;) {
		int r;

		if ((err = out_reserve(o, 1, why)))
			break;
		z.next_out = o->p + o->len;
		z.avail_out = (uInt)MIN(o->cap - o->len, (size_t)UINT_MAX);
		r = inflate(&z, Z_NO_FLUSH);
		o->len = (size_t)(z.next_out - o->p);
		if (r == Z_STREAM_END)
			break;
		if (r == Z_MEM_ERROR) {
			*why = "out of memory unpacking the kernel payload";
			err = -ENOMEM;
			break;
		}
		if (r != Z_OK && r != Z_BUF_ERROR) {
			err = corrupt(why);
			break;
		}
		if (z.avail_out && !z.avail_in) {
			err = truncated(why);
			break;
		}
	}
	inflateEnd(&z);
	return err;
}

/* ---- bzip2 (libbz2) ---- */

static int unpack_bzip2(const uint8_t *in, size_t len, struct outbuf *o, const char **why)
{
	bz_stream b = { 0 };
	int err = 0;

	if (len > UINT_MAX)
		return corrupt(why);
	if (BZ2_bzDecompressInit(&b, 0, 0) != BZ_OK) {
		*why = "cannot start the bzip2 decoder";
		return -ENOMEM;
	}
	b.next_in = (char *)in;
	b.avail_in = (unsigned)len;
	for (;;) {
		int r;

		if ((err = out_reserve(o, 1, why)))
			break;
		b.next_out = (char *)o->p + o->len;
		b.avail_out = (unsigned)MIN(o->cap - o->len, (size_t)UINT_MAX);
		r = BZ2_bzDecompress(&b);
		o->len = (size_t)((uint8_t *)b.next_out - o->p);
		if (r == BZ_STREAM_END)
			break;
		if (r == BZ_MEM_ERROR) {
			*why = "out of memory unpacking the kernel payload";
			err = -ENOMEM;
			break;
		}
		if (r != BZ_OK) {
			err = corrupt(why);
			break;
		}
		if (b.avail_out && !b.avail_in) {
			err = truncated(why);
			break;
		}
	}
	BZ2_bzDecompressEnd(&b);
	return err;
}

/* ---- zstd (libzstd) ---- */

static int unpack_zstd(const uint8_t *in, size_t len, struct outbuf *o, const char **why)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer ib = { in, len, 0 };
	int err = 0;

	if (!d || ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX))) {
		ZSTD_freeDCtx(d);
		*why = "cannot start the zstd decoder";
		return -ENOMEM;
	}
	for (;;) {
		ZSTD_outBuffer ob;
		size_t r;

		if ((err = out_reserve(o, 1, why)))
			break;
		ob = (ZSTD_outBuffer){ o->p, o->cap, o->len };
		r = ZSTD_decompressStream(d, &ob, &ib);
		o->len = ob.pos;
		if (ZSTD_isError(r)) {
			ZSTD_ErrorCode code = ZSTD_getErrorCode(r);

			if (code == ZSTD_error_frameParameter_windowTooLarge) {
				*why = "the kernel payload needs more decoder memory than kumo allows";
				err = -ENOMEM;
			} else if (code == ZSTD_error_memory_allocation) {
				*why = "out of memory unpacking the kernel payload";
				err = -ENOMEM;
			} else {
				err = corrupt(why);
			}
			break;
		}
		if (r == 0) /* the frame is complete; what follows is not ours */
			break;
		if (ob.pos < ob.size && ib.pos == ib.size) {
			err = truncated(why);
			break;
		}
	}
	ZSTD_freeDCtx(d);
	return err;
}

/* ---- lz4 legacy frames (lz4 -l, as Linux uses) ----
 * magic, then blocks: a 32-bit LE compressed size and the block, each
 * block unpacking to at most 8 MiB. Linux appends the 4-byte unpacked
 * size after the last block; a repeated magic starts a new archive. */

static int unpack_lz4(const uint8_t *in, size_t len, struct outbuf *o, const char **why)
{
	size_t pos = 4;
	unsigned blocks = 0;

	while (len - pos >= 4) {
		uint32_t c = get_le32(in + pos);
		size_t room;
		int n, err;

		if (c == LZ4_LEGACY_MAGIC) {
			pos += 4;
			continue;
		}
		if (len - pos == 4 && blocks)
			break; /* the appended size */
		pos += 4;
		if (c == 0 || c > (uint32_t)LZ4_compressBound((int)LZ4_LEGACY_BLOCK))
			return corrupt(why);
		if (c > len - pos)
			return truncated(why);
		if ((err = out_reserve(o, LZ4_LEGACY_BLOCK, why)))
			return err;
		room = MIN(o->cap - o->len, LZ4_LEGACY_BLOCK);
		n = LZ4_decompress_safe((const char *)in + pos, (char *)o->p + o->len, (int)c, (int)room);
		if (n < 0) {
			if (room < LZ4_LEGACY_BLOCK) { /* cut short by the limit */
				*why = "the kernel payload unpacks to more than its size limit";
				return -EFBIG;
			}
			return corrupt(why);
		}
		o->len += (size_t)n;
		pos += c;
		blocks++;
	}
	return blocks ? 0 : truncated(why);
}

/* ---- the table ---- */

static const struct unpacker {
	const char *name;
	uint8_t magic[6];
	uint8_t magic_len;
	int (*unpack)(const uint8_t *in, size_t len, struct outbuf *o, const char **why);
} unpackers[] = {
	{ "xz", { 0xfd, '7', 'z', 'X', 'Z', 0x00 }, 6, unpack_xz },
	{ "zstd", { 0x28, 0xb5, 0x2f, 0xfd }, 4, unpack_zstd },
	{ "gzip", { 0x1f, 0x8b, 0x08 }, 3, unpack_gzip },
	{ "bzip2", { 'B', 'Z', 'h' }, 3, unpack_bzip2 },
	{ "lz4", { 0x02, 0x21, 0x4c, 0x18 }, 4, unpack_lz4 },
	/* lzma_alone: properties byte 0x5d (lc=3 lp=0 pb=2, what every lzma
	 * tool writes), then the dictionary size, little endian. */
	{ "lzma", { 0x5d, 0x00, 0x00 }, 3, unpack_lzma },
};

static const struct unpacker *find_unpacker(const uint8_t *in, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(unpackers); i++) {
		const struct unpacker *u = &unpackers[i];

		if (len >= u->magic_len && !memcmp(in, u->magic, u->magic_len))
			return u;
	}
	return NULL;
}

const char *kernel_unpack_format(const uint8_t *in, size_t len)
{
	const struct unpacker *u = find_unpacker(in, len);

	return u ? u->name : NULL;
}

int kernel_unpack(const uint8_t *in, size_t len, size_t max, uint8_t **out, size_t *out_len,
		  const char **format, const char **why)
{
	const struct unpacker *u = find_unpacker(in, len);
	struct outbuf o = { .limit = MIN(max, (size_t)KERNEL_UNPACK_MAX) + 1 };
	uint32_t hint = len >= 4 ? get_le32(in + len - 4) : 0;
	int err;

	*out = NULL;
	*out_len = 0;
	*format = u ? u->name : "unknown";
	if (!u) {
		*why = "the kernel payload's compression format is unknown";
		return -ENOTSUP;
	}
	/* Linux appends the unpacked size: the first guess at the buffer
	 * (only a guess: the stream decides, the limit bounds it). */
	o.cap = hint && hint < o.limit ? (size_t)hint + 1 : MIN(o.limit, MAX(4 * len, (size_t)MiB));
	o.p = malloc(o.cap);
	if (!o.p) {
		*why = "out of memory unpacking the kernel payload";
		return -ENOMEM;
	}
	err = u->unpack(in, len, &o, why);
	if (!err && o.len >= o.limit) {
		*why = "the kernel payload unpacks to more than its size limit";
		err = -EFBIG;
	}
	if (err) {
		free(o.p);
		return err;
	}
	*out = o.p;
	*out_len = o.len;
	return 0;
}
