/* write_insert.c: records collected for one insert transaction, checked as they
 * arrive so that a bad record is refused before anything is written. */
#include "vk_write.h"

#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

vk_batch *vk_batch_new(vk_db *db, int compression_level)
{
    if (vk_db_need_table(db) || vk_codec_check_level(compression_level))
        return NULL;
    vk_batch *b = vk_calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->db = db;
    b->level = compression_level;
    b->ncols = db->ncols;
    b->rows = vk_rows_new(db->ncols);
    b->cur = vk_calloc((size_t)db->ncols, sizeof(vk_value));
    b->set = vk_calloc((size_t)db->ncols, 1);
    if (!b->rows || !b->cur || !b->set) {
        vk_batch_free(b);
        return NULL;
    }
    b->d = vk_db_dim(db);
    if (b->d < 0) {
        vk_batch_free(b);
        return NULL;
    }
    vk_batch_clear(b);
    if (b->next_idx < 0) {
        vk_batch_free(b);
        return NULL;
    }
    return b;
}

void vk_batch_free(vk_batch *b)
{
    if (!b)
        return;
    vk_rows_free(b->rows);
    free(b->cur);
    free(b->set);
    vk_buf_free(&b->scratch);
    vk_buf_free(&b->vecs);
    free(b->blob);
    free(b);
}

void vk_batch_clear(vk_batch *b)
{
    b->rows->nrows = 0;
    b->rows->heap.len = 0;
    b->nrows = 0;
    b->vecs.len = 0;
    b->given_idx = 0;
    /* a guess that lets a record with a wrong idx fail early; the batch is
     * numbered again inside its write transaction */
    b->first_idx = b->next_idx = vk_db_next_idx(b->db);
}

int64_t vk_batch_rows(const vk_batch *b) { return b->nrows; }

void vk_batch_begin_row(vk_batch *b)
{
    memset(b->cur, 0, sizeof(vk_value) * (size_t)b->ncols);
    memset(b->set, 0, (size_t)b->ncols);
    b->scratch.len = 0;
}

/* keeps bytes in the row's scratch buffer; cells hold offsets for now */
static int keep_bytes(vk_batch *b, vk_value *cell, const char *s, size_t len)
{
    size_t off = b->scratch.len;
    if (vk_buf_add(&b->scratch, s, len))
        return VK_ENOMEM;
    cell->s = (const char *)(uintptr_t)off;
    cell->len = len;
    return VK_OK;
}

int vk_batch_set(vk_batch *b, int col, const vk_value *v)
{
    if (col < 0 || col >= b->ncols)
        return vk_fail(VK_EINVAL, "column number %d out of range", col);
    const vk_column *c = &b->db->cols[col];
    if (c->is_vector)
        return vk_fail(VK_EINVAL, "column '%s' holds the vector: set it as a vector", c->name);
    vk_value *cell = &b->cur[col];
    vk_value checked;
    char buf[VK_VALUE_BUF];
    int rc = vk_value_store(c, v, &checked, buf);
    if (rc) {
        b->set[col] = 0;
        return rc;
    }
    *cell = checked;
    b->set[col] = 1;
    if ((checked.type == VK_TEXT || checked.type == VK_BLOB) &&
        keep_bytes(b, cell, checked.s, checked.len))
        return VK_ENOMEM;
    return VK_OK;
}

int vk_batch_set_stored(vk_batch *b, int col, const vk_value *v)
{
    vk_value *cell = &b->cur[col];
    *cell = *v;
    b->set[col] = 1;
    if ((v->type == VK_TEXT || v->type == VK_BLOB) && keep_bytes(b, cell, v->s, v->len))
        return VK_ENOMEM;
    return VK_OK;
}

static int check_dim(vk_batch *b, i64 d)
{
    if (d <= 0)
        return vk_fail(VK_EINVAL, "vector is empty");
    vk_index *ix = b->db->index;
    i64 want = b->d > 0 ? b->d : (ix ? vk_index_d(ix) : 0);
    if (want > 0 && d != want)
        return vk_fail(VK_EINVAL, "vector has dimension %lld, expected %lld", (long long)d,
                       (long long)want);
    return VK_OK;
}

/* the vector's floats go to vecs (for the index), its blob to the row */
static int keep_vector(vk_batch *b, const float *v, i64 d, const void *blob, size_t len)
{
    i64 bad = vk_first_nonfinite(v, d);
    if (bad >= 0)
        return vk_fail(VK_EINVAL, "vector holds a NaN or infinite value at position %lld",
                       (long long)bad + 1);
    vk_value *cell = &b->cur[b->db->vec_col];
    *cell = (vk_value){.type = VK_BLOB};
    if (keep_bytes(b, cell, blob, len))
        return VK_ENOMEM;
    b->set[b->db->vec_col] = 2;   /* 2: floats appended to vecs */
    return vk_buf_add(&b->vecs, v, sizeof(float) * (size_t)d);
}

/* the blob stays empty until the batch is written (write_rows encodes it
 * from vecs): no zstd frame is empty, so an empty one marks it pending */
int vk_batch_set_vector(vk_batch *b, const float *v, int64_t d)
{
    int rc = check_dim(b, d);
    if (rc)
        return rc;
    if (b->set[b->db->vec_col])
        return vk_fail(VK_EINVAL, "the vector was set twice");
    if ((rc = keep_vector(b, v, d, "", 0)))
        return rc;
    b->d = d;
    return VK_OK;
}

int vk_batch_set_vector_blob(vk_batch *b, const void *blob, size_t len)
{
    if (b->set[b->db->vec_col])
        return vk_fail(VK_EINVAL, "the vector was set twice");
    i64 d = vk_decoded_dim(blob, len);
    if (d <= 0)
        return vk_fail(VK_ECODEC, "corrupted vector: the bytes are not one zstd frame of float32 values");
    int rc = check_dim(b, d);
    if (rc)
        return rc;
    float *v = vk_malloc(sizeof(float) * (size_t)d);
    if (!v)
        return VK_ENOMEM;
    rc = vk_decode(blob, len, v, d);
    if (rc == VK_OK)
        rc = keep_vector(b, v, d, blob, len);
    free(v);
    if (rc == VK_OK)
        b->d = d;
    return rc;
}

void vk_batch_abort_row(vk_batch *b)
{
    if (b->set[b->db->vec_col] == 2)
        b->vecs.len -= sizeof(float) * (size_t)b->d;
    vk_batch_begin_row(b);
}

int vk_batch_end_row(vk_batch *b)
{
    vk_db *db = b->db;
    int rc = VK_OK;
    int given = b->set[db->idx_col] && b->cur[db->idx_col].type != VK_NULL;
    if (!given) {
        b->cur[db->idx_col] = (vk_value){.type = VK_INT, .i = b->next_idx};
    } else if (b->cur[db->idx_col].i != b->next_idx) {
        rc = vk_fail(VK_EINVAL, "idx %lld is not consecutive: the next record must have idx %lld",
                     (long long)b->cur[db->idx_col].i, (long long)b->next_idx);
    }
    if (rc == VK_OK && !b->set[db->vec_col])
        rc = vk_fail(VK_EINVAL, "record has no vector in column '%s'", db->vector_name);
    for (int i = 0; rc == VK_OK && i < b->ncols; i++) {
        const vk_column *c = &db->cols[i];
        if (!c->nullable && !c->primary && !c->is_vector &&
            (!b->set[i] || b->cur[i].type == VK_NULL))
            rc = vk_fail(VK_EINVAL, "record lacks required column '%s'", c->name);
    }
    if (rc) {
        vk_batch_abort_row(b);
        return rc;
    }
    /* offsets into scratch become pointers for the copy into rows */
    for (int i = 0; i < b->ncols; i++) {
        vk_value *v = &b->cur[i];
        if (!b->set[i] && i != db->idx_col)
            *v = (vk_value){.type = VK_NULL};
        else if (v->type == VK_TEXT || v->type == VK_BLOB)
            v->s = b->scratch.p + (uintptr_t)v->s;
    }
    if ((rc = vk_rows_append(b->rows, b->cur))) {
        vk_batch_abort_row(b);
        return rc;
    }
    b->nrows++;
    b->next_idx++;
    b->given_idx |= given;
    vk_batch_begin_row(b);
    return VK_OK;
}

/* ---------- encoding while the driver writes ----------
 * Compressing a vector costs about as much as the database writing its row.
 * The other threads encode the batch's vectors chunk by chunk, in row order,
 * while the caller's thread runs the driver, which waits (vk_rows_wait)
 * only for a chunk not yet done, and encodes the next unclaimed chunk itself
 * rather than wait for one nobody took.  The bytes are those the caller's
 * thread alone would write. */

#define ENCODE_CHUNK 64   /* rows claimed at a time */

typedef struct encoder {
    vk_rows_feed feed;         /* first: vk_rows_wait lands in need() */
    vk_batch *b;
    size_t stride;             /* arena bytes per row */
    i64 nchunks;
    _Atomic i64 claimed;       /* chunks handed out, in order */
    _Atomic unsigned char *done;
    _Atomic int waiting, stop;
    pthread_mutex_t lock;
    pthread_cond_t more;
    int err_code;              /* a failure of any thread, under lock */
    char err[512];
} encoder;

static int encode_chunk(encoder *e, i64 c)
{
    vk_batch *b = e->b;
    i64 lo = c * ENCODE_CHUNK, hi = lo + ENCODE_CHUNK < b->nrows ? lo + ENCODE_CHUNK : b->nrows;
    int vc = b->db->vec_col;
    for (i64 r = lo; r < hi; r++) {
        vk_value *v = &b->rows->cells[r * b->ncols + vc];
        if (v->len)
            continue;   /* given serialized */
        char *dst = b->blob + (size_t)r * e->stride;
        size_t len = vk_encode((const float *)b->vecs.p + r * b->d, b->d, b->level, dst, e->stride);
        if (!len)
            return vk_errcode();
        v->s = dst;
        v->len = len;
    }
    return VK_OK;
}

/* claims and encodes the next chunk: 0 when none was left or one failed */
static int encode_next(encoder *e)
{
    if (atomic_load(&e->stop))
        return 0;
    i64 c = atomic_fetch_add(&e->claimed, 1);
    if (c >= e->nchunks)
        return 0;
    int rc = encode_chunk(e, c);
    if (rc) {
        pthread_mutex_lock(&e->lock);
        if (!e->err_code) {
            e->err_code = rc;
            snprintf(e->err, sizeof e->err, "%s", vk_errmsg());
        }
        atomic_store(&e->stop, 1);
        pthread_cond_broadcast(&e->more);
        pthread_mutex_unlock(&e->lock);
        return 0;
    }
    atomic_store(&e->done[c], 1);
    if (atomic_load(&e->waiting)) {
        pthread_mutex_lock(&e->lock);
        pthread_cond_broadcast(&e->more);
        pthread_mutex_unlock(&e->lock);
    }
    return 1;
}

/* on the driver's thread: rows 0..n-1 final */
static int encoder_need(vk_rows_feed *f, i64 n)
{
    encoder *e = (encoder *)f;
    if (n > e->b->nrows)
        n = e->b->nrows;
    i64 want = (n + ENCODE_CHUNK - 1) / ENCODE_CHUNK;   /* chunks 0..want-1 */
    i64 c = f->ready / ENCODE_CHUNK;
    while (c < want) {
        if (atomic_load(&e->done[c])) {
            c++;
            continue;
        }
        if (encode_next(e))
            continue;
        pthread_mutex_lock(&e->lock);
        atomic_store(&e->waiting, 1);
        while (!atomic_load(&e->done[c]) && !e->err_code)
            pthread_cond_wait(&e->more, &e->lock);
        atomic_store(&e->waiting, 0);
        int code = e->err_code;
        pthread_mutex_unlock(&e->lock);
        if (code)
            return vk_fail(code, "%s", e->err);
    }
    i64 ready = c * ENCODE_CHUNK;
    f->ready = ready < e->b->nrows ? ready : e->b->nrows;
    return VK_OK;
}

/* the batch's rows through the driver, their pending vectors encoded on
 * every thread vekterdb.set_num_threads allows */
static int write_rows(vk_db *db, vk_batch *b)
{
    i64 r = 0;
    while (r < b->nrows && b->rows->cells[r * b->ncols + db->vec_col].len)
        r++;
    if (r == b->nrows)   /* every vector came serialized */
        return db->drv->insert(db, b->rows);
    encoder e = {.feed = {.need = encoder_need}, .b = b, .stride = vk_codec_bound(b->d),
                 .nchunks = (b->nrows + ENCODE_CHUNK - 1) / ENCODE_CHUNK};
    size_t need = e.stride * (size_t)b->nrows;
    if (need > b->blob_cap) {
        char *p = vk_realloc(b->blob, need);
        if (!p)
            return VK_ENOMEM;
        b->blob = p;
        b->blob_cap = need;
    }
    if (!(e.done = vk_calloc((size_t)e.nchunks, 1)))
        return VK_ENOMEM;
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nt > e.nchunks)
        nt = (int)e.nchunks;
    pthread_mutex_init(&e.lock, NULL);
    pthread_cond_init(&e.more, NULL);
    b->rows->feed = &e.feed;
    int rc = VK_OK;
    if (nt <= 1) {
        rc = db->drv->insert(db, b->rows);
    } else {
#pragma omp parallel num_threads(nt)
        {
            if (omp_get_thread_num() == 0) {
                rc = db->drv->insert(db, b->rows);
                atomic_store(&e.stop, 1);
            } else {
                while (encode_next(&e))
                    ;
            }
        }
    }
    /* a driver that wrote rows it never waited for would have stored
     * empty vectors: refuse rather than commit them */
    if (rc == VK_OK && e.feed.ready < b->nrows)
        rc = vk_fail(VK_ESTATE, "the driver wrote rows %lld..%lld before their vectors were encoded",
                     (long long)e.feed.ready, (long long)b->nrows - 1);
    b->rows->feed = NULL;
    pthread_mutex_destroy(&e.lock);
    pthread_cond_destroy(&e.more);
    free((void *)e.done);
    return rc;
}

/* inside the write transaction, where no other writer can take an idx:
 * the batch's final idx values */
static int number_rows(vk_db *db, vk_batch *b)
{
    i64 next = vk_db_next_idx(db);
    if (next < 0)
        return vk_errcode();
    if (next == b->first_idx)
        return VK_OK;
    if (b->given_idx)
        return vk_fail(VK_ECONSTRAINT, "idx %lld was taken by another writer meanwhile: the next idx of "
                       "table %s is now %lld (records without idx are numbered by VekterDB)",
                       (long long)b->first_idx, db->table, (long long)next);
    for (i64 r = 0; r < b->nrows; r++)
        b->rows->cells[r * b->ncols + db->idx_col].i = next + r;
    b->first_idx = next;
    b->next_idx = next + b->nrows;
    return VK_OK;
}

int vk_batch_write(vk_db *db, vk_batch *b)
{
    if (b->db != db)
        return vk_fail(VK_EINVAL, "the batch belongs to another handle");
    if (b->nrows == 0)
        return VK_OK;
    vk_index *ix = db->index;
    /* on-disk lists take no vectors: searches scan the rows the mapping
     * lacks until sync_index_to_db writes a new generation (docs/ondisk.md) */
    if (ix && vk_index_is_ondisk(ix))
        ix = NULL;
    if (ix && !vk_index_is_trained(ix))
        return vk_fail(VK_ESTATE, "the index is not trained: call train_index first");
    int rc = number_rows(db, b);
    i64 added;
    /* what others committed before this batch goes into the index first */
    if (rc == VK_OK && ix && (rc = vk_index_check_writable(ix)) == VK_OK)
        rc = vk_db_catch_up(db, 0, NULL, NULL, 0, &added);
    if (rc)
        return rc;
    if (ix && db->covered != b->first_idx)
        return vk_fail(VK_ESTATE, "the index accounts for idx 0..%lld but the table's next idx is %lld",
                       (long long)db->covered - 1, (long long)b->first_idx);
    vk_rows_seal(b->rows);
    if ((rc = write_rows(db, b)))
        return rc;
    if (ix && (rc = vk_index_add(ix, b->nrows, (const float *)b->vecs.p, b->first_idx)) == VK_OK) {
        db->covered = b->first_idx + b->nrows;
        db->dirty = 1;
    }
    return rc;
}

void vk_batch_unwrite(vk_db *db, vk_batch *b, int rc)
{
    vk_index *ix = db->index;
    if (!ix || b->nrows == 0 || db->covered <= b->first_idx)
        return;
    /* the table refused the batch after FAISS took it: take it back */
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", vk_errmsg());
    if (vk_index_truncate(ix, b->first_idx))
        vk_fail(rc, "%s (and the index could not be rolled back: reopen it and run "
                "sync_index_to_db)", saved);
    else
        vk_fail(rc, "%s", saved);
    db->covered = b->first_idx;
}

int vk_db_insert(vk_db *db, vk_batch *b)
{
    if (b->db != db)
        return vk_fail(VK_EINVAL, "the batch belongs to another handle");
    if (b->nrows == 0)
        return VK_OK;
    /* the checks run before the transaction so they stay cheap to fail */
    int rc = VK_OK;
    if (db->index && !vk_index_is_trained(db->index))
        rc = vk_fail(VK_ESTATE, "the index is not trained: call train_index first");
    if (rc == VK_OK && db->index && !vk_index_is_ondisk(db->index))
        rc = vk_index_check_writable(db->index);
    if (rc == VK_OK)
        rc = vk_db_begin(db);
    if (rc)
        return rc;
    if ((rc = vk_batch_write(db, b))) {
        vk_db_rollback(db);
        vk_batch_unwrite(db, b, rc);
        return rc;
    }
    if ((rc = vk_db_commit(db))) {
        vk_batch_unwrite(db, b, rc);
        return rc;
    }
    if (db->d == 0)
        db->d = b->d;
    return VK_OK;
}

/* one batch with the call's runtime parameters set while its vectors are
 * added (per batch: nothing stays set while the record source runs) */
static int insert_with(vk_db *db, vk_batch *b, const char *params)
{
    vk_index *ix = db->index;
    vk_param_undo *undo = NULL;
    int rc = ix && params && *params ? vk_index_push_params(ix, params, &undo) : VK_OK;
    if (rc == VK_OK)
        rc = vk_db_insert(db, b);
    if (ix)
        vk_index_pop_params(ix, undo);
    return rc;
}

int vk_db_insert_rows(vk_db *db, vk_batch *b, int64_t batch_size, const char *params, vk_fill_fn fill,
                      void *ud, vk_progress_fn progress, void *pud, int64_t expected, int64_t *inserted)
{
    *inserted = 0;
    if (b->db != db)
        return vk_fail(VK_EINVAL, "the batch belongs to another handle");
    if (batch_size <= 0)
        return vk_fail(VK_EINVAL, "batch_size must be positive, got %lld", (long long)batch_size);
    /* nothing is held while fill runs: it may leave by longjmp (a Lua error) */
    for (;;) {
        vk_batch_clear(b);
        if (b->next_idx < 0)
            return vk_errcode();
        i64 got = fill(ud, b, batch_size);
        if (got < 0)
            return (int)got;
        i64 n = vk_batch_rows(b);
        if (n == 0)
            return VK_OK;
        int rc = insert_with(db, b, params);
        if (rc)
            return *inserted > 0 ? vk_fail_context("after %lld records were inserted",
                                                  (long long)*inserted)
                                 : rc;
        *inserted += n;
        if (progress)
            progress(pud, *inserted, expected, "insert");
        if (n < batch_size)
            return VK_OK;   /* the source ran dry */
    }
}
