/* maint_sync.c: training the attached index on a sample of the table and
 * adding to it every record it lacks (then saving its file). */
#include "vk_maint.h"

#include <stdlib.h>
#include <string.h>

int vk_db_train_index(vk_db *db, int64_t sample_size, vk_progress_fn fn, void *ud)
{
    int rc = vk_db_need_index(db);
    if (rc)
        return rc;
    if (vk_index_ntotal(db->index) > 0)
        return vk_fail(VK_ESTATE, "the index already holds %lld vectors: train it before adding any",
                       (long long)vk_index_ntotal(db->index));
    i64 d = vk_db_dim(db);
    if (d > 0 && d != vk_index_d(db->index))
        return vk_fail(VK_EINVAL, "index dimension %d does not match the table's %lld",
                       vk_index_d(db->index), (long long)d);
    float *x;
    i64 n;
    if ((rc = vk_db_sample_vectors(db, sample_size, 0x5eed5eedULL, &x, &n)))
        return rc;
    if (fn)
        fn(ud, 0, n, "train");
    rc = vk_index_train(db->index, n, x);
    free(x);
    if (rc == VK_OK && fn)
        fn(ud, n, n, "train");
    return rc;
}

/* an index with its lists on disk: a newer generation another handle
 * saved, if any, then a new generation when records are missing from it
 * or deleted ones are still in it */
static int sync_ondisk(vk_db *db, int64_t batch_size, const char *path, const char *params,
                       vk_progress_fn fn, void *ud, int64_t *added)
{
    i64 none = 0, removed = 0, lag = 0, excess = 0;
    int rc = vk_db_catch_up(db, batch_size, NULL, NULL, 1, &none);
    if (rc == VK_OK)
        rc = vk_db_index_lag(db, &lag, &excess);
    if (rc == VK_OK)
        rc = vk_tomb_refresh(db);
    if (rc)
        return rc;
    vk_idset held;
    vk_tomb_set(db, 1, &held);
    /* the lists hold ids below covered only */
    i64 nheld = 0;
    for (i64 id = 0; id < held.nbits && id < db->covered && nheld == 0; id++)
        nheld += vk_idset_has(&held, id);
    if (lag == 0 && nheld == 0) {
        if (fn)
            fn(ud, 0, 0, "add");
        return VK_OK;
    }
    return vk_db_ondisk_build(db, batch_size, path, params, fn, ud, added, &removed);
}

int vk_db_sync_index(vk_db *db, int64_t batch_size, const char *path, const char *params,
                     vk_progress_fn fn, void *ud, int64_t *added)
{
    *added = 0;
    int rc = vk_db_need_index(db);
    if (rc)
        return rc;
    if (batch_size <= 0)
        return vk_fail(VK_EINVAL, "batch_size must be positive, got %lld", (long long)batch_size);
    /* the gap check counts the deleted idx values this handle has read: a
     * delete another process commits meanwhile looks like a gap until the
     * tombstones are read again */
    i64 gap = -1;
    for (int tries = 0; tries < 3; tries++) {
        if ((rc = vk_tomb_refresh(db)) || (rc = vk_db_find_gap(db, &gap)))
            return rc;
        if (gap < 0)
            break;
    }
    if (gap >= 0)
        return vk_fail(VK_EINVAL, "idx values of table %s are not consecutive from 0: idx %lld is missing",
                       db->table, (long long)gap);
    i64 lag, excess;
    if ((rc = vk_db_index_lag(db, &lag, &excess)))
        return rc;
    if (excess > 0)
        return vk_fail(VK_ESTATE, "the index holds %lld vectors but table %s has only ever held %lld "
                       "records: it belongs to another table", (long long)vk_index_ntotal(db->index),
                       db->table, (long long)(db->covered - excess));
    if (vk_index_is_ondisk(db->index))
        return sync_ondisk(db, batch_size, path, params, fn, ud, added);
    if (lag > 0 && (rc = vk_index_check_writable(db->index)))
        return rc;
    if (lag > 0 && !vk_index_is_trained(db->index))
        return vk_fail(VK_ESTATE, "the index is not trained: call train_index first");
    vk_index *ix = db->index;
    vk_param_undo *undo = NULL;
    if (params && *params && (rc = vk_index_push_params(ix, params, &undo)))
        return rc;
    rc = vk_db_catch_up(db, batch_size, fn, ud, 0, added);
    vk_index_pop_params(ix, undo);
    if (rc)
        return rc;
    /* a mapped index is read-only: its file stays as it is */
    if (path && *path && !vk_index_is_mapped(db->index))
        rc = vk_db_write_index(db, path);
    return rc;
}
