/* virtio-blk requests (virtio 1.2, 5.2.6): the spec's numbers and a pure
 * parser from a popped chain to a checked request, so the hostile-guest
 * rules can be unit-tested and fuzzed without a machine. The device itself
 * is src/devices/virtio/blk.c. */
#ifndef KUMO_VIRTIO_BLK_H
#define KUMO_VIRTIO_BLK_H

#include "kumo/virtio.h"

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_GEOMETRY     4
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_TOPOLOGY     10
#define VIRTIO_BLK_F_CONFIG_WCE   11
#define VIRTIO_BLK_F_MQ           12
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types (5.2.6). */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_GET_LIFETIME 10
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_T_SECURE_ERASE 14

#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_WZ_F_UNMAP 1u  /* flags of a discard / write-zeroes range */

#define VIRTIO_BLK_SECTOR   512
#define VIRTIO_BLK_HDR_LEN  16
#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_RANGE_LEN 16   /* le64 sector, le32 num_sectors, le32 flags */
#define VIRTIO_BLK_MAX_RANGES 16  /* what kumo offers as max_*_seg */

/* What the device offers, for checking a request against. */
struct virtio_blk_limits {
	uint64_t capacity;        /* in 512-byte sectors */
	bool read_only;
	bool discard, write_zeroes;  /* negotiated */
	uint32_t max_discard_sectors, max_write_zeroes_sectors;  /* per range */
	uint32_t max_ranges;      /* <= VIRTIO_BLK_MAX_RANGES */
};

struct virtio_blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	bool unmap;
};

struct blk_req {
	uint32_t type;
	uint64_t sector;
	/* Where the status byte goes: the last byte of the chain's writable
	 * part (guest memory). */
	uint8_t *status;
	/* 1 when the parser already knows the answer (status_code); 0 when the
	 * request is to be carried out. */
	uint8_t status_code;
	/* T_IN, T_OUT: the data, len bytes in niov segments (a slice of the
	 * chain: after the header, before the status byte). T_GET_ID: the
	 * writable bytes for the id. */
	uint64_t len;
	unsigned niov;
	struct iovec iov[VIRTQ_MAX_SEGS];
	/* T_DISCARD, T_WRITE_ZEROES. */
	unsigned nranges;
	struct virtio_blk_range ranges[VIRTIO_BLK_MAX_RANGES];
};

enum {
	VIRTIO_BLK_REQ_RUN = 0,     /* checked: carry it out */
	VIRTIO_BLK_REQ_DONE = 1,    /* answer now with out->status_code */
};

/* Checks chain e against the virtio-blk rules and lim. Returns
 * VIRTIO_BLK_REQ_RUN or VIRTIO_BLK_REQ_DONE; -EINVAL when the chain has no
 * writable byte for a status, so it cannot be answered (push it with
 * length 0). Never touches anything but e's memory and *out. */
int virtio_blk_parse(const struct virtq_elem *e, const struct virtio_blk_limits *lim,
		     struct blk_req *out) WUR;

#endif
