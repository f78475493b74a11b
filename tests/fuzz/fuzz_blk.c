/* Shared by the fuzz targets of the foreign image readers (see fuzz_blk.h). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_blk.h"
#include "fuzz_boot.h"

#define MAX_STEPS 256
#define MAX_READ (256 * 1024)

static void walk(struct blk_image *img)
{
	uint64_t off = 0, budget = MAX_READ;
	uint8_t *buf = malloc(MAX_READ);

	FUZZ_CHECK(buf);
	for (int step = 0; step < MAX_STEPS && off < img->size; step++) {
		uint64_t pnum = 0, map = 0, want = MIN(img->size - off, 1ULL << 30);
		int st = img->ops->block_status(img, off, want, &pnum, &map);
		struct iovec iov;

		if (st < 0)
			break;
		FUZZ_CHECK(pnum > 0 && pnum <= want);
		iov.iov_base = buf;
		iov.iov_len = MIN(pnum, budget);
		if (iov.iov_len && !img->ops->preadv(img, &iov, 1, off) &&
		    (!(st & BLK_ALLOCATED) || (st & BLK_ZERO)))
			for (size_t i = 0; i < iov.iov_len; i++)
				FUZZ_CHECK(!buf[i]);
		budget -= iov.iov_len;
		off += pnum;
	}
	free(buf);
}

void fuzz_blk_open_walk(const uint8_t *data, size_t size, const char *format,
			const struct blk_format_ops *ops)
{
	const struct blk_open_opts o = { .read_only = true, .format = format };
	struct blk_image *img = NULL;
	const char *why = NULL;
	char path[64];
	int fd = memfd_create(format, MFD_CLOEXEC);

	FUZZ_CHECK(blk_format(format) == ops);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (!blk_open2(path, &o, &img, &why)) {
		struct blk_info bi;
		FUZZ_CHECK(!img->ops->info(img, &bi));
		walk(img);
		blk_close(img);
	} else {
		FUZZ_CHECK(why && *why);
	}
	close(fd);
}
