/*
 * vk_store.h: the store layer: the handle's fields, the storage driver
 * seam (store_sqlite.c, store_pg.c, store_mysql.c) and the driver-neutral SQL every layer
 * above builds on: transactions, one-value queries, side tables
 * (store_sql.c).  Dialect differences live only behind the driver table.
 */
#ifndef VK_STORE_H
#define VK_STORE_H

#include "vk_base.h"

typedef struct vk_stmt vk_stmt;   /* driver-specific running query */

typedef struct vk_driver {
    const char *name;
    const char *placeholder;
    char quote;                  /* of identifiers: '"' or '`' (MySQL) */
    int max_name;                /* longest identifier the database holds, 0: no limit */
    /* INSERT ... VALUES (...) followed by the upsert clause: 0 "ON CONFLICT
     * (key) DO UPDATE SET c = excluded.c", 1 "ON DUPLICATE KEY UPDATE c = VALUES(c)" */
    int upsert_style;
    const char *key_text_type;
    int update_returning;        /* UPDATE ... RETURNING is understood */
    /* after a TEXT or BLOB column in a non-unique CREATE INDEX (MySQL
     * indexes a prefix of them only), or NULL */
    const char *key_prefix;   /* DDL type of a text column in a side table's key */
    const char *begin_sql;       /* opens a write transaction */
    /* inside a write transaction, before it reads anything it depends on:
     * waits until no other writer of the table (any process, any machine)
     * is inside one; NULL when begin_sql already does (SQLite's BEGIN
     * IMMEDIATE takes the database's write lock) */
    int (*lock_writers)(vk_db *db);
    /* CREATE INDEX names the index with the table's schema (SQLite), not
     * the table (PostgreSQL: the index lives in the table's schema) */
    int index_name_qualified;
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
    /* whether table (or view) name, unquoted, exists in schema (NULL:
     * the connection's default schema) */
    int (*table_exists)(vk_db *db, const char *schema, const char *name, int *exists);
    /* writes every row (db column order), inside the caller's transaction */
    int (*insert)(vk_db *db, const vk_rows *rows);
    /* rows of the given ids (unique, any order) for the given columns;
     * column 0 of the result is always the idx */
    int (*fetch)(vk_db *db, const i64 *ids, i64 n, const int *cols, int ncols,
                 vk_rows **out);
    /* DDL type for a column type */
    const char *(*sql_type)(vk_type t);
    /* DDL type for a column kind (VK_KIND_DATETIME, _DATE, _JSON), the
     * type SQLAlchemy's DateTime, Date and JSON create; NULL (or a NULL
     * member) when the database has none.  VARCHAR(n) is the same in every
     * dialect and made by table_handle.c. */
    const char *(*kind_sql_type)(vk_kind k);
    /* a query of one text value that differs after any commit (this
     * connection's or another's) that may have changed the table, and is
     * NULL inside a write transaction of this connection; NULL (or a NULL
     * member) when the database offers none: filters are then evaluated
     * afresh for every search */
    const char *(*change_stamp_sql)(const vk_db *db);
    /* ---- search nodes (README "Search nodes"); every member NULL when
     * the database has no such thing ---- */
    /* opens a read transaction whose queries all see one snapshot: what an
     * object listed by a row stays readable while it is open */
    const char *snapshot_sql;
    /* large objects, inside the caller's transaction: a new one holding
     * fd's bytes (from offset 0, streamed), its id in *oid */
    int (*object_put)(vk_db *db, int fd, i64 *oid);
    /* writes object oid to fd in chunks, *bytes of them */
    int (*object_get)(vk_db *db, i64 oid, int fd, i64 *bytes);
    int (*object_drop)(vk_db *db, i64 oid);
    /* change notices: from now on the connection hears every write
     * transaction of the table that commits (lock_writers announces each
     * one), also across a reconnect */
    int (*listen)(vk_db *db);
    /* reads the notices that arrived, waiting up to timeout_ms (0: not at
     * all) for one: *changed = 1 when a write transaction of the table
     * committed since the last call, or when one may have gone unheard
     * (the connection was lost, or a read transaction held them back) */
    int (*changes)(vk_db *db, int timeout_ms, int *changed);
} vk_driver;

extern const vk_driver vk_sqlite_driver;
extern const vk_driver vk_pg_driver;
extern const vk_driver vk_mysql_driver;
/* the driver of a URL scheme (vk_url's scheme: its name), NULL for none */
const vk_driver *vk_driver_for(const char *scheme);

struct vk_tombs;

/* The handle.  Each group of fields belongs to the layer named beside it;
 * only that layer writes them. */
struct vk_db {
    /* store */
    const vk_driver *drv;
    void *conn;                  /* driver's connection state */
    int in_txn;
    /* table (table_handle.c) */
    char *schema, *table;        /* schema may be NULL */
    char *qtable;                /* quoted, schema-qualified name */
    char *idx_name, *vector_name;
    vk_column *cols;             /* owned names */
    int ncols;
    int idx_col, vec_col;
    int existed;
    i64 d;                       /* 0 until known */
    struct vk_tombs *tombs;      /* deleted idx values read so far (table_tomb.c) */
    /* account (account_index.c): the attached index */
    vk_index *index;
    char *index_path;            /* the file it is saved to, or NULL */
    int index_mmap;              /* read with the mmap flag: reloaded, never written */
    i64 index_gen;               /* generation (seq) of the file it was read from, 0 */
    i64 covered;                 /* ids it accounts for: 0..covered-1 */
    int dirty;                   /* it holds changes its file lacks */
    unsigned char *purged;       /* deleted ids it no longer holds (bitmap) */
    i64 npurged;                 /* bits allocated in purged */
    char *params;                /* runtime parameters set on the handle ("a=1,b=2") */
    /* search (search_plan.c): what filters read, reused while the table is
     * unchanged; freed through scache_free (set by its owner) at close */
    void *scache;
    void (*scache_free)(void *scache);
    /* account (account_follow.c): a search node following the table */
    int following;               /* listening for the table's write transactions */
    int behind;                  /* a notice arrived since the last catch-up */
};

/* ---------- transactions and small queries (store_sql.c) ---------- */
/* a write transaction: writers of the table take turns (lock_writers) */
int vk_db_begin(vk_db *db);
int vk_db_commit(vk_db *db);
void vk_db_rollback(vk_db *db);
/* a read transaction with one snapshot (driver's snapshot_sql), ended by
 * vk_db_commit or vk_db_rollback */
int vk_db_begin_snapshot(vk_db *db);
/* runs a one-value integer query; *out untouched when the result is NULL */
int vk_db_query_int(vk_db *db, const char *sql, const vk_value *params, int nparams,
                    i64 *out, int *isnull);
/* runs a statement, discarding any rows */
int vk_db_run(vk_db *db, const char *sql, const vk_value *params, int nparams);
void vk_columns_free(vk_column *cols, int n);
/* appends name quoted the way the handle's database quotes identifiers */
int vk_db_ident(const vk_db *db, vk_buf *b, const char *name);
/* appends the clause that turns an INSERT into an upsert on key (a column
 * list): the columns in copied (comma-separated) take the inserted values,
 * set (may be NULL) holds fixed assignments such as "reclaimed = 0" */
int vk_db_upsert(const vk_db *db, vk_buf *b, const char *key, const char *copied, const char *set);

/* side tables next to the table: "<table><suffix>", quoted (with_schema:
 * qualified by the table's schema); NULL when out of memory */
char *vk_side_ident(const vk_db *db, const char *suffix, int with_schema);
int vk_side_exists(vk_db *db, const char *suffix, int *exists);
/* CREATE INDEX IF NOT EXISTS "<table><ix_suffix>" ON the side table
 * "<table><suffix>" (cols: its column list) */
int vk_side_index(vk_db *db, const char *ix_suffix, const char *suffix, const char *cols);
/* inside a write transaction: the next seq of side table q (quoted); writers
 * take turns, so seq values are committed in order */
int vk_side_next_seq(vk_db *db, const char *q, i64 *seq);

#endif
