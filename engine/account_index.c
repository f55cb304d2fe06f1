/* account_index.c: the attached index against the table that other handles and
 * processes write: which ids it accounts for, adding what they committed,
 * a newer generation of a mapped file, saving it when it changed.
 *
 * Writers take turns (vk_db_begin) and give out idx values inside their
 * transaction, so the committed idx values always form a prefix 0..next-1
 * (less deleted ones).  An index accounts for 0..covered-1; catching up adds
 * covered..next-1.  Deleted records are tombstones that every search leaves
 * out, whatever this or another handle rebuilt.
 */
#include "vk_account.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* vectors read from the table and added to the index at a time */
#define VK_CATCH_UP_BATCH 4096

const char *vk_db_index_path(const vk_db *db) { return db->index_path; }

int vk_db_need_index(const vk_db *db)
{
    if (!db->index)
        return vk_fail(VK_ESTATE, "no FAISS index: create_index or attach one first");
    return VK_OK;
}

const char *vk_db_params(const vk_db *db) { return db->params ? db->params : ""; }

/* "a=1,b=2" with "b=3,c=4" laid over it: "a=1,b=3,c=4" */
static char *merge_params(const char *old, const char *add)
{
    vk_buf out = {0};
    int rc = VK_OK;
    const char *p = old ? old : "";
    while (*p && rc == VK_OK) {
        const char *end = strchr(p, ','), *eq = strchr(p, '=');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        size_t nlen = eq && eq < p + len ? (size_t)(eq - p) : len;
        /* kept unless add names it */
        int replaced = 0;
        for (const char *a = add; *a;) {
            const char *ae = strchr(a, ','), *aq = strchr(a, '=');
            size_t al = ae ? (size_t)(ae - a) : strlen(a);
            size_t an = aq && aq < a + al ? (size_t)(aq - a) : al;
            if (an == nlen && strncmp(a, p, nlen) == 0)
                replaced = 1;
            a += al + (ae ? 1 : 0);
        }
        if (!replaced && len > 0)
            rc = vk_buf_printf(&out, "%s%.*s", out.len ? "," : "", (int)len, p);
        p += len + (end ? 1 : 0);
    }
    if (rc == VK_OK && *add)
        rc = vk_buf_printf(&out, "%s%s", out.len ? "," : "", add);
    if (rc == VK_OK && !out.p)
        rc = vk_buf_adds(&out, "");
    if (rc) {
        vk_buf_free(&out);
        return NULL;
    }
    return out.p;
}

int vk_db_set_params(vk_db *db, const char *params)
{
    int rc = vk_db_need_index(db);
    if (rc == VK_OK)
        rc = vk_index_set_params(db->index, params);
    if (rc)
        return rc;
    char *merged = merge_params(db->params, params);
    if (!merged)
        return VK_ENOMEM;
    free(db->params);
    db->params = merged;
    return VK_OK;
}

/* the index's ids and which deleted ones it holds, read once per attach */
static int account(vk_db *db)
{
    db->covered = db->index ? vk_index_covered(db->index) : 0;
    db->dirty = 0;
    return vk_tomb_attach(db);
}

static int set_path(vk_db *db, const char *path)
{
    char *p = path && *path ? vk_strdup(path) : NULL;
    if (path && *path && !p)
        return VK_ENOMEM;
    free(db->index_path);
    db->index_path = p;
    return VK_OK;
}

/* the index's dimension against the table's vectors (file: for the message) */
static int check_dim(vk_db *db, const vk_index *ix, const char *file)
{
    i64 d = db->table ? vk_db_dim(db) : 0;
    if (d < 0)
        return vk_errcode();
    if (d == 0 || d == vk_index_d(ix))
        return VK_OK;
    if (file)
        return vk_fail(VK_EINVAL, "index file %s has dimension %d but table %s holds %lld-d vectors",
                       file, vk_index_d(ix), db->table, (long long)d);
    return vk_fail(VK_EINVAL, "index dimension %d does not match the table's %lld", vk_index_d(ix),
                   (long long)d);
}

int vk_db_attach(vk_db *db, vk_index *ix, const char *path)
{
    int rc = ix ? check_dim(db, ix, NULL) : VK_OK;
    if (rc == VK_OK)
        rc = set_path(db, ix ? path : NULL);
    if (rc)
        return rc;
    vk_index_retain(ix);
    vk_index_release(db->index);
    db->index = ix;
    db->index_mmap = ix && vk_index_is_mapped(ix);
    db->index_gen = 0;
    return account(db);
}

void vk_db_index_moved(vk_db *db, i64 covered)
{
    vk_index_lists_moved(db->index);
    db->index_mmap = 1;
    db->covered = covered;
    db->dirty = 1;
}

int vk_db_open_index(vk_db *db, const char *path, int mmap, int trust)
{
    vk_index *ix;
    i64 gen = 0;
    int rc = vk_db_read_index_gen(db, path, mmap, trust, &ix, &gen);
    if (rc)
        return rc;
    rc = check_dim(db, ix, path);
    if (rc == VK_OK)
        rc = vk_db_attach(db, ix, path);
    vk_index_release(ix);
    if (rc == VK_OK)
        db->index_gen = gen;
    return rc;
}

/* a mapped index cannot take vectors: a newer file of the same name, when
 * the table records one, replaces it */
static int reload_newer(vk_db *db)
{
    i64 gen = 0;
    int rc = vk_db_index_file_gen(db, db->index_path, &gen);
    if (rc || gen <= db->index_gen)
        return rc;
    vk_index *ix;
    i64 got = 0;
    if ((rc = vk_db_read_index_gen(db, db->index_path, 1, 0, &ix, &got)))
        return rc;
    char *path = vk_strdup(db->index_path);
    rc = path ? vk_db_attach(db, ix, path) : VK_ENOMEM;
    free(path);
    vk_index_release(ix);
    if (rc == VK_OK)
        db->index_gen = got;
    /* the runtime parameters set on the handle hold for the new file too */
    if (rc == VK_OK && db->params && *db->params)
        rc = vk_index_set_params(db->index, db->params);
    return rc;
}

/* adds ids (explicit-id index) or the positions first.. (the others) */
static int add_batch(vk_db *db, int explicit_ids, const i64 *ids, i64 m, const float *x)
{
    int rc = explicit_ids ? vk_faiss_add_ids(vk_index_faiss(db->index), m, x, ids)
                          : vk_index_add(db->index, m, x, ids[0]);
    if (rc == VK_OK && m > 0) {
        db->dirty = 1;
        if (ids[m - 1] + 1 > db->covered)
            db->covered = ids[m - 1] + 1;
    }
    return rc;
}

int vk_db_catch_up(vk_db *db, i64 batch_size, vk_progress_fn fn, void *ud, int reload, i64 *added)
{
    *added = 0;
    int rc = vk_db_need_index(db);
    if (rc)
        return rc;
    if (batch_size <= 0)
        batch_size = VK_CATCH_UP_BATCH;
    i64 next = vk_db_next_idx(db);
    if (next < 0)
        return vk_errcode();
    if (next <= db->covered) {
        if (fn)
            fn(ud, 0, 0, "add");
        if (db->covered > next)
            return vk_fail(VK_ESTATE, "the index holds idx %lld but table %s has only ever held %lld "
                           "records: it belongs to another table", (long long)db->covered - 1,
                           db->table, (long long)next);
        return VK_OK;
    }
    /* a mapped index takes no vectors (a newer file may), an untrained one
     * none yet */
    if (db->index_mmap || !vk_index_is_trained(db->index)) {
        if (fn)
            fn(ud, 0, 0, "add");
        if (db->index_mmap && reload && db->index_path && !db->in_txn)
            rc = reload_newer(db);
        return rc;
    }
    i64 d = vk_db_dim(db);
    if (d < 0)
        return vk_errcode();
    if (d != vk_index_d(db->index))
        return vk_fail(VK_EINVAL, "index dimension %d does not match the table's %lld",
                       vk_index_d(db->index), (long long)d);
    /* explicit-id indexes get the live records they lack under their idx;
     * the others number vectors by position, so a deleted record's place
     * gets a zero vector (its tombstone keeps it out of every search) */
    int explicit_ids = vk_faiss_explicit_ids(vk_index_faiss(db->index));
    i64 *todo = NULL, ntodo = next - db->covered, first = db->covered;
    if (explicit_ids && (rc = vk_db_live_ids_from(db, first, &todo, &ntodo)))
        return rc;
    if (fn)
        fn(ud, 0, ntodo, "add");
    i64 m0 = ntodo < batch_size ? ntodo : batch_size;
    float *x = ntodo > 0 ? vk_malloc(sizeof(float) * (size_t)(m0 * d)) : NULL;
    i64 *ids = ntodo > 0 ? vk_malloc(sizeof(i64) * (size_t)m0) : NULL;
    unsigned char *found = ntodo > 0 ? vk_malloc((size_t)m0) : NULL;
    if (ntodo > 0 && (!x || !ids || !found))
        rc = VK_ENOMEM;
    for (i64 done = 0; done < ntodo && rc == VK_OK;) {
        i64 m = ntodo - done < batch_size ? ntodo - done : batch_size;
        for (i64 i = 0; i < m; i++)
            ids[i] = explicit_ids ? todo[done + i] : first + done + i;
        /* a record deleted since it was listed comes back missing: its
         * tombstone is committed, so it stays out of searches */
        rc = vk_db_fetch_vectors_found(db, ids, m, x, found);
        int refreshed = 0;
        for (i64 i = 0; rc == VK_OK && i < m; i++) {
            if (found[i])
                continue;
            vk_idset dead;
            if (!refreshed && (rc = vk_tomb_refresh(db)))
                break;
            refreshed = 1;
            vk_tomb_set(db, 0, &dead);
            if (!vk_idset_has(&dead, ids[i]))
                rc = vk_fail(VK_ESTATE, "idx %lld of table %s vanished without being deleted "
                             "while the index was catching up", (long long)ids[i], db->table);
        }
        if (rc == VK_OK && explicit_ids) {
            /* leave out what was deleted meanwhile */
            i64 k = 0;
            for (i64 i = 0; i < m; i++)
                if (found[i]) {
                    memmove(x + k * d, x + i * d, sizeof(float) * (size_t)d);
                    ids[k++] = ids[i];
                }
            rc = add_batch(db, 1, ids, k, x);
        } else if (rc == VK_OK) {
            rc = add_batch(db, 0, ids, m, x);
        }
        if (rc == VK_OK) {
            done += m;
            *added += m;
            if (fn)
                fn(ud, *added, ntodo, "add");
        }
    }
    /* an explicit-id index covers every idx below next once caught up */
    if (rc == VK_OK && explicit_ids && next > db->covered)
        db->covered = next;
    free(x);
    free(ids);
    free(found);
    free(todo);
    return rc;
}

int vk_db_save_index(vk_db *db)
{
    if (!db->index || !db->index_path || !db->dirty || db->index_mmap)
        return VK_OK;
    int rc = vk_db_write_index(db, db->index_path);
    if (rc == VK_OK)
        db->dirty = 0;
    return rc;
}

int vk_db_index_lag(vk_db *db, int64_t *lag, int64_t *excess)
{
    *lag = *excess = 0;
    int rc = vk_db_need_index(db);
    if (rc)
        return rc;
    i64 next = vk_db_next_idx(db);
    if (next < 0)
        return vk_errcode();
    i64 covered = db->covered;
    if (covered > next)
        *excess = covered - next;
    if (covered >= next)
        return VK_OK;
    /* the live records it lacks (a deleted one needs no vector) */
    vk_buf sql = {0};
    rc = vk_buf_adds(&sql, "SELECT COUNT(*) FROM ");
    rc |= vk_buf_adds(&sql, db->qtable);
    rc |= vk_buf_adds(&sql, " WHERE ");
    rc |= vk_db_ident(db, &sql, db->idx_name);
    rc |= vk_buf_printf(&sql, " >= %s1", db->drv->placeholder);
    vk_value p = {.type = VK_INT, .i = covered};
    rc = rc ? VK_ENOMEM : vk_db_query_int(db, sql.p, &p, 1, lag, NULL);
    vk_buf_free(&sql);
    return rc;
}
