/*
 * vk_internal.h: engine internals shared between the engine's files.
 * Nothing here is part of the public interface.
 */
#ifndef VK_INTERNAL_H
#define VK_INTERNAL_H

#include "vekterdb.h"

#include <stdarg.h>
#include <stdbool.h>

typedef int64_t i64;
typedef uint64_t u64;
typedef float f32;

/* ---------- errors (error.c) ---------- */
int vk_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vk_clear_error(void);
/* prefix the current message: "context: message" */
int vk_fail_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---------- small helpers (util.c) ---------- */
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
void vk_buf_free(vk_buf *b);

/* ---------- URL (url.c) ---------- */
typedef struct vk_url {
    char *scheme;    /* "sqlite" or "postgresql" */
    char *user, *password, *host, *port, *dbname;   /* percent-decoded, may be NULL */
    char *path;      /* sqlite: file path, NULL for memory */
    char **keys, **values;   /* query options */
    int nopts;
} vk_url;
int vk_url_parse(const char *url, vk_url *out);
void vk_url_free(vk_url *u);

/* ---------- rows (rows.c) ---------- */
struct vk_rows {
    i64 nrows, cap;
    int ncols;
    vk_value *cells;     /* nrows * ncols */
    vk_buf heap;         /* text/blob bytes; cells hold offsets until sealed */
};
vk_rows *vk_rows_new(int ncols);
/* copies one row of values (text/blob bytes included) */
int vk_rows_append(vk_rows *r, const vk_value *row);
/* turns stored offsets into pointers once no more rows will be added */
void vk_rows_seal(vk_rows *r);

/* ---------- storage driver seam ---------- */
typedef struct vk_stmt vk_stmt;   /* driver-specific running query */

typedef struct vk_driver {
    const char *name;
    const char *placeholder;
    const char *begin_sql;       /* opens a write transaction */
    /* inside a write transaction, before it reads anything it depends on:
     * waits until no other writer of the table (any process, any machine)
     * is inside one; NULL when begin_sql already does (SQLite's BEGIN
     * IMMEDIATE takes the database's write lock) */
    int (*lock_writers)(vk_db *db);
    int (*connect)(vk_db *db, const vk_url *url, const char *const *opts, int nopts);
    void (*disconnect)(vk_db *db);
    /* statements without parameters or results: DDL, BEGIN, COMMIT */
    int (*exec)(vk_db *db, const char *sql);
    /* a query with bound parameters; rows come from next() */
    int (*query)(vk_db *db, const char *sql, const vk_value *params, int nparams,
                 vk_stmt **out);
    /* fills row[0..ncols); values stay valid until the next call; 1 = row, 0 = done */
    int (*next)(vk_stmt *st, vk_value *row, int ncols);
    void (*finish)(vk_stmt *st);
    /* number of result columns of a running query (for vk_db_execute) */
    int (*ncols)(vk_stmt *st);
    /* reads the table's columns from the catalog; *exists = 0 when absent */
    int (*describe)(vk_db *db, int *exists, vk_column **cols, int *ncols);
    /* writes every row of the batch (inside the caller's transaction) */
    int (*insert)(vk_db *db, const vk_batch *b);
    /* rows of the given ids (unique, any order) for the given columns;
     * column 0 of the result is always the idx */
    int (*fetch)(vk_db *db, const i64 *ids, i64 n, const int *cols, int ncols,
                 vk_rows **out);
    /* DDL type for a column type */
    const char *(*sql_type)(vk_type t);
} vk_driver;

extern const vk_driver vk_sqlite_driver;
extern const vk_driver vk_pg_driver;

struct vk_db {
    const vk_driver *drv;
    void *conn;                  /* driver's connection state */
    char *schema, *table;        /* schema may be NULL */
    char *qtable;                /* quoted, schema-qualified name */
    char *idx_name, *vector_name;
    vk_column *cols;             /* owned names */
    int ncols;
    int idx_col, vec_col;
    int existed;
    i64 d;                       /* 0 until known */
    vk_index *index;
    int in_txn;
    struct vk_tombs *tombs;      /* deleted idx values read so far (tombstone.c) */
    /* the attached index's accounting (catchup.c) */
    char *index_path;            /* the file it is saved to, or NULL */
    int index_mmap;              /* read with the mmap flag: reloaded, never written */
    i64 index_gen;               /* generation (seq) of the file it was read from, 0 */
    i64 covered;                 /* ids it accounts for: 0..covered-1 */
    int dirty;                   /* it holds changes its file lacks */
    unsigned char *purged;       /* deleted ids it no longer holds (bitmap) */
    i64 npurged;                 /* bits allocated in purged */
    char *params;                /* runtime parameters set on the handle ("a=1,b=2") */
};

/* SQL helpers shared by drivers (db.c) */
int vk_db_begin(vk_db *db);
int vk_db_commit(vk_db *db);
void vk_db_rollback(vk_db *db);
/* runs a one-value integer query; *out untouched when the result is NULL */
int vk_db_query_int(vk_db *db, const char *sql, const vk_value *params, int nparams,
                    i64 *out, int *isnull);
void vk_columns_free(vk_column *cols, int n);

/* ---------- batches (batch.c) ---------- */
struct vk_batch {
    vk_db *db;
    int level;
    int ncols;
    i64 nrows;
    vk_rows *rows;        /* one row per record, db column order */
    vk_value *cur;        /* row being built */
    unsigned char *set;   /* which cells of cur were set */
    vk_buf scratch;       /* bytes of the row being built */
    vk_buf vecs;          /* decoded vectors (nrows x d floats) for the index */
    i64 d;
    i64 first_idx;        /* idx of the first row */
    i64 next_idx;         /* idx the next row must carry */
    int given_idx;        /* a row carried its idx (it cannot be numbered again) */
    char *blob;           /* encode buffer */
    size_t blob_cap;
};

/* ---------- FAISS entry points the C API lacks (faiss_ext.cpp) ---------- */

/* sets the error "<what>: <text of FAISS's message msg>" and returns VK_EFAISS
 * (index.c; the C API's last error and C++ exceptions alike) */
#ifdef __cplusplus
extern "C" {
#endif
int vk_faiss_error(const char *what, const char *msg);
struct FaissIndex_H;
struct FaissIndex_H *vk_index_faiss(const vk_index *ix);   /* index.c */

enum { VK_FAISS_OTHER = 0, VK_FAISS_FLAT, VK_FAISS_IVF, VK_FAISS_HNSW };
/* vk_faiss_search: this index type takes no search parameters (no selector) */
#define VK_FAISS_NOSEL 1

int vk_faiss_kind(const struct FaissIndex_H *fi);
/* an index just read with the mmap flag: no prefetch threads per search */
void vk_faiss_mapped(struct FaissIndex_H *fi);
/* 1: the index keeps the ids it is given (IVF family, IDMap); 0: ids are positions */
int vk_faiss_explicit_ids(const struct FaissIndex_H *fi);
/* 1 for an IVF index (under transforms): its nlist and current nprobe */
int vk_faiss_ivf_lists(const struct FaissIndex_H *fi, int64_t *nlist, int64_t *nprobe);
/* explicit-id indexes only: *max, the largest stored id (-1 when empty);
 * with bits, also sets bit id of bits for every stored id below nbits */
int vk_faiss_ids(const struct FaissIndex_H *fi, int64_t *max, unsigned char *bits, int64_t nbits);
int vk_faiss_add_ids(struct FaissIndex_H *fi, int64_t n, const float *x, const int64_t *ids);
/* explicit-id indexes only: VK_ESTATE for the others */
int vk_faiss_remove_ids(struct FaissIndex_H *fi, const int64_t *ids, int64_t n, int64_t *removed);
/* Searches with per-call parameters: bits (may be NULL) selects the ids
 * whose bit is set, or with invert those whose bit is clear; nprobe and
 * efsearch override the index's values when > 0.  VK_OK, VK_FAISS_NOSEL
 * (nothing searched), or a VK_E* code with the message set. */
int vk_faiss_search(const struct FaissIndex_H *fi, int64_t n, const float *x, int64_t k,
                    const uint8_t *bits, int64_t nbits, int invert, int64_t nprobe,
                    int64_t efsearch, float *distances, int64_t *labels);
#ifdef __cplusplus
}
#endif

#ifndef __cplusplus
/* ---------- deleted records (tombstone.c) ---------- */

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

/* side tables next to the table: "<table><suffix>", quoted (with_schema:
 * qualified by the table's schema); NULL when out of memory */
char *vk_side_ident(const vk_db *db, const char *suffix, int with_schema);
int vk_side_exists(vk_db *db, const char *suffix, int *exists);
/* inside a write transaction: the next seq of side table q (quoted); on
 * PostgreSQL the table is locked first, so writers take turns and seq values
 * are committed in order */
int vk_side_next_seq(vk_db *db, const char *q, i64 *seq);
int vk_db_is_pg(const vk_db *db);
/* runs a statement, discarding any rows */
int vk_db_run(vk_db *db, const char *sql, const vk_value *params, int nparams);

/* ---------- index files (index.c, trust.c) ---------- */
/* read with the mmap flag (read-only) */
int vk_index_is_mapped(const vk_index *ix);
/* reads an index from an open file: the very file whose digest was checked
 * (name is for messages) */
int vk_index_read_fd(vk_index **out, int fd, const char *name, int mmap);
/* called with the written and synced temporary file, before the rename;
 * an error leaves the old file in place */
typedef int (*vk_index_seal_fn)(void *ud, int fd);
int vk_index_write_sealed(vk_index *ix, const char *path, vk_index_seal_fn seal, void *ud);
/* vk_db_read_index, also giving the generation (seq) the file's digest
 * was recorded with */
int vk_db_read_index_gen(vk_db *db, const char *path, int mmap, int trust, vk_index **out, i64 *gen);
/* the newest generation recorded for a file name, 0 when none */
int vk_db_index_file_gen(vk_db *db, const char *path, i64 *gen);
/* removes temporary files a killed save of path left behind */
void vk_index_clean_temps(const char *path);
/* SHA-256 of everything an open file holds, from its start */
int vk_sha256_fd(int fd, unsigned char digest[32], i64 *bytes);

/* reads what this and other handles (processes) deleted since the last call */
int vk_tomb_refresh(vk_db *db);
/* forgets the cache: the next refresh reads every tombstone again */
void vk_tomb_reset(vk_db *db);
void vk_tomb_free(vk_db *db);
/* after a refresh: every deleted idx, or (active_only) those the attached
 * index may still hold */
void vk_tomb_set(const vk_db *db, int active_only, vk_idset *out);
/* the attached index no longer holds these ids */
int vk_tomb_purge(vk_db *db, const i64 *ids, i64 n);
/* a new index was attached: reads which deleted ids it holds (explicit-id
 * indexes) or takes them all as held (the others) */
int vk_tomb_attach(vk_db *db);
/* largest deleted idx, -1 when none (after a refresh) */
i64 vk_tomb_max(const vk_db *db);

/* the ids an index accounts for: positions 0..ntotal-1, or, for
 * explicit-id indexes, 0..(largest stored id) */
i64 vk_index_covered(vk_index *ix);
/* Brings the attached index up to what other handles committed: adds the
 * records from db->covered to the table's next idx (live ones for
 * explicit-id indexes; a zero vector in a deleted record's place for the
 * others, its tombstone keeps it out of searches).  A mapped index cannot
 * take vectors: it is replaced by a newer generation of its file when one
 * is recorded (reload) and otherwise left as it is; searches then scan the
 * records above db->covered exactly. */
int vk_db_catch_up(vk_db *db, i64 batch_size, vk_progress_fn fn, void *ud, int reload,
                   i64 *added);
/* live idx values >= from, in order */
int vk_db_live_ids_from(vk_db *db, i64 from, i64 **out, i64 *n);


/* ---------- fetching, batches (db.c, batch.c) ---------- */
/* as vk_db_fetch_vectors; with found, a missing row gives found[i] = 0
 * (and zeros) instead of an error */
int vk_db_fetch_vectors_found(vk_db *db, const i64 *ids, i64 n, float *out, unsigned char *found);
/* checks v against column c the way inserts do; text and blob bytes are
 * not copied */
int vk_value_check(const vk_column *c, const vk_value *v, vk_value *out);
/* inside the caller's transaction: writes the rows and adds the vectors to
 * the attached index */
int vk_batch_write(vk_db *db, vk_batch *b);
/* after the transaction failed: takes the batch's vectors back out of the
 * index; keeps the failure's message (and code rc) */
void vk_batch_unwrite(vk_db *db, vk_batch *b, int rc);

/* ---------- filtered search (filter.c) ---------- */
/* the ids (sorted, unique) that match the filter, into ok (room for n) */
int vk_filter_keep(vk_filter *f, const i64 *ids, i64 n, i64 *ok, i64 *nok);
/* nq x kk FAISS candidates (-1 padded) that the chosen plan proposes;
 * dead: ids to leave out on top of the plan's set (sorted, may be NULL) */
int vk_plan_candidates(vk_db *db, const float *q, i64 nq, i64 kk, const vk_search_opts *o,
                       const i64 *dead, i64 ndead, vk_metric metric, i64 *labels,
                       vk_search_stats *st);
#endif

#endif
