/* Fuzz target: what virtio-net takes from a guest's transmit chain
 * (vnet_tx_prepare: the header copied and checked, the frame's segments
 * after it) and the --net option / MAC parsers, on the same bytes.
 *
 * Input: features (8 bytes, little endian), a segment count (1 byte,
 * 1-16), that many 16-bit segment lengths (a length's top bit makes it
 * four times longer, so chains past the 64 KiB limit happen), then the
 * chain's first bytes (repeated when short). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kumo/machine.h"
#include "kumo/tap.h"
#include "fuzz_boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void fuzz_target_seeds(void (*add)(const char *name, uint8_t *data, size_t len));

#define MAX_SEGS 16
#define SEG_MAX (4 * 32768)

static uint8_t chain[MAX_SEGS * SEG_MAX];

static void parsers(const uint8_t *data, size_t size)
{
	char arg[128];
	struct machine_nic nic;
	uint8_t mac[6];
	char why[160];
	size_t len = MIN(size, sizeof(arg) - 1);

	memcpy(arg, data, len);
	arg[len] = 0;
	if (mac_parse(arg, mac) == 0)
		FUZZ_CHECK(strlen(arg) == 17);
	why[0] = 0;
	if (net_option_parse(arg, &nic, why, sizeof(why)) == 0) {
		FUZZ_CHECK(!nic.tap != (nic.tap_fd < 0));
		if (nic.tap) {
			FUZZ_CHECK(nic.tap >= arg && nic.tap < arg + sizeof(arg));
			FUZZ_CHECK(strlen(nic.tap) >= 1 && strlen(nic.tap) <= 15);
		}
		FUZZ_CHECK(!nic.mac_set || !(nic.mac[0] & 1));
	} else {
		FUZZ_CHECK(why[0] && !strchr(why, '\n'));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iovec iov[MAX_SEGS], out[MAX_SEGS + 1];
	uint8_t hdr[VNET_HDR_LEN], first[VNET_HDR_LEN];
	uint64_t features;
	size_t total = 0, at = 0, body_len, outlen = 0;
	unsigned n;
	const uint8_t *body;
	int rc;

	parsers(data, size);
	if (size < 9)
		return 0;
	features = get_le64(data);
	n = data[8] % MAX_SEGS + 1;
	if (size < 9 + 2 * (size_t)n)
		return 0;
	body = data + 9 + 2 * n;
	body_len = size - 9 - 2 * n;
	for (unsigned i = 0; i < n; i++) {
		uint16_t l = get_le16(data + 9 + 2 * i);
		size_t len = l & 0x8000 ? (size_t)(l & 0x7fff) * 4 : l;
		iov[i] = (struct iovec){ chain + at, len };
		at += len;
		total += len;
	}
	/* Only the header is read: the rest of the chain stays as it is. */
	for (size_t j = 0; j < MIN(total, 64); j++)
		chain[j] = body_len ? body[j % body_len] : 0;
	memcpy(first, chain, MIN(total, sizeof(first)));

	rc = vnet_tx_prepare(iov, n, features, hdr, out);
	if (rc < 0) {
		FUZZ_CHECK(rc == -EINVAL);
		FUZZ_CHECK(total < VNET_HDR_LEN || total > VNET_HDR_LEN + VNET_MAX_FRAME ||
			   vnet_hdr_check(first, total - VNET_HDR_LEN, features) == -EINVAL);
		return 0;
	}
	FUZZ_CHECK(rc >= 1 && rc <= (int)n + 1);
	FUZZ_CHECK(total >= VNET_HDR_LEN && total <= VNET_HDR_LEN + VNET_MAX_FRAME);
	FUZZ_CHECK(out[0].iov_base == hdr && out[0].iov_len == VNET_HDR_LEN);
	FUZZ_CHECK(memcmp(hdr, first, VNET_HDR_LEN) == 0);
	FUZZ_CHECK(vnet_hdr_check(hdr, total - VNET_HDR_LEN, features) == 0);
	/* The frame: the chain's bytes after the header, in order, none empty. */
	for (int i = 1; i < rc; i++) {
		const uint8_t *b = out[i].iov_base;
		FUZZ_CHECK(out[i].iov_len > 0);
		FUZZ_CHECK(b == chain + VNET_HDR_LEN + outlen);
		outlen += out[i].iov_len;
	}
	FUZZ_CHECK(outlen == total - VNET_HDR_LEN);
	return 0;
}

/* Seeds: a plain frame, a TSO frame with its header split, a checksum
 * request, and the option string. */
void fuzz_target_seeds(void (*add)(const char *name, uint8_t *data, size_t len))
{
	static const struct {
		const char *name;
		uint8_t flags, gso;
		uint16_t hdr_len, gso_size, cs, co;
		unsigned nseg;
		uint16_t seg[3];
	} s[] = {
		{ "net-plain", 0, 0, 0, 0, 0, 0, 1, { 74 } },
		{ "net-tso-split", 1, 1, 66, 1448, 34, 16, 3, { 5, 7, 0x8000 | 4000 } },
		{ "net-csum", 1, 0, 0, 0, 34, 6, 2, { 12, 62 } },
	};

	for (unsigned i = 0; i < ARRAY_SIZE(s); i++) {
		size_t len = 9 + 2 * s[i].nseg + 128;
		uint8_t *d = calloc(1, len), *b;
		if (!d)
			return;
		put_le64(d, (1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_HOST_TSO4) |
			    (1ULL << VIRTIO_NET_F_HOST_TSO6) | (1ULL << VIRTIO_NET_F_HOST_UFO));
		d[8] = (uint8_t)(s[i].nseg - 1);
		for (unsigned j = 0; j < s[i].nseg; j++)
			put_le16(d + 9 + 2 * j, s[i].seg[j]);
		b = d + 9 + 2 * s[i].nseg;
		b[0] = s[i].flags;
		b[1] = s[i].gso;
		put_le16(b + 2, s[i].hdr_len);
		put_le16(b + 4, s[i].gso_size);
		put_le16(b + 6, s[i].cs);
		put_le16(b + 8, s[i].co);
		for (unsigned j = VNET_HDR_LEN; j < 128; j++)
			b[j] = (uint8_t)(j * 7);
		add(s[i].name, d, len);
	}
	{
		static const char opt[] = "tap=kumo0,mac=02:4b:4d:00:00:01";
		uint8_t *d = malloc(sizeof(opt) - 1);
		if (!d)
			return;
		memcpy(d, opt, sizeof(opt) - 1);
		add("net-option", d, sizeof(opt) - 1);
	}
}
