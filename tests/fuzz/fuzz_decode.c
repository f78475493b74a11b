/* Fuzz target: emu_decode (src/emu/decode.c) on any bytes, in every CPU
 * mode, at each of the input's first offsets. Each window is copied to the
 * end of a heap buffer, so that ASan catches a read past avail; the
 * invariants below must hold whatever the bytes are. */
#include <string.h>

#include "cpu.h"
#include "fuzz_boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Offsets tried per input: the first half of them from 0 on, the rest
 * spread over the remainder of a longer input (the driver's mutations land
 * anywhere, random bytes often at the end). Few enough to keep a run of
 * the driver short. */
#define MAX_OFFSETS 48

static void check_ok(const struct emu_insn *in, const uint8_t *p, size_t avail, enum emu_mode mode)
{
	bool long_mode = mode == MODE_LONG64;

	FUZZ_CHECK(in->len >= 1 && in->len <= EMU_INSN_MAX && in->len <= avail);
	FUZZ_CHECK(!memcmp(in->bytes, p, in->len));
	FUZZ_CHECK(in->map <= MAP_0F3A);
	FUZZ_CHECK(in->opsize == 2 || in->opsize == 4 || in->opsize == 8);
	FUZZ_CHECK(in->addrsize == 2 || in->addrsize == 4 || in->addrsize == 8);
	FUZZ_CHECK(long_mode ? in->addrsize != 2 : in->addrsize != 8 && in->opsize != 8);
	FUZZ_CHECK(in->rep == 0 || in->rep == 0xf2 || in->rep == 0xf3);
	FUZZ_CHECK(in->rex == 0 || (long_mode && (in->rex & 0xf0) == 0x40));
	FUZZ_CHECK(in->seg <= SR_GS || in->seg == SR_NONE);
	FUZZ_CHECK(!long_mode || in->seg == SR_FS || in->seg == SR_GS || in->seg == SR_NONE);
	FUZZ_CHECK(in->base >= -1 && in->base <= 15 && in->index >= -1 && in->index <= 15);
	FUZZ_CHECK(in->scale == 1 || in->scale == 2 || in->scale == 4 || in->scale == 8);
	FUZZ_CHECK(!in->rip_relative || (long_mode && in->base == -1 && in->index == -1));
	FUZZ_CHECK(!in->has_sib || (in->has_modrm && in->mod != 3 && in->addrsize != 2));
	FUZZ_CHECK(in->has_modrm || (!in->mod && !in->reg && !in->rm));
	FUZZ_CHECK(in->mod <= 3 && in->reg <= 15 && in->rm <= 15);
	FUZZ_CHECK(!in->has_modrm || in->mod != 3 || (in->base == -1 && in->index == -1));
	FUZZ_CHECK(!in->lock || (in->has_modrm && in->mod != 3));
}

/* Decodes p[0..avail), which sits at the end of a heap buffer. */
static void decode_window(const uint8_t *p, size_t avail, const uint8_t *more, size_t more_len)
{
	for (int m = MODE_REAL; m <= MODE_LONG64; m++) {
		enum emu_mode mode = (enum emu_mode)m;
		struct emu_insn in, again;
		int rc = emu_decode(p, avail, mode, &in);

		FUZZ_CHECK(rc == DECODE_OK || rc == DECODE_UD || rc == DECODE_TOO_LONG ||
			   rc == DECODE_NEED_MORE);
		FUZZ_CHECK(rc != DECODE_NEED_MORE || avail < EMU_INSN_MAX);
		/* The same bytes with more after them: the same answer, unless
		 * more bytes were needed. */
		if (rc != DECODE_NEED_MORE) {
			int rc2 = emu_decode(more, more_len, mode, &again);

			FUZZ_CHECK(rc2 == rc);
			FUZZ_CHECK(rc != DECODE_OK || !memcmp(&in, &again, sizeof(in)));
		}
		if (rc != DECODE_OK)
			continue;
		check_ok(&in, p, avail, mode);
		/* Exactly the instruction's bytes are enough, one less is not. */
		FUZZ_CHECK(emu_decode(p, in.len, mode, &again) == DECODE_OK);
		FUZZ_CHECK(!memcmp(&in, &again, sizeof(in)));
		FUZZ_CHECK(emu_decode(p, in.len - 1u, mode, &again) == DECODE_NEED_MORE);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *buf;
	enum { WIN = EMU_INSN_MAX + 1 };

	if (!buf) {
		buf = malloc(WIN);
		FUZZ_CHECK(buf);
	}
	for (size_t i = 0; i < size && i < MAX_OFFSETS; i++) {
		size_t half = MAX_OFFSETS / 2;
		size_t off = size <= MAX_OFFSETS || i < half ? i : half + (i - half) * (size - half) / half;
		size_t n = MIN(size - off, (size_t)WIN);

		/* Every shorter window too at offset 0. */
		for (size_t k = off ? n : 0; k <= n; k++) {
			uint8_t *p = buf + WIN - k;

			memcpy(p, data + off, k);
			decode_window(p, k, data + off, size - off);
		}
	}
	return 0;
}
