/* `kumo img`: a qemu-img work-alike. One file per subcommand; this header
 * holds what they share (common.c): messages, sizes, opening images,
 * reading through a backing chain, JSON and the progress bar. */
#ifndef KUMO_IMG_H
#define KUMO_IMG_H

#include <stdio.h>

#include "kumo/block.h"

/* Exit codes as qemu-img's. */
#define IMG_OK 0
#define IMG_ERR 1

int img_create(int argc, char **argv);
int img_info(int argc, char **argv);
int img_check(int argc, char **argv);
int img_convert(int argc, char **argv);
int img_resize(int argc, char **argv);
int img_commit(int argc, char **argv);
int img_rebase(int argc, char **argv);
int img_compare(int argc, char **argv);
int img_map(int argc, char **argv);

/* "kumo img: MESSAGE" on stderr. */
void img_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Usage error: the message and "Try 'kumo img --help'", exit code 1. */
int img_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* qemu-img's sizes: a number with an optional k/K, M, G, T, P, E suffix
 * (powers of 1024), "b" for bytes, fractions allowed ("1.5G"). */
int img_parse_size(const char *s, uint64_t *out) WUR;
/* "5 MiB", "5.01 MiB", as qemu's size_to_str, into buf. */
const char *img_human_size(uint64_t v, char *buf, size_t len);

/* -U (--force-share): open read-only images even while a writer (a
 * running VM, kumo's or QEMU's) holds them. Set by the option parsers. */
extern bool img_force_share;

/* Opens path for the tool: *why printed as qemu-img does ("Could not open
 * 'X': REASON"). fmt NULL probes. Returns NULL after printing the error. */
struct blk_image *img_open(const char *path, const char *fmt, bool read_only, bool no_backing);
/* The same with every option (e.g. unsafe for convert's output). */
struct blk_image *img_open_opts(const char *path, const struct blk_open_opts *o);

/* Reads [off, off+len) of img as the guest sees it: this image, else its
 * backing chain, else zeros (past a shorter backing file too). */
int img_read(struct blk_image *img, void *buf, uint64_t len, uint64_t off) WUR;

/* The status of a run of img alone; formats without block_status (raw)
 * answer from the file's holes (SEEK_DATA/SEEK_HOLE). */
int img_block_status(struct blk_image *img, uint64_t off, uint64_t len,
		     uint64_t *pnum, uint64_t *map) WUR;

/* Status through the chain: flags of the image that decides the run,
 * *depth its depth (the chain's length when no image does: zeros). */
int img_chain_status(struct blk_image *img, uint64_t off, uint64_t len,
		     uint64_t *pnum, uint64_t *map, int *depth,
		     struct blk_image **owner) WUR;

bool img_is_zero(const void *buf, size_t len);

/* -o key=value,key=value into create options (and "size" / "backing_file"
 * / "backing_fmt" as qemu accepts them). Prints the error. */
int img_parse_create_opts(const char *s, struct blk_create_opts *o, const char **fmt) WUR;

/* Progress "    (12.50/100%)\r" on stdout when enabled. */
struct img_progress {
	bool on;
	double last;
};
void img_progress(struct img_progress *p, uint64_t done, uint64_t total);
void img_progress_end(struct img_progress *p);

/* A tiny JSON printer in qemu-img's layout (4-space indents). */
struct img_json {
	FILE *f;
	int depth;
	bool first[16];
};
void json_begin(struct img_json *j, FILE *f);
void json_obj_open(struct img_json *j, const char *key);   /* key NULL: a value */
void json_obj_close(struct img_json *j);
void json_arr_open(struct img_json *j, const char *key);
void json_arr_close(struct img_json *j);
void json_str(struct img_json *j, const char *key, const char *v);
void json_u64(struct img_json *j, const char *key, uint64_t v);
void json_bool(struct img_json *j, const char *key, bool v);
void json_end(struct img_json *j);

/* Looks up getopt-style --output=json|human; -1 (and prints) on junk. */
int img_output_format(const char *arg) WUR;

/* Creates path with the given format through its ops->create (raw: a
 * sparse file of the size). Prints "Formatting ..." unless quiet. */
int img_do_create(const char *path, const char *fmt, const struct blk_create_opts *o, bool quiet) WUR;

/* The backing file as qemu resolves it: relative to the overlay's folder. */
char *img_resolve_backing(const char *overlay, const char *backing);

#endif
