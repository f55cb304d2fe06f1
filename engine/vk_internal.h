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
    char *blob;           /* encode buffer */
    size_t blob_cap;
};

#endif
