/* A Linux tap as kumo's network backend, and the pure helpers around it
 * (virtio_net_hdr checks, MAC addresses, the --net option). See tap.h. */
#include "kumo/tap.h"
#include "kumo/log.h"
#include "kumo/machine.h"
#include "kumo/virtio.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- virtio_net_hdr ---- */

int vnet_hdr_check(const uint8_t hdr[VNET_HDR_LEN], size_t frame_len, uint64_t features)
{
	uint8_t flags = hdr[0], gso = hdr[1];
	uint16_t hdr_len = get_le16(hdr + 2), gso_size = get_le16(hdr + 4);
	uint16_t csum_start = get_le16(hdr + 6), csum_offset = get_le16(hdr + 8);
	bool has = false;

	/* DATA_VALID and RSC_INFO are the device's to set, not the driver's. */
	if (flags & ~VNET_HDR_F_NEEDS_CSUM)
		return -EINVAL;
	if (flags & VNET_HDR_F_NEEDS_CSUM) {
		if (!(features & (1ULL << VIRTIO_NET_F_CSUM)))
			return -EINVAL;
		if ((size_t)csum_start + csum_offset + 2 > frame_len)
			return -EINVAL;
	}
	if (gso == VNET_HDR_GSO_NONE)
		return 0;
	if ((gso & VNET_HDR_GSO_ECN) && !(features & (1ULL << VIRTIO_NET_F_HOST_ECN)))
		return -EINVAL;
	switch (gso & ~VNET_HDR_GSO_ECN) {
	case VNET_HDR_GSO_TCPV4: has = features & (1ULL << VIRTIO_NET_F_HOST_TSO4); break;
	case VNET_HDR_GSO_TCPV6: has = features & (1ULL << VIRTIO_NET_F_HOST_TSO6); break;
	case VNET_HDR_GSO_UDP: has = features & (1ULL << VIRTIO_NET_F_HOST_UFO); break;
	default: return -EINVAL;
	}
	/* Segmentation needs a checksum to fill in and a segment size. */
	if (!has || !(flags & VNET_HDR_F_NEEDS_CSUM) || !gso_size || hdr_len > frame_len)
		return -EINVAL;
	return 0;
}

int vnet_tx_prepare(const struct iovec *iov, unsigned n, uint64_t features,
		    uint8_t hdr[VNET_HDR_LEN], struct iovec *out)
{
	size_t total = 0, skip = VNET_HDR_LEN;
	unsigned nout = 1;

	for (unsigned i = 0; i < n; i++) {
		if (iov[i].iov_len > VNET_HDR_LEN + VNET_MAX_FRAME - total)
			return -EINVAL;
		total += iov[i].iov_len;
	}
	if (total < VNET_HDR_LEN)
		return -EINVAL;
	if (iov_to_buf(iov, n, 0, hdr, VNET_HDR_LEN) != VNET_HDR_LEN ||
	    vnet_hdr_check(hdr, total - VNET_HDR_LEN, features))
		return -EINVAL;
	/* The tap reads the 12-byte header it was told about, then the frame. */
	out[0] = (struct iovec){ hdr, VNET_HDR_LEN };
	for (unsigned i = 0; i < n; i++) {
		size_t len = iov[i].iov_len, at = MIN(skip, len);
		skip -= at;
		if (at < len)
			out[nout++] = (struct iovec){ (uint8_t *)iov[i].iov_base + at, len - at };
	}
	return nout;
}

/* ---- the tap ---- */

#define TAP_WANT (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)

static int fail(char *why, size_t len, int err, const char *fmt, const char *arg)
{
	snprintf(why, len, fmt, arg);
	for (char *c = why; *c; c++) /* one line, whatever the argument holds */
		if ((unsigned char)*c < ' ' || *c == 0x7f)
			*c = '?';
	return err;
}

/* Which offloads the tap takes: TUNSETOFFLOAD refuses what the kernel does
 * not know. TSO needs CSUM; UFO is accepted (and ignored) by kernels
 * that segment UDP themselves, which is what taking it from a guest needs. */
static void probe_offloads(struct tap *t)
{
	static const unsigned tries[] = {
		TUN_F_CSUM, TUN_F_CSUM | TUN_F_TSO4, TUN_F_CSUM | TUN_F_TSO6,
		TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN, TUN_F_CSUM | TUN_F_UFO,
	};

	t->offloads = 0;
	for (unsigned i = 0; i < ARRAY_SIZE(tries); i++)
		if (ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)tries[i]) == 0)
			t->offloads |= tries[i];
	t->ufo = t->offloads & TUN_F_UFO;
	if (ioctl(t->fd, TUNSETOFFLOAD, 0UL) < 0)
		t->offloads = 0; /* cannot turn them off: offer none */
}

/* A tap kumo created starts down; bring it up (best effort: whoever
 * configures it may do it later). */
static void link_up(const char *name)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			log_debug("tap %s: cannot bring the link up: %s", name, strerror(errno));
	}
	close(s);
}

int tap_open(struct tap *t, const char *name, int fd, char *why, size_t why_len)
{
	struct ifreq ifr;
	unsigned features = 0;
	int hdr = VNET_HDR_LEN, err, fl;
	bool created;

	memset(t, 0, sizeof(*t));
	memset(&ifr, 0, sizeof(ifr));
	t->fd = fd;
	if (fd >= 0) {
		char num[16];
		snprintf(num, sizeof(num), "%d", fd);
		if (ioctl(fd, TUNGETIFF, &ifr) < 0)
			return fail(why, why_len, errno == EBADF ? -EBADF : -ENOTTY,
				    "tap fd %s is not a tap device", num);
		if ((ifr.ifr_flags & (TAP_WANT | IFF_TUN)) != TAP_WANT)
			return fail(why, why_len, -EINVAL,
				    "tap fd %s is not a tap with IFF_NO_PI and IFF_VNET_HDR", num);
		memcpy(t->name, ifr.ifr_name, sizeof(t->name) - 1);
	} else {
		if (!name || !*name || strlen(name) >= IFNAMSIZ)
			return fail(why, why_len, -EINVAL, "tap name '%s' is not 1-15 characters",
				    name ? name : "");
		snprintf(t->name, sizeof(t->name), "%s", name);
		t->fd = fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			return fail(why, why_len, -errno, "cannot open %s", "/dev/net/tun");
		if (ioctl(fd, TUNGETFEATURES, &features) == 0 && !(features & IFF_VNET_HDR))
			return fail(why, why_len, -ENOTSUP,
				    "cannot create tap %s: the kernel's tun has no IFF_VNET_HDR", name);
		created = !if_nametoindex(name);
		ifr.ifr_flags = TAP_WANT;
		memcpy(ifr.ifr_name, t->name, strlen(t->name));
		if (ioctl(fd, TUNSETIFF, &ifr) < 0)
			return fail(why, why_len, -errno, "cannot create tap %s", name);
		if (created)
			link_up(t->name);
	}
	if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		err = -errno;
		return fail(why, why_len, err, "tap %s: cannot make it non-blocking", t->name);
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		err = -errno;
		return fail(why, why_len, err, "tap %s: cannot set a 12-byte virtio-net header",
			    t->name);
	}
	probe_offloads(t);
	return 0;
}

int tap_set_offloads(struct tap *t, unsigned flags)
{
	return ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)flags) < 0 ? -errno : 0;
}

void tap_close(struct tap *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

/* ---- MAC addresses and --net ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int mac_parse(const char *s, uint8_t mac[6])
{
	uint8_t m[6];
	char sep = 0;

	if (!s)
		return -EINVAL;
	for (unsigned i = 0; i < 6; i++) {
		int hi = hexval(s[0]), lo = hi < 0 ? -1 : hexval(s[1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		m[i] = hi << 4 | lo;
		s += 2;
		if (i == 5)
			break;
		if (*s != ':' && *s != '-')
			return -EINVAL;
		if (sep && *s != sep) /* one separator throughout */
			return -EINVAL;
		sep = *s++;
	}
	if (*s)
		return -EINVAL;
	memcpy(mac, m, 6);
	return 0;
}

void mac_format(const uint8_t mac[6], char *buf)
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
		 mac[4], mac[5]);
}

void mac_default(unsigned index, uint8_t mac[6])
{
	static const uint8_t base[6] = { 0x02, 0x4b, 0x4d, 0x00, 0x00, 0x00 };

	memcpy(mac, base, 6);
	mac[4] = (index >> 8) & 0xff;
	mac[5] = index & 0xff;
}

int net_option_parse(char *arg, struct machine_nic *nic, char *why, size_t why_len)
{
	char *next;

	memset(nic, 0, sizeof(*nic));
	nic->tap_fd = -1;
	for (char *opt = arg; opt; opt = next) {
		if ((next = strchr(opt, ',')))
			*next++ = 0;
		if (!strncmp(opt, "tap=", 4)) {
			const char *name = opt + 4;
			if (!*name || strlen(name) >= IFNAMSIZ)
				return fail(why, why_len, -EINVAL,
					    "--net: the tap name '%s' must be 1-15 characters", name);
			nic->tap = name;
		} else if (!strncmp(opt, "fd=", 3)) {
			uint64_t fd;
			if (parse_uint(opt + 3, 0, INT32_MAX, &fd))
				return fail(why, why_len, -EINVAL,
					    "--net: fd=%s is not a file descriptor number", opt + 3);
			if (fd <= 2) /* kumo owns the fd it is given: not these */
				return fail(why, why_len, -EINVAL,
					    "--net: fd=%s is the console, not a tap", opt + 3);
			nic->tap_fd = (int)fd;
		} else if (!strncmp(opt, "mac=", 4)) {
			if (mac_parse(opt + 4, nic->mac))
				return fail(why, why_len, -EINVAL,
					    "--net: '%s' is not a MAC address", opt + 4);
			if (nic->mac[0] & 1)
				return fail(why, why_len, -EINVAL,
					    "--net: '%s' is a multicast MAC address", opt + 4);
			nic->mac_set = true;
		} else {
			return fail(why, why_len, -EINVAL,
				    "--net: unknown option '%s' (want tap=NAME[,mac=MAC])", opt);
		}
	}
	if (nic->tap && nic->tap_fd >= 0)
		return fail(why, why_len, -EINVAL, "--net: %s", "tap=NAME and fd=N exclude each other");
	if (!nic->tap && nic->tap_fd < 0)
		return fail(why, why_len, -EINVAL, "--net: %s", "tap=NAME is missing");
	return 0;
}
