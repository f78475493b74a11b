/* Test payloads compressed with the libraries' own encoders. */
#include "packers.h"

#include <bzlib.h>
#include <limits.h>
#include <lz4.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "kumo/util.h"

const char *const pack_formats[] = { "xz", "lzma", "gzip", "bzip2", "lz4", "zstd" };
const size_t pack_nr_formats = ARRAY_SIZE(pack_formats);

static void fail(const char *what)
{
	fprintf(stderr, "packers: %s failed\n", what);
	abort();
}

static size_t pack_lzma(bool alone, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_options_lzma opt;
	size_t n;

	if (lzma_lzma_preset(&opt, 6))
		fail("lzma preset");
	opt.dict_size = 1 << 20;
	if (alone ? lzma_alone_encoder(&s, &opt) != LZMA_OK :
		    lzma_easy_encoder(&s, 6, LZMA_CHECK_CRC32) != LZMA_OK)
		fail("lzma encoder");
	s.next_in = in;
	s.avail_in = len;
	s.next_out = out;
	s.avail_out = cap;
	if (lzma_code(&s, LZMA_FINISH) != LZMA_STREAM_END)
		fail("lzma_code");
	n = cap - s.avail_out;
	lzma_end(&s);
	return n;
}

static size_t pack_gzip(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	z_stream z = { 0 };
	size_t n;

	if (deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		fail("deflateInit2");
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		fail("deflate");
	n = cap - z.avail_out;
	deflateEnd(&z);
	return n;
}

static size_t pack_bzip2(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	unsigned n = (unsigned)cap;

	if (BZ2_bzBuffToBuffCompress((char *)out, &n, (char *)in, (unsigned)len, 9, 0, 0) != BZ_OK)
		fail("bzip2");
	return n;
}

/* lz4 -l: the legacy frame, 8 MiB blocks. */
static size_t pack_lz4(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t pos = 0, n = 4;

	put_le32(out, 0x184c2102);
	while (pos < len) {
		size_t chunk = MIN(len - pos, (size_t)8 * MiB);
		int c = LZ4_compress_default((const char *)in + pos, (char *)out + n + 4, (int)chunk,
					     (int)(cap - n - 4));
		if (c <= 0)
			fail("lz4");
		put_le32(out + n, (uint32_t)c);
		n += 4 + (size_t)c;
		pos += chunk;
	}
	return n;
}

static size_t pack_zstd(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t n = ZSTD_compress(out, cap, in, len, 19);

	if (ZSTD_isError(n))
		fail("zstd");
	return n;
}

uint8_t *pack(const char *format, const uint8_t *in, size_t len, size_t *out_len)
{
	size_t cap = len + len / 2 + 64 * 1024, n;
	uint8_t *out = malloc(cap + 4);

	if (!out)
		fail("malloc");
	if (!strcmp(format, "xz"))
		n = pack_lzma(false, in, len, out, cap);
	else if (!strcmp(format, "lzma"))
		n = pack_lzma(true, in, len, out, cap);
	else if (!strcmp(format, "gzip"))
		n = pack_gzip(in, len, out, cap);
	else if (!strcmp(format, "bzip2"))
		n = pack_bzip2(in, len, out, cap);
	else if (!strcmp(format, "lz4"))
		n = pack_lz4(in, len, out, cap);
	else if (!strcmp(format, "zstd"))
		n = pack_zstd(in, len, out, cap);
	else
		fail(format);
	put_le32(out + n, (uint32_t)len); /* Linux's size_append */
	*out_len = n + 4;
	return out;
}
