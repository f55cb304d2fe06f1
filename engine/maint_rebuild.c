/* maint_rebuild.c: removing deleted records' vectors from an index that
 * keeps explicit ids, and saving it. */
#include "vk_maint.h"

#include <stdlib.h>
#include <string.h>

int vk_db_rebuild_index(vk_db *db, const char *path, int64_t *removed, int64_t *reclaimed)
{
    *removed = *reclaimed = 0;
    int rc = vk_db_need_index(db);
    int ondisk = rc == VK_OK && vk_index_is_ondisk(db->index);
    if (rc == VK_OK && !ondisk)
        rc = vk_index_check_writable(db->index);
    /* on-disk lists: the current generation, if another handle saved a
     * newer one */
    if (rc == VK_OK && ondisk)
        rc = vk_db_catch_up(db, 65536, NULL, NULL, 1, &(i64){0});
    i64 added = 0;
    /* first what other handles committed, so the saved file is current */
    if (rc == VK_OK && !ondisk)
        rc = vk_db_catch_up(db, 65536, NULL, NULL, 0, &added);
    if (rc == VK_OK)
        rc = vk_tomb_refresh(db);
    if (rc)
        return rc;
    struct FaissIndex_H *fi = vk_index_faiss(db->index);
    vk_idset held;
    vk_tomb_set(db, 1, &held);
    /* position-numbered indexes keep every vector: nothing to reclaim */
    if (!ondisk && (!vk_faiss_explicit_ids(fi) || held.count == 0)) {
        if (added > 0 && path && *path)
            rc = vk_db_write_index(db, path);
        return rc;
    }
    /* on-disk lists hold ids below covered only: the deleted ids above
     * were never in them */
    i64 n = 0, count = held.count, below = ondisk ? db->covered : held.nbits;
    i64 *ids = vk_malloc(sizeof(i64) * (size_t)(count > 0 ? count : 1));
    if (!ids)
        return VK_ENOMEM;
    for (i64 id = 0; id < held.nbits && id < below && n < count; id++)
        if (vk_idset_has(&held, id))
            ids[n++] = id;
    if (ondisk && n == 0) {
        i64 lag = 0, excess = 0;
        free(ids);
        rc = vk_db_index_lag(db, &lag, &excess);
        if (rc == VK_OK && lag > 0)
            rc = vk_db_ondisk_build(db, 65536, path, NULL, NULL, NULL, &added, removed);
        return rc;
    }
    if (ondisk) {
        /* a new generation of the lists file without them, and with what
         * other handles committed (it purges the tombstones and saves) */
        rc = vk_db_ondisk_build(db, 65536, path, NULL, NULL, NULL, &added, removed);
    } else {
        rc = vk_faiss_remove_ids(fi, ids, n, removed);
        /* only this handle's index lost them: other handles keep excluding
         * them from theirs until they read a file that lacks them */
        if (rc == VK_OK)
            rc = vk_tomb_purge(db, ids, n);
        if (rc == VK_OK && *removed > 0)
            db->dirty = 1;
        if (rc == VK_OK && (*removed > 0 || added > 0) && path && *path)
            rc = vk_db_write_index(db, path);
    }
    if (rc) {
        free(ids);
        return rc;
    }
    /* for the record (deleted_count and rebuild's result): these tombstones
     * no longer have a vector in the newest index file; seq stays, so
     * other handles do not read them again */
    rc = vk_db_begin(db);
    char *q = vk_side_ident(db, VK_TOMB_SUFFIX, 1);
    vk_buf sql = {0};
    const char *ph = db->drv->placeholder;
    if (rc == VK_OK && !q)
        rc = VK_ENOMEM;
    if (rc == VK_OK)
        rc = vk_buf_printf(&sql, "UPDATE %s SET reclaimed = 1 WHERE idx = %s1 AND reclaimed = 0", q, ph);
    for (i64 i = 0; rc == VK_OK && i < n; i++) {
        vk_value p = {.type = VK_INT, .i = ids[i]};
        rc = vk_db_run(db, sql.p, &p, 1);
    }
    *reclaimed = rc == VK_OK ? n : 0;
    free(ids);
    free(q);
    vk_buf_free(&sql);
    if (rc) {
        *reclaimed = 0;
        vk_db_rollback(db);
        return vk_fail_context("cannot mark reclaimed tombstones of table %s", db->table);
    }
    return vk_db_commit(db);
}
