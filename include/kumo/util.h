/* Small helpers shared by every module. */
#ifndef KUMO_UTIL_H
#define KUMO_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define WUR __attribute__((warn_unused_result))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define KiB (1024ULL)
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)
#define ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((uint64_t)(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((uint64_t)(a) - 1))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* "512M", "2G", "1048576", "64k": bytes in *out. -EINVAL on junk or overflow. */
int parse_size(const char *s, uint64_t *out) WUR;
/* A decimal unsigned integer in [min, max]. -EINVAL / -ERANGE. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out) WUR;

/* Whole-file read into malloc'd memory, at most max bytes (-EFBIG past it). */
int read_file(const char *path, size_t max, uint8_t **data, size_t *len) WUR;

/* Monotonic clock in nanoseconds. */
uint64_t now_ns(void);

/* Sum of bytes, for table checksums. */
uint8_t byte_sum(const void *p, size_t len);

static inline void put_le16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static inline void put_le32(uint8_t *p, uint32_t v) { put_le16(p, v); put_le16(p + 2, v >> 16); }
static inline void put_le64(uint8_t *p, uint64_t v) { put_le32(p, v); put_le32(p + 4, v >> 32); }
static inline uint16_t get_le16(const uint8_t *p) { return p[0] | (uint16_t)p[1] << 8; }
static inline uint32_t get_le32(const uint8_t *p) { return get_le16(p) | (uint32_t)get_le16(p + 2) << 16; }
static inline uint64_t get_le64(const uint8_t *p) { return get_le32(p) | (uint64_t)get_le32(p + 4) << 32; }

#endif
