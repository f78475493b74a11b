/* Dirty-page logging on the kvm engine, against a real guest: the `memory`
 * test guest writes a pattern into the last page of RAM; with logging on,
 * that page must be reported dirty and a page the guest never touches must
 * not. usage: dirty_log MEMORY_GUEST_ELF */
#include "kumo/machine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEM (64 * MiB)

static bool page_dirty(const uint64_t *bitmap, uint64_t gpa)
{
	uint64_t page = gpa / 4096;
	return bitmap[page / 64] >> (page % 64) & 1;
}

int main(int argc, char **argv)
{
	struct machine m;
	struct machine_config cfg = {
		.mem_size = MEM, .ncpus = 1, .kernel = argv[1], .cmdline = "dirty-log",
		.accel_ops = &kvm_accel_ops,
	};
	uint64_t *bitmap;
	const char *why = "";
	int err, status, rc = 1;

	if (argc != 2)
		return 2;
	if (access("/dev/kvm", R_OK | W_OK)) {
		printf("SKIP: no usable /dev/kvm\n");
		return 77;
	}
	if (!(bitmap = calloc(MEM / 4096 / 64, sizeof(uint64_t))))
		return 2;
	if ((err = machine_create(&m, &cfg, &why))) {
		printf("FAIL: machine_create: %s (%d)\n", why, err);
		goto out;
	}
	if ((err = m.accel->dirty_log_enable(&m, true))) {
		printf("FAIL: dirty_log_enable: %d\n", err);
		goto out;
	}
	status = machine_run(&m);
	if (status != EXIT_TEST_BASE) {
		printf("FAIL: guest exit status %d\n", status);
		goto out;
	}
	if ((err = m.accel->dirty_log_get(&m, 0, bitmap))) {
		printf("FAIL: dirty_log_get: %d\n", err);
		goto out;
	}
	if (!page_dirty(bitmap, MEM - 4096)) {
		printf("FAIL: the page the guest wrote (0x%llx) is not dirty\n",
		       (unsigned long long)(MEM - 4096));
		goto out;
	}
	if (page_dirty(bitmap, MEM / 2)) {
		printf("FAIL: a page the guest never touched (0x%llx) is dirty\n",
		       (unsigned long long)(MEM / 2));
		goto out;
	}
	/* Fetching clears: nothing ran since, so nothing is dirty now. */
	memset(bitmap, 0, MEM / 4096 / 8);
	if ((err = m.accel->dirty_log_get(&m, 0, bitmap)) || page_dirty(bitmap, MEM - 4096)) {
		printf("FAIL: the log was not cleared by the first fetch (%d)\n", err);
		goto out;
	}
	printf("ok: guest writes tracked, untouched pages clean, fetch clears\n");
	rc = 0;
out:
	machine_destroy(&m);
	free(bitmap);
	return rc;
}
