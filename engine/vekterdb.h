/*
 * vekterdb.h: public C interface of the VekterDB engine.
 *
 * A vk_db pairs one SQL table (idx BIGINT primary key, a zstd-compressed
 * float32 vector blob, extra columns) with an optional FAISS index.  All
 * handles are opaque; every call that can fail returns VK_OK (0) or a
 * negative VK_E* code and leaves a message for vk_errmsg().  The message is
 * kept per thread, the way FAISS's C API keeps its last error.
 *
 * Only plain C types cross this header, so it also suits LuaJIT's FFI.
 */
#ifndef VEKTERDB_H
#define VEKTERDB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VK_VERSION "0.1.0"

/* status codes */
enum {
    VK_OK = 0,
    VK_EINVAL = -1,     /* bad argument or bad data from the caller */
    VK_ESQL = -2,       /* the database refused or failed */
    VK_EFAISS = -3,     /* FAISS raised an error */
    VK_ENOMEM = -4,
    VK_ECODEC = -5,     /* a stored vector blob could not be decoded */
    VK_EIO = -6,        /* file system */
    VK_ESTATE = -7,     /* call not valid in the handle's state */
    VK_ECONSTRAINT = -8, /* unique / not-null / primary key violation */
    VK_ELOCKED = -9,     /* another writer held the table past the busy timeout */
    VK_ECONN = -10,      /* the database cannot be reached, or the connection was lost */
    VK_ENOTFOUND = -11   /* a file, table or index the call names does not exist */
};

/* last error of this thread; never NULL */
const char *vk_errmsg(void);
int vk_errcode(void);
/* sets this thread's error (for callers that report through the engine) */
int vk_set_error(int code, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---------- values (row cells and bound parameters) ---------- */
typedef enum { VK_NULL = 0, VK_INT, VK_REAL, VK_TEXT, VK_BLOB, VK_BOOL } vk_type;

typedef struct vk_value {
    vk_type type;
    int64_t i;       /* VK_INT, VK_BOOL */
    double r;        /* VK_REAL */
    const char *s;   /* VK_TEXT, VK_BLOB: not owned */
    size_t len;
} vk_value;

/* ---------- vector codec ---------- */
/* One zstd frame of d little-endian float32 values. */
size_t vk_codec_bound(int64_t d);
/* VK_OK when zstd takes this compression level. */
int vk_codec_check_level(int level);
/* Returns the compressed size, or 0 with vk_errmsg set. */
size_t vk_encode(const float *v, int64_t d, int level, void *dst, size_t cap);
/* Decodes into out[0..d); fails unless the blob holds exactly d floats. */
int vk_decode(const void *blob, size_t len, float *out, int64_t d);
/* Number of floats a blob holds (from the frame header), or -1. */
int64_t vk_decoded_dim(const void *blob, size_t len);
/* Checks that every value is finite. Returns index of first bad value or -1. */
int64_t vk_first_nonfinite(const float *v, int64_t n);

/* ---------- metric ---------- */
typedef enum { VK_METRIC_IP = 0, VK_METRIC_L2 = 1 } vk_metric;
/* the one place metric names are read: "inner_product" (also "ip",
 * "INNER_PRODUCT") or "l2" ("L2"); VK_EINVAL with the message otherwise */
int vk_metric_parse(const char *name, vk_metric *out);
/* "inner_product" or "l2" */
const char *vk_metric_name(vk_metric m);
/* inner product, or true (not squared) Euclidean distance */
float vk_metric_value(vk_metric m, const float *a, const float *b, int64_t d);

/* ---------- FAISS index ---------- */
typedef struct vk_index vk_index;

/* The SIMD extensions FAISS's kernels may use: the linked libfaiss.a was
 * compiled for some of them (vk_faiss_needs), and running it on a CPU
 * without one dies on an illegal instruction. */
enum { VK_CPU_AVX2 = 1, VK_CPU_FMA = 2, VK_CPU_F16C = 4, VK_CPU_POPCNT = 8 };
/* "avx2" or "generic": the FAISS build the engine was linked with */
const char *vk_faiss_build(void);
unsigned vk_faiss_needs(void);
/* this CPU's (and its OS's: AVX needs the OS to save the registers) */
unsigned vk_cpu_features(void);
/* the names of need's features missing from have ("avx2 fma"), in buf;
 * returns how many are missing */
int vk_cpu_missing(unsigned need, unsigned have, char *buf, size_t n);
/* VK_OK when this CPU runs the linked FAISS, VK_ESTATE with the message
 * (what is missing, how to build for this CPU) otherwise */
int vk_faiss_check_cpu(void);

/* reference counted: every *_new/read returns one reference */
int vk_index_factory(vk_index **out, int d, const char *description, vk_metric metric);
/* mmap: map an IVF index's inverted lists from the file, shared between
 * processes; the index is then read-only (adds, training and removals fail) */
int vk_index_read(vk_index **out, const char *path, int mmap);
/* VK_OK, or the error a write to an index read with mmap gets */
int vk_index_check_writable(const vk_index *ix);
/* writes path atomically: temporary file, fsync, rename */
int vk_index_write(vk_index *ix, const char *path);
void vk_index_retain(vk_index *ix);
void vk_index_release(vk_index *ix);

int vk_index_d(const vk_index *ix);
int64_t vk_index_ntotal(const vk_index *ix);
int vk_index_is_trained(const vk_index *ix);
vk_metric vk_index_metric(const vk_index *ix);
/* true when FAISS understood the index's metric as one VekterDB supports */
int vk_index_metric_supported(const vk_index *ix);

int vk_index_train(vk_index *ix, int64_t n, const float *x);
/* adds n vectors whose ids are first_id, first_id+1, ... */
int vk_index_add(vk_index *ix, int64_t n, const float *x, int64_t first_id);
/* removes ids >= first_id (used to undo an add); VK_EFAISS if unsupported */
int vk_index_truncate(vk_index *ix, int64_t first_id);
int vk_index_search(vk_index *ix, int64_t n, const float *x, int64_t k,
                    float *distances, int64_t *labels);

/* "name=value,name=value": checked whole first, then applied */
int vk_index_set_params(vk_index *ix, const char *params);
/* a parameter's current value, by the names FAISS's ParameterSpace knows */
int vk_index_get_param(const vk_index *ix, const char *name, double *out);

/* A saved copy of the values that a parameter string names.  Restoring it
 * puts them back: per-call search parameters never leak. */
typedef struct vk_param_undo vk_param_undo;
int vk_index_push_params(vk_index *ix, const char *params, vk_param_undo **undo);
void vk_index_pop_params(vk_index *ix, vk_param_undo *undo);

/* ---------- database: a table of records ---------- */
typedef struct vk_db vk_db;

/* What a column holds beyond its value type: the generic types of
 * SQLAlchemy (DateTime, Date, JSON) that the Python VekterDB's tables may
 * have.  Their values are VK_TEXT (README "Column types"). */
typedef enum {
    VK_KIND_PLAIN = 0,   /* as its vk_type says */
    VK_KIND_DATETIME,    /* a time without time zone: "YYYY-MM-DD HH:MM:SS[.ffffff]" */
    VK_KIND_DATE,        /* "YYYY-MM-DD" */
    VK_KIND_JSON         /* JSON text */
} vk_kind;

typedef struct vk_column {
    const char *name;
    vk_type type;       /* VK_INT, VK_REAL, VK_TEXT, VK_BLOB, VK_BOOL */
    int unique;
    int nullable;
    int index;
    int primary;        /* set for idx */
    int is_vector;      /* set for the vector column */
    vk_kind kind;       /* VK_KIND_PLAIN unless a DateTime, Date or JSON column */
    int length;         /* VARCHAR(n) (VK_TEXT): at most n characters; 0: no limit */
} vk_column;

/* ---------- column types (base_types.c) ---------- */
/* Sets c->type, c->kind and c->length from a type's name, any case:
 * integer int bigint biginteger, real float double number, text string,
 * varchar string(n) varchar(n), blob bytes binary largebinary, boolean
 * bool, datetime timestamp, date, json.  VK_EINVAL names the known ones. */
int vk_column_parse_type(vk_column *c, const char *name);
/* the column's type as vk_column_parse_type reads it back: "integer",
 * "real", "text", "varchar" (with c->length), "blob", "boolean",
 * "datetime", "date" or "json" */
const char *vk_column_type_name(const vk_column *c);
/* Sets c->type, c->kind and c->length from a declared SQL type as a
 * catalog shows it ("VARCHAR(32)", "DATETIME", "character varying(32)",
 * "timestamp without time zone", "jsonb", "double precision", ...):
 * SQLite's affinity rules, with the kinds above recognised first. */
void vk_column_from_decl(vk_column *c, const char *decl);

/* room for a value vk_value_store or vk_value_read writes */
#define VK_VALUE_BUF 40
/* Value v as column c stores it: its type checked (an integer for a real
 * column, text for a blob column are converted), a DateTime or Date
 * column's ISO-8601 text normalised to "YYYY-MM-DD HH:MM:SS.ffffff" or
 * "YYYY-MM-DD" (the form SQLAlchemy writes), a JSON column's text checked
 * (numbers and booleans become JSON text), a VARCHAR(n) column's length
 * checked.  out may point into buf and into v's bytes.  VK_EINVAL names the
 * column and the fault. */
int vk_value_store(const vk_column *c, const vk_value *v, vk_value *out, char buf[VK_VALUE_BUF]);
/* A stored value of column c as it reads back: a DateTime as
 * "YYYY-MM-DD HH:MM:SS" with ".f" when the time has a fraction (trailing
 * zeros dropped, as PostgreSQL shows it), a Date as "YYYY-MM-DD", a number
 * held by a JSON column as JSON text; anything else, and text that is no
 * such time, unchanged.  out may point into buf and into v's bytes. */
void vk_value_read(const vk_column *c, const vk_value *v, vk_value *out, char buf[VK_VALUE_BUF]);

/* Opens a connection: "sqlite://" (memory), "sqlite:///rel.db",
 * "sqlite:////abs.db", "postgresql://user:pw@host:port/db?opt=...",
 * "mysql://user:pw@host:port/db?opt=..." (also "mariadb://").
 * options: extra "key=value" connection settings, may be NULL. */
int vk_db_open(vk_db **out, const char *url, const char *const *options, int noptions);
void vk_db_close(vk_db *db);      /* idempotent on NULL */
const char *vk_db_driver(const vk_db *db);   /* "sqlite" or "postgresql" */

/* Binds the handle to a table.  When the table exists its columns are read
 * from the catalog (cols is then only checked for conflicts when given);
 * otherwise it is created from cols (idx and vector are added).  schema may
 * be NULL. */
int vk_db_use_table(vk_db *db, const char *schema, const char *table,
                    const char *idx_name, const char *vector_name,
                    const vk_column *cols, int ncols);
int vk_db_table_existed(const vk_db *db);
/* whether a table or view exists, asked of the database's catalog without
 * binding the handle to it; schema may be NULL (the default one) */
int vk_db_table_exists(vk_db *db, const char *schema, const char *table, int *exists);
int vk_db_ncolumns(const vk_db *db);                 /* idx and vector included */
const vk_column *vk_db_column(const vk_db *db, int i);
int vk_db_column_index(const vk_db *db, const char *name);   /* -1 if none */
const char *vk_db_idx_name(const vk_db *db);
const char *vk_db_vector_name(const vk_db *db);
const char *vk_db_table(const vk_db *db);

/* dimension: read from a stored vector, 0 while the table is empty */
int64_t vk_db_dim(vk_db *db);
int64_t vk_db_count(vk_db *db);
/* one past the largest idx, 0 for an empty table */
int64_t vk_db_next_idx(vk_db *db);

/* Pairs an index (retained; NULL detaches) with the table; path (may be
 * NULL) is the file it is saved to.  The index counts as holding every
 * deleted record it covers until it is read (explicit-id indexes). */
int vk_db_attach(vk_db *db, vk_index *ix, const char *path);
/* reads an index file the table trusts (see vk_db_read_index) and attaches
 * it with its path; a mapped one is replaced by newer generations of its
 * file as other handles save them */
int vk_db_open_index(vk_db *db, const char *path, int mmap, int trust);
vk_index *vk_db_index(const vk_db *db);
/* the attached index's file, or NULL */
const char *vk_db_index_path(const vk_db *db);
/* saves the attached index to its file when it holds changes the file
 * lacks (vectors added or removed by this handle) */
int vk_db_save_index(vk_db *db);
/* runtime parameters ("nprobe=16,...") that stay until changed: set on the
 * attached index, remembered by the handle (for a config file, and for the
 * newer file a mapped index is replaced by) */
int vk_db_set_params(vk_db *db, const char *params);
/* every parameter set so far, merged: "" when none */
const char *vk_db_params(const vk_db *db);


/* progress of a long call: done of total (-1: unknown) in a phase such as
 * "insert", "train" or "add" */
typedef int (*vk_progress_fn)(void *ud, int64_t done, int64_t total, const char *phase);

/* ---------- insert ---------- */
typedef struct vk_batch vk_batch;
vk_batch *vk_batch_new(vk_db *db, int compression_level);
void vk_batch_free(vk_batch *b);
void vk_batch_clear(vk_batch *b);
int64_t vk_batch_rows(const vk_batch *b);
/* row building: begin, set cells by column number, end (validates) */
void vk_batch_begin_row(vk_batch *b);
int vk_batch_set(vk_batch *b, int col, const vk_value *v);
int vk_batch_set_vector(vk_batch *b, const float *v, int64_t d);
int vk_batch_set_vector_blob(vk_batch *b, const void *blob, size_t len);
int vk_batch_end_row(vk_batch *b);
void vk_batch_abort_row(vk_batch *b);

/* Writes the batch in one transaction; when an index is attached the
 * vectors are added to it too, and undone if the commit fails. */
int vk_db_insert(vk_db *db, vk_batch *b);

/* A record source: adds up to max records to b (vk_batch_begin_row ..
 * vk_batch_end_row) and returns how many, fewer than max only at its end;
 * or a negative VK_E* code with the message set. */
typedef int64_t (*vk_fill_fn)(void *ud, vk_batch *b, int64_t max);
/* Inserts every record fill gives, batch_size to a transaction (b is the
 * caller's, cleared before each batch), calling progress after each
 * committed batch with the records so far and expected (-1: unknown).
 * params (may be NULL): runtime parameters set on the index while each
 * batch's vectors are added, then put back.  Batches committed before a
 * failure stay; the error then says how many records were inserted.
 * Nothing is held or set while fill runs, so it may leave by longjmp (a
 * Lua error). */
int vk_db_insert_rows(vk_db *db, vk_batch *b, int64_t batch_size, const char *params, vk_fill_fn fill,
                      void *ud, vk_progress_fn progress, void *pud, int64_t expected, int64_t *inserted);

/* ---------- reading ---------- */
typedef struct vk_rows vk_rows;
int64_t vk_rows_count(const vk_rows *r);
int vk_rows_ncols(const vk_rows *r);
const vk_value *vk_rows_get(const vk_rows *r, int64_t row, int col);
/* decodes the blobs of column col into out (count x d floats) */
int vk_rows_vectors(const vk_rows *r, int col, int64_t d, float *out);
void vk_rows_free(vk_rows *r);

typedef struct vk_cursor vk_cursor;
/* cols: column numbers of the db; where_sql may be NULL (all rows) and uses
 * the driver's placeholders (vk_db_placeholder) numbered from 1. */
int vk_db_select(vk_db *db, const int *cols, int ncols, const char *where_sql,
                 const vk_value *params, int nparams, const char *order_limit,
                 vk_cursor **out);
/* up to max rows; *out is NULL at the end */
int vk_cursor_next(vk_cursor *c, int64_t max, vk_rows **out);
void vk_cursor_close(vk_cursor *c);
/* "?" (SQLite, MySQL: ?1 ?2) or "$" (PostgreSQL: $1 $2) */
const char *vk_db_placeholder(const vk_db *db);
/* the character the database quotes identifiers with: '"', or '`' (MySQL) */
char vk_db_quote(const vk_db *db);

/* Runs any SQL statement with bound parameters (driver placeholders) and
 * collects every result row: the escape hatch for maintenance and tests. */
int vk_db_execute(vk_db *db, const char *sql, const vk_value *params, int nparams,
                  vk_rows **out);

/* rows for the given idx values, in that order (missing ids: NULL cells) */
int vk_db_fetch(vk_db *db, const int64_t *ids, int64_t n, const int *cols, int ncols,
                vk_rows **out);
/* vectors for the given idx values into out (n x d) */
int vk_db_fetch_vectors(vk_db *db, const int64_t *ids, int64_t n, float *out);
/* a random sample of n vectors (n <= 0 or >= count: all), n_out rows */
int vk_db_sample_vectors(vk_db *db, int64_t n, uint64_t seed, float **out, int64_t *n_out);

/* ---------- index files a table trusts (trust.c) ---------- */
/* FAISS's reader trusts what a file states, so a damaged or crafted index
 * file could crash the process.  The engine records the SHA-256 of every
 * index file it saves for a table in the side table
 * "<table>__vekterdb_index_files" (before renaming it into place), and reads
 * a file for the table only when its digest is recorded there.
 * trust: read a file whose digest is not recorded, and record it. */
int vk_db_read_index(vk_db *db, const char *path, int mmap, int trust, vk_index **out);
/* saves the attached index to path: temporary file, fsync, digest
 * recorded, rename */
int vk_db_write_index(vk_db *db, const char *path);

/* ---------- search nodes (README "Search nodes") ---------- */
/* Keeps the newest keep generations of the table's index file in the
 * database (0: none), for every writer of the table: each save then also
 * stores the file as a large object in the transaction that records its
 * digest.  VK_EINVAL where the database has no large objects. */
int vk_db_keep_index_objects(vk_db *db, int64_t keep);
/* Makes the handle a search node: downloads the newest generation kept in
 * the database into cache_dir (a copy already there is reused when it
 * matches), checks its SHA-256 (VK_ECODEC when it does not match), attaches
 * it without a file, and listens for the table's write transactions: a
 * search then skips the catch-up query while none committed (deletes are
 * read by every search). */
int vk_db_follow(vk_db *db, const char *cache_dir);
int vk_db_following(const vk_db *db);
/* Waits up to timeout_ms for a write transaction of the table to commit
 * (*changed = 1), then catches up with it; a following handle only. */
int vk_db_wait_for_changes(vk_db *db, int timeout_ms, int *changed);
/* the generation (seq) of the index file the attached index was read from, 0 */
int64_t vk_db_index_generation(const vk_db *db);

/* ---------- index maintenance ---------- */

/* first idx missing from 0..max, or -1 when idx values are consecutive */
int vk_db_find_gap(vk_db *db, int64_t *gap);
int vk_db_train_index(vk_db *db, int64_t sample_size, vk_progress_fn fn, void *ud);
/* adds every record the index lacks, batch_size at a time, with the
 * runtime parameters params (may be NULL) set meanwhile; then writes the
 * index file to path (may be NULL) */
int vk_db_sync_index(vk_db *db, int64_t batch_size, const char *path, const char *params,
                     vk_progress_fn fn, void *ud, int64_t *added);

/* VK_OK when the index's inverted lists can live on disk (an IVF index),
 * VK_EINVAL with the reason otherwise */
int vk_db_ondisk_check(const vk_index *ix);
/* Moves the trained IVF index's inverted lists to disk, or writes a new
 * generation of lists already there: a new lists file beside path
 * ("<path>.ivfdata.<16 hex digits>") with the current lists (less deleted
 * records, counted in *removed) and every live record the index lacks,
 * read batch_size at a time (params set meanwhile), mapped read-only; then
 * the index file at path, which names it.  The index is read-only from then
 * on: records inserted later are scanned exactly by searches until the
 * next generation.  docs/ondisk.md. */
int vk_db_ondisk_build(vk_db *db, int64_t batch_size, const char *path, const char *params,
                       vk_progress_fn fn, void *ud, int64_t *added, int64_t *removed);
/* 1 when the index's lists live on disk */
int vk_index_is_ondisk(const vk_index *ix);

/* ---------- search ---------- */
typedef struct vk_hits {
    int64_t nq, k;
    int64_t *count;   /* nq: neighbors kept for each query */
    int64_t *ids;     /* nq*k */
    float *metric;    /* nq*k */
} vk_hits;

/* ---------- filters ---------- */
/* A where-clause (where_sql as for vk_db_select, copied with its values;
 * NULL: every record) restricting a search.  The database counts its
 * matches at once; the set of matching idx values is read only when the
 * plan needs it.  A filter belongs to its db handle. */
typedef struct vk_filter vk_filter;
int vk_filter_new(vk_db *db, const char *where_sql, const vk_value *params, int nparams,
                  vk_filter **out);
/* the number of matches when known: up to VK_FILTER_EXACT_MAX, or once a
 * search read them all; -1 for "more than VK_FILTER_EXACT_MAX" */
int64_t vk_filter_count(const vk_filter *f);
void vk_filter_free(vk_filter *f);

/* The plan a search took (see docs/filtered-search.md):
 *   INDEX     FAISS alone: no filter and no deleted records
 *   EXACT     the filter matched few records: their vectors, scanned exactly
 *   SELECTOR  FAISS visits only allowed ids (filter bitmap, or tombstones)
 *   WIDEN     the index type takes no selector: larger k, results filtered
 *   CHECK     more than VK_FILTER_EXACT_MAX matches: FAISS's candidates
 *             (k enlarged) are checked by the database, more asked until k
 *             match, or SELECTOR taken when the filter proves narrow */
enum { VK_PLAN_INDEX = 0, VK_PLAN_EXACT, VK_PLAN_SELECTOR, VK_PLAN_WIDEN, VK_PLAN_CHECK };

/* filters matching at most this many records are scanned exactly */
#define VK_FILTER_EXACT_MAX 2048
/* CHECK turns to SELECTOR when reading the estimated matches costs less
 * than checking the candidates the next round needs, one candidate (found
 * by FAISS and checked by the database) counting as this many idx read */
#define VK_FILTER_CANDIDATE_COST 20

typedef struct vk_search_stats {
    int plan;
    int64_t matches;         /* records the filter matched, -1 without a filter */
    int64_t excluded;        /* deleted idx values the search left out */
    int64_t rounds;          /* wider searches after the first */
    int64_t widened;         /* queries searched again, wider */
    int64_t exact_fallback;  /* queries finished by an exact scan of the matches */
    int64_t max_k;           /* the largest k asked of FAISS */
    int64_t missing;         /* candidates whose record was deleted during the search */
    int64_t estimated;       /* CHECK: matches estimated from FAISS's candidates */
} vk_search_stats;

typedef struct vk_search_opts {
    int64_t k_extra;        /* extra FAISS candidates before the cut */
    int rerank;             /* order by the exact metric */
    int has_threshold;
    float threshold;
    const char *params;     /* per-call runtime parameters, may be NULL */
    const int64_t *exclude; /* nq ids to drop from their query's neighbors, or NULL */
    vk_filter *filter;         /* only these records can be neighbors, or NULL */
    int filter_plan;           /* 0: the planner's choice; or VK_PLAN_EXACT,
                                * VK_PLAN_SELECTOR, VK_PLAN_WIDEN, VK_PLAN_CHECK */
    vk_search_stats *stats;    /* filled when given */
} vk_search_opts;

/* the metric is the attached index's */
int vk_db_search(vk_db *db, const float *q, int64_t nq, int64_t k,
                 const vk_search_opts *opts, vk_hits *out);
void vk_hits_free(vk_hits *h);

/* ---------- deletes and updates ---------- */
/* Deletes the records where_sql matches (NULL: all) in one transaction and
 * records their idx values in the tombstone table "<table>__vekterdb_deleted"
 * that every search consults; the index is left as it is. */
int vk_db_delete(vk_db *db, const char *where_sql, const vk_value *params, int nparams,
                 int64_t *deleted);
/* Sets columns cols[i] to values[i] in the records where_sql matches, in one
 * transaction.  With a vector (d floats), each record is deleted and
 * inserted again with that vector under a new idx: *first_new, then
 * consecutive, in the order of the old idx values; replaced (may be NULL)
 * then gets those old values, *updated of them, for the caller to free(). */
int vk_db_update(vk_db *db, const char *where_sql, const vk_value *params, int nparams,
                 const int *cols, const vk_value *values, int nvalues, const float *vector,
                 int64_t d, int64_t *updated, int64_t *first_new, int64_t **replaced);
/* number of deleted idx values the table remembers */
int64_t vk_db_deleted_count(vk_db *db);
/* Removes deleted records' vectors from the attached index where its type
 * keeps explicit ids (IVF family, IDMap), writes it to path (when given and
 * something was removed) and marks the tombstones it no longer needs. */
int vk_db_rebuild_index(vk_db *db, const char *path, int64_t *removed, int64_t *reclaimed);
/* records the attached index lacks (*lag), and idx values it holds that the
 * table never used (*excess > 0: the index belongs to another table) */
int vk_db_index_lag(vk_db *db, int64_t *lag, int64_t *excess);

#ifdef __cplusplus
}
#endif
#endif
