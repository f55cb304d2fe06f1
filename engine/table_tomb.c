/* table_tomb.c: deleted records, as every handle sees them.
 *
 * A delete removes the rows and writes their idx values, in the same
 * transaction, to the side table "<table>__vekterdb_deleted"
 *     (idx BIGINT PRIMARY KEY, seq BIGINT, reclaimed INTEGER)
 * next to the table (write_change.c), so every handle and process sees
 * them.  Searches leave the deleted ids out through an ID selector (or by
 * filtering FAISS's results).  An idx is never given out again.
 *
 * seq orders the changes: every transaction that writes tombstones gives
 * its rows MAX(seq) + 1, so a handle keeps its copy of the set current by
 * reading only the rows with a larger seq than it has seen.
 *
 * Which deleted ids need excluding depends on the index, not the table: a
 * handle's index may have lost some (its own rebuild, or a file saved
 * without them), and another handle's may not.  "active" is the set this
 * handle's attached index may still hold; "purged" (in the handle) the ids
 * it is known to lack.
 */
#include "vk_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct vk_tombs vk_tombs;

struct vk_tombs {
    int exists;               /* the side table has been seen */
    i64 seq;                  /* largest seq read */
    unsigned char *all;       /* every deleted idx */
    unsigned char *active;    /* those not reclaimed by an index rebuild */
    i64 nbits;                /* bits allocated in both */
    i64 nall, nactive;
    i64 max;                  /* largest deleted idx, -1 */
};

static int is_purged(const vk_db *db, i64 id)
{
    return id < db->npurged && ((db->purged[id >> 3] >> (id & 7)) & 1);
}

static vk_tombs *tombs_of(vk_db *db)
{
    if (!db->tombs) {
        db->tombs = vk_calloc(1, sizeof *db->tombs);
        if (db->tombs)
            db->tombs->max = -1;
    }
    return db->tombs;
}

void vk_tomb_free(vk_db *db)
{
    if (!db->tombs)
        return;
    free(db->tombs->all);
    free(db->tombs->active);
    free(db->tombs);
    db->tombs = NULL;
}

void vk_tomb_reset(vk_db *db)
{
    /* the side table itself may have been created by what was undone */
    vk_tomb_free(db);
}

void vk_tomb_set(const vk_db *db, int active_only, vk_idset *out)
{
    const vk_tombs *t = db->tombs;
    if (!t || !t->all) {
        *out = (vk_idset){NULL, 0, 0};
        return;
    }
    out->bits = active_only ? t->active : t->all;
    out->nbits = t->nbits;
    out->count = active_only ? t->nactive : t->nall;
}

i64 vk_tomb_max(const vk_db *db) { return db->tombs ? db->tombs->max : -1; }

static int grow(vk_tombs *t, i64 id)
{
    if (id < t->nbits)
        return VK_OK;
    i64 n = t->nbits ? t->nbits : 4096;
    while (n <= id)
        n *= 2;
    unsigned char *a = vk_realloc(t->all, (size_t)(n / 8));
    if (!a)
        return VK_ENOMEM;
    t->all = a;
    unsigned char *b = vk_realloc(t->active, (size_t)(n / 8));
    if (!b)
        return VK_ENOMEM;
    t->active = b;
    memset(t->all + t->nbits / 8, 0, (size_t)((n - t->nbits) / 8));
    memset(t->active + t->nbits / 8, 0, (size_t)((n - t->nbits) / 8));
    t->nbits = n;
    return VK_OK;
}

/* sets or clears bit id of map, keeping *count */
static void put_bit(unsigned char *map, i64 id, int on, i64 *count)
{
    unsigned char m = (unsigned char)(1u << (id & 7));
    int was = (map[id >> 3] & m) != 0;
    if (on && !was) {
        map[id >> 3] |= m;
        ++*count;
    } else if (!on && was) {
        map[id >> 3] &= (unsigned char)~m;
        --*count;
    }
}

int vk_tomb_purge(vk_db *db, const i64 *ids, i64 n)
{
    i64 mx = -1;
    for (i64 i = 0; i < n; i++)
        if (ids[i] > mx)
            mx = ids[i];
    if (mx >= db->npurged) {
        i64 nb = db->npurged ? db->npurged : 4096;
        while (nb <= mx)
            nb *= 2;
        unsigned char *p = vk_realloc(db->purged, (size_t)(nb / 8));
        if (!p)
            return VK_ENOMEM;
        memset(p + db->npurged / 8, 0, (size_t)((nb - db->npurged) / 8));
        db->purged = p;
        db->npurged = nb;
    }
    vk_tombs *t = db->tombs;
    for (i64 i = 0; i < n; i++) {
        i64 id = ids[i];
        if (id < 0)
            continue;
        db->purged[id >> 3] |= (unsigned char)(1u << (id & 7));
        if (t && t->active && id < t->nbits)
            put_bit(t->active, id, 0, &t->nactive);
    }
    return VK_OK;
}

int vk_tomb_attach(vk_db *db)
{
    free(db->purged);
    db->purged = NULL;
    db->npurged = 0;
    /* every deleted id counts as held until the index says otherwise */
    vk_tomb_reset(db);
    if (!db->index || !db->table)
        return VK_OK;
    int rc = vk_tomb_refresh(db);
    vk_tombs *t = db->tombs;
    struct FaissIndex_H *fi = vk_index_faiss(db->index);
    if (rc || !t || t->nall == 0 || !vk_faiss_explicit_ids(fi))
        return rc;
    /* an explicit-id index may have lost deleted ids in a rebuild (its own
     * or, for a file, the one that saved it): those need no excluding */
    unsigned char *held = vk_calloc((size_t)(t->nbits / 8), 1);
    if (!held)
        return VK_ENOMEM;
    int64_t mx;
    rc = vk_faiss_ids(fi, &mx, held, t->nbits);
    i64 n = 0, cap = 0;
    i64 *gone = NULL;
    for (i64 id = 0; rc == VK_OK && id < t->nbits; id++) {
        if (!((t->all[id >> 3] >> (id & 7)) & 1) || ((held[id >> 3] >> (id & 7)) & 1))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            i64 *p = vk_realloc(gone, sizeof(i64) * (size_t)cap);
            if (!p) {
                rc = VK_ENOMEM;
                break;
            }
            gone = p;
        }
        gone[n++] = id;
    }
    if (rc == VK_OK)
        rc = vk_tomb_purge(db, gone, n);
    free(gone);
    free(held);
    return rc;
}

int vk_tomb_refresh(vk_db *db)
{
    if (!db->table)
        return VK_OK;
    vk_tombs *t = tombs_of(db);
    if (!t)
        return VK_ENOMEM;
    int rc;
    if (!t->exists && ((rc = vk_side_exists(db, VK_TOMB_SUFFIX, &t->exists)) || !t->exists))
        return rc;
    char *q = vk_side_ident(db, VK_TOMB_SUFFIX, 1);
    vk_buf sql = {0};
    rc = q ? vk_buf_printf(&sql, "SELECT idx, seq, reclaimed FROM %s WHERE seq > %s1", q,
                           db->drv->placeholder)
           : VK_ENOMEM;
    free(q);
    vk_stmt *st = NULL;
    vk_value p = {.type = VK_INT, .i = t->seq};
    if (rc == VK_OK)
        rc = db->drv->query(db, sql.p, &p, 1, &st);
    vk_buf_free(&sql);
    if (rc)
        return vk_fail_context("cannot read the deleted records of table %s", db->table);
    vk_value row[3];
    while ((rc = db->drv->next(st, row, 3)) == 1) {
        if (row[0].type != VK_INT || row[1].type != VK_INT) {
            rc = vk_fail(VK_ESQL, "table %s%s holds a row that is not two integers", db->table,
                         VK_TOMB_SUFFIX);
            break;
        }
        i64 id = row[0].i;
        int reclaimed = row[2].type == VK_INT || row[2].type == VK_BOOL ? row[2].i != 0 : 0;
        if (row[1].i > t->seq)
            t->seq = row[1].i;
        if (id < 0)
            continue;   /* never a FAISS id */
        if ((rc = grow(t, id)))
            break;
        (void)reclaimed;   /* whether a rebuild removed it from *its* index */
        put_bit(t->all, id, 1, &t->nall);
        put_bit(t->active, id, !is_purged(db, id), &t->nactive);
        if (id > t->max)
            t->max = id;
    }
    db->drv->finish(st);
    if (rc < 0) {
        /* a half-read change set would be taken as read: start over next time */
        vk_tomb_reset(db);
        return rc;
    }
    return VK_OK;
}

int64_t vk_db_deleted_count(vk_db *db)
{
    if (vk_db_need_table(db) || vk_tomb_refresh(db))
        return -1;
    return db->tombs ? db->tombs->nall : 0;
}
