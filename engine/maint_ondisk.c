/* maint_ondisk.c: IVF indexes whose inverted lists live on disk: writing a
 * new generation of the lists file (the current lists, less deleted
 * records, plus the live records the index lacks, read from the table in
 * batches), then the index file that names it (docs/ondisk.md). */
#include "vk_maint.h"

#include <stdlib.h>
#include <string.h>

int vk_db_ondisk_check(const vk_index *ix) { return vk_faiss_ondisk_check(vk_index_faiss(ix)); }

/* the live records from db->covered on, batch_size at a time, into b */
static int put_records(vk_db *db, vk_ondisk_build *b, i64 batch_size, vk_progress_fn fn, void *ud,
                       i64 *added, i64 *last)
{
    i64 d = vk_db_dim(db);
    if (d < 0)
        return vk_errcode();
    i64 *todo = NULL, ntodo = 0;
    int rc = vk_db_live_ids_from(db, db->covered, &todo, &ntodo);
    if (rc)
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
        /* a record deleted since it was listed comes back missing: its
         * tombstone keeps it out of searches, it needs no vector */
        rc = vk_db_fetch_vectors_found(db, todo + done, m, x, found);
        i64 k = 0;
        for (i64 i = 0; rc == VK_OK && i < m; i++)
            if (found[i]) {
                if (k != i)
                    memmove(x + k * d, x + i * d, sizeof(float) * (size_t)d);
                ids[k++] = todo[done + i];
            }
        if (rc == VK_OK)
            rc = vk_faiss_ondisk_put(b, k, x, ids);
        if (rc == VK_OK) {
            done += m;
            *added += k;
            if (fn)
                fn(ud, done, ntodo, "add");
        }
    }
    if (ntodo > 0)
        *last = todo[ntodo - 1];
    free(x);
    free(ids);
    free(found);
    free(todo);
    return rc;
}

int vk_db_ondisk_build(vk_db *db, int64_t batch_size, const char *path, const char *params,
                       vk_progress_fn fn, void *ud, int64_t *added, int64_t *removed)
{
    *added = *removed = 0;
    int rc = vk_db_need_index(db);
    if (rc)
        return rc;
    if (batch_size <= 0)
        return vk_fail(VK_EINVAL, "batch_size must be positive, got %lld", (long long)batch_size);
    if (!path || !*path)
        path = db->index_path;
    if (!path || !*path)
        return vk_fail(VK_EINVAL, "inverted lists on disk need an index file to go with them");
    vk_index *ix = db->index;
    if ((rc = vk_db_ondisk_check(ix)))
        return rc;
    if (!vk_index_is_trained(ix))
        return vk_fail(VK_ESTATE, "the index is not trained: call train_index first");
    i64 d = vk_db_dim(db);
    if (d < 0)
        return vk_errcode();
    if (d > 0 && d != vk_index_d(ix))
        return vk_fail(VK_EINVAL, "index dimension %d does not match the table's %lld", vk_index_d(ix),
                       (long long)d);
    /* the deleted records the current lists still hold are left out */
    if ((rc = vk_tomb_refresh(db)))
        return rc;
    i64 next = vk_db_next_idx(db);
    if (next < 0)
        return vk_errcode();
    char *name = vk_index_lists_name(path);
    if (!name)
        return VK_ENOMEM;
    vk_ondisk_build *b = NULL;
    if ((rc = vk_faiss_ondisk_begin(vk_index_faiss(ix), name, &b))) {
        free(name);
        return rc;
    }
    vk_param_undo *undo = NULL;
    i64 last = -1;
    if (params && *params)
        rc = vk_index_push_params(ix, params, &undo);
    if (rc == VK_OK) {
        rc = put_records(db, b, batch_size, fn, ud, added, &last);
        vk_index_pop_params(ix, undo);
    }
    vk_idset held;
    vk_tomb_set(db, 1, &held);
    i64 *gone = NULL, ngone = 0;
    if (rc == VK_OK && held.count > 0) {
        gone = vk_malloc(sizeof(i64) * (size_t)held.count);
        rc = gone ? VK_OK : VK_ENOMEM;
        for (i64 id = 0; gone && id < held.nbits && ngone < held.count; id++)
            if (vk_idset_has(&held, id))
                gone[ngone++] = id;
    }
    if (rc == VK_OK)
        rc = vk_faiss_ondisk_finish(b, held.bits, held.nbits, removed);
    if (rc == VK_OK) {
        /* every live record below next is in the new lists, and any
         * committed meanwhile that the listing saw */
        vk_db_index_moved(db, last + 1 > next ? last + 1 : next);
        rc = vk_tomb_purge(db, gone, ngone);
    }
    /* the file is flock'ed (no cleaner takes it) until it is in place */
    if (rc == VK_OK)
        rc = vk_db_write_index(db, path);
    vk_faiss_ondisk_end(b);
    free(gone);
    free(name);
    return rc;
}
