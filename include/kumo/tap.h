/* The network backend: a Linux tap carrying virtio-net headers
 * (src/net/tap.c), and the pure helpers around it: the virtio_net_hdr the
 * tap and the guest share, its checks, MAC addresses and the --net option.
 * Everything here but tap_open/tap_set_offloads/tap_close touches no
 * system state, so unit tests and fuzz targets call it directly. */
#ifndef KUMO_TAP_H
#define KUMO_TAP_H

#include <stddef.h>
#include <sys/uio.h>

#include "kumo/util.h"

struct machine_nic;

/* ---- virtio_net_hdr (virtio 1.2, 5.1.6), with num_buffers: 12 bytes ---- */
#define VNET_HDR_LEN 12
#define VNET_HDR_F_NEEDS_CSUM  1
#define VNET_HDR_F_DATA_VALID  2
#define VNET_HDR_GSO_NONE      0
#define VNET_HDR_GSO_TCPV4     1
#define VNET_HDR_GSO_UDP       3
#define VNET_HDR_GSO_TCPV6     4
#define VNET_HDR_GSO_ECN       0x80

/* Largest frame (after the header) either side passes: a 64 KiB GSO packet
 * plus an Ethernet header with a VLAN tag. */
#define VNET_MAX_FRAME (65536 + 14 + 4)

/* virtio-net feature bits (5.1.3). */
#define VIRTIO_NET_F_CSUM        0
#define VIRTIO_NET_F_GUEST_CSUM  1
#define VIRTIO_NET_F_MAC         5
#define VIRTIO_NET_F_GUEST_TSO4  7
#define VIRTIO_NET_F_GUEST_TSO6  8
#define VIRTIO_NET_F_GUEST_ECN   9
#define VIRTIO_NET_F_GUEST_UFO   10
#define VIRTIO_NET_F_HOST_TSO4   11
#define VIRTIO_NET_F_HOST_TSO6   12
#define VIRTIO_NET_F_HOST_ECN    13
#define VIRTIO_NET_F_HOST_UFO    14
#define VIRTIO_NET_F_MRG_RXBUF   15
#define VIRTIO_NET_F_STATUS      16

/* Is a header the driver put before a frame of frame_len bytes one the
 * negotiated features allow (flags, GSO type, checksum and header offsets
 * inside the frame)? 0, or -EINVAL. */
int vnet_hdr_check(const uint8_t hdr[VNET_HDR_LEN], size_t frame_len, uint64_t features) WUR;

/* A transmit chain's device-readable segments → what to writev to the tap:
 * the header copied to hdr (so the guest cannot change it after the
 * check) and checked, then out[] = { hdr, the frame's segments }. Returns
 * the number of entries in out (at most n + 1), or -EINVAL: the chain is
 * shorter than a header, longer than a header + VNET_MAX_FRAME, or its
 * header fails vnet_hdr_check. */
int vnet_tx_prepare(const struct iovec *iov, unsigned n, uint64_t features,
		    uint8_t hdr[VNET_HDR_LEN], struct iovec *out) WUR;

/* ---- the tap ---- */
struct tap {
	int fd;
	char name[16];        /* IFNAMSIZ */
	unsigned offloads;    /* TUN_F_* bits the tap accepted when probed */
	bool ufo;             /* the kernel takes UFO (TUN_F_UFO) */
};

/* Create the tap NAME, or attach to an existing one (fd < 0), or use the
 * open tap fd (ownership passes to t even on failure). IFF_TAP | IFF_NO_PI
 * | IFF_VNET_HDR, a 12-byte header, non-blocking, offloads probed and left
 * off. -errno, with *why saying what failed in words (no strerror: the
 * caller adds it): "cannot create tap NAME", "cannot open /dev/net/tun"... */
int tap_open(struct tap *t, const char *name, int fd, char *why, size_t why_len) WUR;
/* Tell the tap which offloads its reader (the guest) takes: TUN_F_* bits. */
int tap_set_offloads(struct tap *t, unsigned flags) WUR;
void tap_close(struct tap *t);

/* ---- MAC addresses and --net ---- */
/* "02:4b:4d:00:00:01" (also '-' separated, any case): 0 or -EINVAL. */
int mac_parse(const char *s, uint8_t mac[6]) WUR;
/* buf: at least 18 bytes. */
void mac_format(const uint8_t mac[6], char *buf);
/* kumo's locally administered default for NIC index: 02:4b:4d:00:00:NN
 * ("KM"), distinct per index. */
void mac_default(unsigned index, uint8_t mac[6]);

/* --net tap=NAME[,mac=MAC] or --net fd=N[,mac=MAC] (an open tap handed
 * over, e.g. by kumod): fills nic (nic->tap points into arg, whose commas
 * become NULs). 0, or -EINVAL with a one-line reason in why. */
int net_option_parse(char *arg, struct machine_nic *nic, char *why, size_t why_len) WUR;

#endif
