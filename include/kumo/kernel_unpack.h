/* Decompresses a bzImage's kernel payload on the host, so that kumo can
 * enter the uncompressed vmlinux directly instead of running the guest's
 * own decompressor (which is slow on the emu engine). The payload is
 * untrusted: every format is decoded with bounded output and bounded
 * decoder memory, and every failure is an error code, never an abort. */
#ifndef KUMO_KERNEL_UNPACK_H
#define KUMO_KERNEL_UNPACK_H

#include "kumo/util.h"

/* No payload unpacks to more than this, whatever its header says: the
 * guest's memory bounds any kernel anyway. */
#define KERNEL_UNPACK_MAX (1ULL << 30)

/* The name of the payload's compression format ("xz", "gzip", ...) by its
 * magic, or NULL when kumo has no decoder for it. */
const char *kernel_unpack_format(const uint8_t *in, size_t len);

/* Decompresses in[0..len) into a malloc'd buffer of at most max bytes
 * (max <= KERNEL_UNPACK_MAX). The payload is one stream in the format its
 * magic names; bytes after the end of that stream (a Linux payload ends
 * with its 4-byte uncompressed size) are ignored. On success *out (free()
 * it) holds *out_len bytes and *format names the format.
 *   -ENOTSUP  unknown format (no decoder for its magic)
 *   -EBADMSG  corrupt or truncated stream
 *   -EFBIG    the output would exceed max (a decompression bomb stops here)
 *   -ENOMEM   out of host memory, or the stream asks the decoder for more
 *             memory than kumo allows
 * *why is one line for the user. */
int kernel_unpack(const uint8_t *in, size_t len, size_t max, uint8_t **out, size_t *out_len,
		  const char **format, const char **why) WUR;

#endif
