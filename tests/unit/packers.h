/* Compressed kernel payloads built in memory, as Linux's build makes them
 * (one stream, then the 4-byte little-endian unpacked size), for the
 * unpacker's unit tests and the fuzz driver's seeds. */
#ifndef KUMO_TEST_PACKERS_H
#define KUMO_TEST_PACKERS_H

#include <stddef.h>
#include <stdint.h>

/* The formats kernel_unpack() knows, as it names them. */
extern const char *const pack_formats[];
extern const size_t pack_nr_formats;

/* A malloc'd payload (never NULL: aborts on failure, this is test code),
 * *out_len its size. */
uint8_t *pack(const char *format, const uint8_t *in, size_t len, size_t *out_len);

#endif
