/* Shared by the fuzz targets of the foreign image readers (fuzz_vhd.c,
 * fuzz_vmdk.c): open any bytes as one format, read-only, and walk it. */
#ifndef KUMO_FUZZ_BLK_H
#define KUMO_FUZZ_BLK_H

#include <stddef.h>
#include <stdint.h>

#include "kumo/block.h"

/* Writes data to a memfd and opens it read-only as format (whose ops
 * must be ops: a strong reference that links the format in). Opened, the
 * image's info must succeed and a walk with block_status checks that runs
 * are non-empty and inside the disk and that unallocated or zero runs
 * read as zeros; not opened, the open must say why. */
void fuzz_blk_open_walk(const uint8_t *data, size_t size, const char *format,
			const struct blk_format_ops *ops);

#endif
