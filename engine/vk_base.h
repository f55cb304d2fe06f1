/*
 * vk_base.h: the engine's base layer: errors, memory and buffers, the
 * vector codec (public header), URLs, rows, bitmaps of ids, SHA-256,
 * column types and times.
 * Every layer above may use it; it uses nothing of theirs.
 *
 * Layers, lowest first (docs/architecture.md): base, io, faiss, store,
 * table, account, write, search, maint.  A file's name starts with its
 * layer; `make lint` refuses a call or an include that goes up.
 */
#ifndef VK_BASE_H
#define VK_BASE_H

#include "vekterdb.h"

#include <stdarg.h>
#include <stdbool.h>

typedef int64_t i64;
typedef uint64_t u64;
typedef float f32;

/* ---------- errors (base_error.c) ---------- */
/* sets this thread's error and returns code: vk_set_error (vekterdb.h) */
#define vk_fail vk_set_error
void vk_clear_error(void);
/* prefix the current message: "context: message" */
int vk_fail_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---------- memory and buffers (base_util.c) ---------- */
char *vk_strdup(const char *s);
char *vk_strndup(const char *s, size_t n);
void *vk_malloc(size_t n);          /* sets VK_ENOMEM on failure */
void *vk_calloc(size_t n, size_t m);
void *vk_realloc(void *p, size_t n);

/* growable byte buffer */
typedef struct vk_buf {
    char *p;
    size_t len, cap;
} vk_buf;
int vk_buf_reserve(vk_buf *b, size_t extra);
int vk_buf_add(vk_buf *b, const void *data, size_t n);
int vk_buf_adds(vk_buf *b, const char *s);
int vk_buf_printf(vk_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* appends "name" with inner quotes doubled */
int vk_buf_ident(vk_buf *b, const char *name);
/* the same with quote character q (MySQL: `name`) */
int vk_buf_quoted(vk_buf *b, const char *name, char q);
void vk_buf_free(vk_buf *b);

/* ---------- URL (base_url.c) ---------- */
typedef struct vk_url {
    char *scheme;    /* "sqlite", "postgresql" or "mysql" */
    char *user, *password, *host, *port, *dbname;   /* percent-decoded, may be NULL */
    char *path;      /* sqlite: file path, NULL for memory */
    char **keys, **values;   /* query options */
    int nopts;
} vk_url;
int vk_url_parse(const char *url, vk_url *out);
void vk_url_free(vk_url *u);

/* ---------- rows (base_rows.c) ---------- */
/* Cells another thread is still filling in (the write layer encodes a
 * batch's vectors while the driver writes its first rows).  need makes rows
 * 0..n-1 final, on the thread that reads them; ready is how many are. */
typedef struct vk_rows_feed vk_rows_feed;
struct vk_rows_feed {
    int (*need)(vk_rows_feed *f, i64 n);
    i64 ready;
};
struct vk_rows {
    i64 nrows, cap;
    int ncols;
    vk_value *cells;     /* nrows * ncols */
    vk_buf heap;         /* text/blob bytes; cells hold offsets until sealed */
    vk_rows_feed *feed;  /* NULL: every cell is final */
};
/* a driver calls this before it reads row n - 1 of rows it is writing */
static inline int vk_rows_wait(const vk_rows *r, i64 n)
{
    return !r->feed || n <= r->feed->ready ? VK_OK : r->feed->need(r->feed, n);
}
vk_rows *vk_rows_new(int ncols);
/* copies one row of values (text/blob bytes included) */
int vk_rows_append(vk_rows *r, const vk_value *row);
/* turns stored offsets into pointers once no more rows will be added */
void vk_rows_seal(vk_rows *r);

/* ---------- times (base_types.c) ---------- */
typedef struct vk_time {
    int year, month, day, hour, min, sec, usec;
} vk_time;
/* ISO-8601 text "YYYY-MM-DD", then (unless date_only) an optional " " or
 * "T" and "HH:MM[:SS[.f]]" (up to 6 digits), no time zone; years 1..9999.
 * 0, or -1 when s is no such time. */
int vk_time_parse(const char *s, size_t len, int date_only, vk_time *t);
/* "YYYY-MM-DD[ HH:MM:SS[.f]]" into buf: full_fraction always writes 6
 * digits (".000000"), else trailing zeros and a zero fraction are dropped;
 * years before 1 get " BC".  Returns the length. */
int vk_time_format(const vk_time *t, int with_time, int full_fraction, char *buf, size_t cap);
/* days since 1970-01-01 of a (proleptic Gregorian) date, and back */
i64 vk_days_from_civil(int y, int m, int d);
void vk_civil_from_days(i64 days, int *y, int *m, int *d);

/* ---------- SHA-256 (base_sha256.c) ---------- */
/* of everything an open file holds, from its start */
int vk_sha256_fd(int fd, unsigned char digest[32], i64 *bytes);
/* the digest as 64 lowercase hex digits and a NUL */
void vk_sha256_hex(const unsigned char digest[32], char hex[65]);

#ifndef __cplusplus
/* ---------- sets of ids ---------- */
/* A set of idx values as a bitmap: bit i%8 of byte i/8 */
typedef struct vk_idset {
    const unsigned char *bits;
    i64 nbits;
    i64 count;
} vk_idset;

static inline int vk_idset_has(const vk_idset *s, i64 id)
{
    return id >= 0 && id < s->nbits && ((s->bits[id >> 3] >> (id & 7)) & 1);
}
#endif

#endif
