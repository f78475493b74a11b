/* The pure parts of src/net/tap.c: MAC addresses, the --net option, the
 * virtio_net_hdr check and the transmit iovec a chain becomes. (A real tap
 * needs a network namespace: tests/integration/linux-virtio-net.py.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kumo/machine.h"
#include "kumo/tap.h"

#define F(bit) (1ULL << (bit))
#define ALL_TX (F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6) | \
		F(VIRTIO_NET_F_HOST_ECN) | F(VIRTIO_NET_F_HOST_UFO))

static void mac_ok(const char *s, const uint8_t *want)
{
	uint8_t mac[6] = { 0 };

	if (mac_parse(s, mac))
		fail_msg("mac_parse(\"%s\") failed", s);
	assert_memory_equal(mac, want, 6);
}

static void mac_bad(const char *s)
{
	uint8_t mac[6] = { 1, 2, 3, 4, 5, 6 }, keep[6] = { 1, 2, 3, 4, 5, 6 };

	if (mac_parse(s, mac) != -EINVAL)
		fail_msg("mac_parse(\"%s\") accepted it", s ? s : "(null)");
	assert_memory_equal(mac, keep, 6); /* untouched on failure */
}

static void test_mac_parse(void **state)
{
	static const uint8_t a[6] = { 0x02, 0x4b, 0x4d, 0x00, 0x10, 0xff };

	(void)state;
	mac_ok("02:4b:4d:00:10:ff", a);
	mac_ok("02:4B:4D:00:10:FF", a);
	mac_ok("02-4b-4d-00-10-ff", a);
	mac_bad(NULL);
	mac_bad("");
	mac_bad("zz:4b:4d:00:10:ff");
	mac_bad("02:4b:4d:00:10");          /* five octets */
	mac_bad("02:4b:4d:00:10:ff:00");    /* seven */
	mac_bad("02:4b:4d:00:10:f");        /* short last octet */
	mac_bad("2:4b:4d:00:10:ff");        /* one digit */
	mac_bad("02:4b:4d:00:10:fff");
	mac_bad("02:4b-4d:00:10:ff");       /* mixed separators */
	mac_bad("024b4d0010ff");
	mac_bad("02:4b:4d:00:10:ff ");
	mac_bad(" 02:4b:4d:00:10:ff");
	mac_bad("02::4b:4d:00:10");
}

static void test_mac_format_default(void **state)
{
	uint8_t mac[6], back[6];
	char buf[18];

	(void)state;
	mac_default(0, mac);
	mac_format(mac, buf);
	assert_string_equal(buf, "02:4b:4d:00:00:00");
	mac_default(7, mac);
	mac_format(mac, buf);
	assert_string_equal(buf, "02:4b:4d:00:00:07");
	assert_int_equal(mac_parse(buf, back), 0);
	assert_memory_equal(mac, back, 6);
	/* Locally administered, unicast. */
	assert_int_equal(mac[0] & 3, 2);
}

static int parse(const char *opt, struct machine_nic *nic, char *why)
{
	static char arg[256];

	snprintf(arg, sizeof(arg), "%s", opt);
	why[0] = 0;
	return net_option_parse(arg, nic, why, 160);
}

static void test_net_option(void **state)
{
	static const uint8_t mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
	struct machine_nic nic;
	char why[160];

	(void)state;
	assert_int_equal(parse("tap=tap0", &nic, why), 0);
	assert_string_equal(nic.tap, "tap0");
	assert_false(nic.mac_set);
	assert_int_equal(nic.tap_fd, -1);

	assert_int_equal(parse("tap=kumo-tap0,mac=02:00:00:00:00:01", &nic, why), 0);
	assert_string_equal(nic.tap, "kumo-tap0");
	assert_true(nic.mac_set);
	assert_memory_equal(nic.mac, mac, 6);
	assert_int_equal(parse("mac=02:00:00:00:00:01,tap=x", &nic, why), 0);
	assert_string_equal(nic.tap, "x");
	assert_true(nic.mac_set);
	assert_int_equal(parse("tap=123456789012345", &nic, why), 0); /* 15: IFNAMSIZ - 1 */
	assert_int_equal(parse("fd=3,mac=02:00:00:00:00:01", &nic, why), 0);
	assert_null(nic.tap);
	assert_int_equal(nic.tap_fd, 3);
	assert_true(nic.mac_set);
}

static void option_bad(const char *opt, const char *want)
{
	struct machine_nic nic;
	char why[160];

	if (parse(opt, &nic, why) != -EINVAL)
		fail_msg("--net %s accepted", opt);
	if (!strstr(why, want))
		fail_msg("--net %s: \"%s\" does not say \"%s\"", opt, why, want);
	if (strchr(why, '\n'))
		fail_msg("--net %s: more than one line", opt);
}

static void test_net_option_bad(void **state)
{
	(void)state;
	option_bad("tap=tap0,mac=zz:00:00:00:00:01", "'zz:00:00:00:00:01' is not a MAC address");
	option_bad("tap=tap0,mac=", "'' is not a MAC address");
	option_bad("tap=tap0,mac=01:00:5e:00:00:01", "multicast");
	option_bad("tap=tap0,model=e1000", "unknown option 'model=e1000'");
	option_bad("tap=tap0,", "unknown option ''");
	option_bad("", "unknown option ''");
	option_bad("mac=02:00:00:00:00:01", "tap=NAME is missing");
	option_bad("tap=", "1-15 characters");
	option_bad("tap=1234567890123456", "1-15 characters");
	option_bad("user", "unknown option 'user'");
	option_bad("fd=x", "fd=x is not a file descriptor number");
	option_bad("fd=-1", "fd=-1 is not a file descriptor number");
	option_bad("fd=", "fd= is not a file descriptor number");
	option_bad("fd=2", "fd=2 is the console");
	option_bad("fd=3,tap=x", "exclude each other");
	option_bad("tap=a\nb,mac=x\ny", "'x?y' is not a MAC address"); /* still one line */
}

/* A header: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset. */
static void hdr(uint8_t *h, uint8_t flags, uint8_t gso, uint16_t hdr_len, uint16_t gso_size,
		uint16_t cs, uint16_t co)
{
	memset(h, 0, VNET_HDR_LEN);
	h[0] = flags;
	h[1] = gso;
	put_le16(h + 2, hdr_len);
	put_le16(h + 4, gso_size);
	put_le16(h + 6, cs);
	put_le16(h + 8, co);
}

static void test_hdr_check(void **state)
{
	uint8_t h[VNET_HDR_LEN];

	(void)state;
	hdr(h, 0, 0, 0, 0, 0, 0);
	assert_int_equal(vnet_hdr_check(h, 60, 0), 0);
	/* A checksum to fill in, inside the frame, with CSUM only. */
	hdr(h, VNET_HDR_F_NEEDS_CSUM, 0, 0, 0, 34, 16);
	assert_int_equal(vnet_hdr_check(h, 60, F(VIRTIO_NET_F_CSUM)), 0);
	assert_int_equal(vnet_hdr_check(h, 52, F(VIRTIO_NET_F_CSUM)), 0);  /* 34+16+2 */
	assert_int_equal(vnet_hdr_check(h, 51, F(VIRTIO_NET_F_CSUM)), -EINVAL);
	assert_int_equal(vnet_hdr_check(h, 60, 0), -EINVAL);
	hdr(h, VNET_HDR_F_NEEDS_CSUM, 0, 0, 0, 0xffff, 0xffff);
	assert_int_equal(vnet_hdr_check(h, VNET_MAX_FRAME, ALL_TX), -EINVAL);
	/* Flags the driver must not set. */
	hdr(h, VNET_HDR_F_DATA_VALID, 0, 0, 0, 0, 0);
	assert_int_equal(vnet_hdr_check(h, 60, ALL_TX), -EINVAL);
	hdr(h, 0x80, 0, 0, 0, 0, 0);
	assert_int_equal(vnet_hdr_check(h, 60, ALL_TX), -EINVAL);

	/* TSO: negotiated, with NEEDS_CSUM and an MSS. */
	hdr(h, VNET_HDR_F_NEEDS_CSUM, VNET_HDR_GSO_TCPV4, 66, 1448, 34, 16);
	assert_int_equal(vnet_hdr_check(h, 60000, ALL_TX), 0);
	assert_int_equal(vnet_hdr_check(h, 60000, ALL_TX & ~F(VIRTIO_NET_F_HOST_TSO4)), -EINVAL);
	assert_int_equal(vnet_hdr_check(h, 66, ALL_TX), 0);
	assert_int_equal(vnet_hdr_check(h, 65, ALL_TX), -EINVAL); /* hdr_len past the end */
	hdr(h, 0, VNET_HDR_GSO_TCPV4, 66, 1448, 34, 16);
	assert_int_equal(vnet_hdr_check(h, 60000, ALL_TX), -EINVAL);
	hdr(h, VNET_HDR_F_NEEDS_CSUM, VNET_HDR_GSO_TCPV4, 66, 0, 34, 16);
	assert_int_equal(vnet_hdr_check(h, 60000, ALL_TX), -EINVAL);
	hdr(h, VNET_HDR_F_NEEDS_CSUM, VNET_HDR_GSO_TCPV6, 86, 1428, 54, 16);
	assert_int_equal(vnet_hdr_check(h, 60000, ALL_TX), 0);
	assert_int_equal(vnet_hdr_check(h, 60000, ALL_TX & ~F(VIRTIO_NET_F_HOST_TSO6)), -EINVAL);
	hdr(h, VNET_HDR_F_NEEDS_CSUM, VNET_HDR_GSO_TCPV4 | VNET_HDR_GSO_ECN, 66, 1448, 34, 16);
	assert_int_equal(vnet_hdr_check(h, 60000, ALL_TX), 0);
	assert_int_equal(vnet_hdr_check(h, 60000, ALL_TX & ~F(VIRTIO_NET_F_HOST_ECN)), -EINVAL);
	hdr(h, VNET_HDR_F_NEEDS_CSUM, VNET_HDR_GSO_UDP, 42, 1472, 34, 6);
	assert_int_equal(vnet_hdr_check(h, 60000, ALL_TX), 0);
	assert_int_equal(vnet_hdr_check(h, 60000, ALL_TX & ~F(VIRTIO_NET_F_HOST_UFO)), -EINVAL);
	/* Unknown GSO types. */
	for (unsigned t = 0; t < 256; t++) {
		unsigned base = t & ~VNET_HDR_GSO_ECN;
		if (base == VNET_HDR_GSO_TCPV4 || base == VNET_HDR_GSO_TCPV6 ||
		    base == VNET_HDR_GSO_UDP || t == 0)
			continue;
		hdr(h, VNET_HDR_F_NEEDS_CSUM, (uint8_t)t, 66, 1448, 34, 16);
		assert_int_equal(vnet_hdr_check(h, 60000, ALL_TX), -EINVAL);
	}
}

static void test_tx_prepare(void **state)
{
	uint8_t pkt[VNET_HDR_LEN + 100], h[VNET_HDR_LEN];
	struct iovec iov[4], out[5];
	int n;

	(void)state;
	for (unsigned i = 0; i < sizeof(pkt); i++)
		pkt[i] = (uint8_t)i;
	hdr(pkt, 0, 0, 0, 0, 0, 0);

	/* Header and frame in one segment. */
	iov[0] = (struct iovec){ pkt, sizeof(pkt) };
	n = vnet_tx_prepare(iov, 1, 0, h, out);
	assert_int_equal(n, 2);
	assert_ptr_equal(out[0].iov_base, h);
	assert_int_equal(out[0].iov_len, VNET_HDR_LEN);
	assert_ptr_equal(out[1].iov_base, pkt + VNET_HDR_LEN);
	assert_int_equal(out[1].iov_len, 100);
	assert_memory_equal(h, pkt, VNET_HDR_LEN);

	/* Header split over two segments, an empty one, the frame after. */
	iov[0] = (struct iovec){ pkt, 5 };
	iov[1] = (struct iovec){ pkt + 5, 0 };
	iov[2] = (struct iovec){ pkt + 5, 10 };
	iov[3] = (struct iovec){ pkt + 15, sizeof(pkt) - 15 };
	n = vnet_tx_prepare(iov, 4, 0, h, out);
	assert_int_equal(n, 3);
	assert_ptr_equal(out[1].iov_base, pkt + VNET_HDR_LEN);
	assert_int_equal(out[1].iov_len, 3);
	assert_ptr_equal(out[2].iov_base, pkt + 15);
	assert_int_equal(out[2].iov_len, sizeof(pkt) - 15);

	/* A header alone is a zero-length frame: passed on (the tap drops it). */
	iov[0] = (struct iovec){ pkt, VNET_HDR_LEN };
	assert_int_equal(vnet_tx_prepare(iov, 1, 0, h, out), 1);
	/* Shorter than a header, nothing at all. */
	iov[0] = (struct iovec){ pkt, VNET_HDR_LEN - 1 };
	assert_int_equal(vnet_tx_prepare(iov, 1, 0, h, out), -EINVAL);
	assert_int_equal(vnet_tx_prepare(iov, 0, 0, h, out), -EINVAL);
	/* A bad header. */
	pkt[1] = 77;
	iov[0] = (struct iovec){ pkt, sizeof(pkt) };
	assert_int_equal(vnet_tx_prepare(iov, 1, ALL_TX, h, out), -EINVAL);
	pkt[1] = 0;
	/* Longer than a header + the largest frame, also when the lengths
	 * would wrap around. */
	iov[0] = (struct iovec){ pkt, VNET_HDR_LEN };
	iov[1] = (struct iovec){ pkt, VNET_MAX_FRAME };
	assert_int_equal(vnet_tx_prepare(iov, 2, 0, h, out), 2);
	iov[1].iov_len++;
	assert_int_equal(vnet_tx_prepare(iov, 2, 0, h, out), -EINVAL);
	iov[1].iov_len = SIZE_MAX - 5;
	assert_int_equal(vnet_tx_prepare(iov, 2, 0, h, out), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mac_parse),
		cmocka_unit_test(test_mac_format_default),
		cmocka_unit_test(test_net_option),
		cmocka_unit_test(test_net_option_bad),
		cmocka_unit_test(test_hdr_check),
		cmocka_unit_test(test_tx_prepare),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
