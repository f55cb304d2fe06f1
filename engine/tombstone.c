/* tombstone.c: deleted records, updates, and what the index accounts for.
 *
 * A delete removes the rows and writes their idx values, in the same
 * transaction, to the side table "<table>__vekterdb_deleted"
 *     (idx BIGINT PRIMARY KEY, seq BIGINT, reclaimed INTEGER)
 * next to the table, so every handle and process sees them.  The FAISS
 * index is not touched: searches leave the deleted ids out through an ID
 * selector (or by filtering FAISS's results), and rebuild_index removes
 * them from indexes that keep explicit ids (IVF family, IDMap), marking
 * those tombstones reclaimed.  The rows stay: an idx is never given out
 * again, and the consecutive-idx check counts deleted idx values as used.
 *
 * seq orders the changes: every transaction that writes tombstones gives
 * its rows MAX(seq) + 1, so a handle keeps its copy of the set current by
 * reading only the rows with a larger seq than it has seen.
 */
#include "vk_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOMB_SUFFIX "__vekterdb_deleted"
#define TOMB_SEQ_SUFFIX "__vekterdb_deleted_seq"

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

int vk_db_is_pg(const vk_db *db) { return strcmp(db->drv->name, "postgresql") == 0; }

/* "<table><suffix>" quoted, with_schema: qualified by the table's schema */
char *vk_side_ident(const vk_db *db, const char *suffix, int with_schema)
{
    vk_buf b = {0};
    int rc = VK_OK;
    if (with_schema && db->schema) {
        rc |= vk_buf_ident(&b, db->schema);
        rc |= vk_buf_adds(&b, ".");
    }
    char *name = vk_malloc(strlen(db->table) + strlen(suffix) + 1);
    if (!name) {
        vk_buf_free(&b);
        return NULL;
    }
    strcpy(name, db->table);
    strcat(name, suffix);
    rc |= vk_buf_ident(&b, name);
    free(name);
    if (rc) {
        vk_buf_free(&b);
        vk_fail(VK_ENOMEM, "out of memory");
        return NULL;
    }
    return b.p;
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

static int is_purged(const vk_db *db, i64 id);

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

static int is_purged(const vk_db *db, i64 id)
{
    return id < db->npurged && ((db->purged[id >> 3] >> (id & 7)) & 1);
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

/* runs a statement, discarding any rows */
int vk_db_run(vk_db *db, const char *sql, const vk_value *params, int nparams)
{
    vk_stmt *st;
    int rc = db->drv->query(db, sql, params, nparams, &st);
    if (rc)
        return rc;
    vk_value v;
    while ((rc = db->drv->next(st, &v, 1)) == 1)
        ;
    db->drv->finish(st);
    return rc;
}

int vk_side_exists(vk_db *db, const char *suffix, int *exists)
{
    *exists = 0;
    vk_buf sql = {0};
    int rc;
    vk_value p;
    char *name = NULL;
    if (vk_db_is_pg(db)) {
        name = vk_side_ident(db, suffix, 1);
        rc = name ? vk_buf_adds(&sql, "SELECT CASE WHEN to_regclass($1) IS NULL THEN 0 ELSE 1 END")
                  : VK_ENOMEM;
    } else {
        name = vk_malloc(strlen(db->table) + strlen(suffix) + 1);
        if (name) {
            strcpy(name, db->table);
            strcat(name, suffix);
        }
        rc = name ? vk_buf_adds(&sql, "SELECT COUNT(*) FROM ") : VK_ENOMEM;
        if (rc == VK_OK && db->schema) {
            rc |= vk_buf_ident(&sql, db->schema);
            rc |= vk_buf_adds(&sql, ".");
        }
        rc |= vk_buf_adds(&sql, "sqlite_master WHERE type = 'table' AND name = ?1");
    }
    if (rc == VK_OK) {
        p = (vk_value){.type = VK_TEXT, .s = name, .len = strlen(name)};
        i64 n = 0;
        rc = vk_db_query_int(db, sql.p, &p, 1, &n, NULL);
        *exists = rc == VK_OK && n > 0;
    }
    free(name);
    vk_buf_free(&sql);
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
    if (!t->exists && ((rc = vk_side_exists(db, TOMB_SUFFIX, &t->exists)) || !t->exists))
        return rc;
    char *q = vk_side_ident(db, TOMB_SUFFIX, 1);
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
                         TOMB_SUFFIX);
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
    if (!db->table) {
        vk_fail(VK_ESTATE, "no table: the handle is not bound to a table");
        return -1;
    }
    if (vk_tomb_refresh(db))
        return -1;
    return db->tombs ? db->tombs->nall : 0;
}

int vk_side_next_seq(vk_db *db, const char *q, i64 *seq)
{
    /* writers of the table take turns (vk_db_begin), so seq values are
     * committed in order */
    vk_buf sql = {0};
    int rc;
    if ((rc = vk_buf_printf(&sql, "SELECT COALESCE(MAX(seq), 0) + 1 FROM %s", q)) == VK_OK)
        rc = vk_db_query_int(db, sql.p, NULL, 0, seq, NULL);
    vk_buf_free(&sql);
    return rc;
}

/* ---------- writing tombstones ---------- */

/* opens the write transaction, creates the side table when needed (and
 * on PostgreSQL locks it: writers of tombstones take turns, so seq values
 * are committed in order) and picks this transaction's seq */
static int begin_change(vk_db *db, i64 *seq)
{
    int rc = vk_db_begin(db);
    if (rc)
        return rc;
    char *q = vk_side_ident(db, TOMB_SUFFIX, 1);
    char *ix = vk_side_ident(db, TOMB_SEQ_SUFFIX, !vk_db_is_pg(db));
    char *bare = vk_side_ident(db, TOMB_SUFFIX, vk_db_is_pg(db));
    vk_buf sql = {0};
    rc = q && ix && bare ? VK_OK : VK_ENOMEM;
    if (rc == VK_OK &&
        (rc = vk_buf_printf(&sql, "CREATE TABLE IF NOT EXISTS %s (idx BIGINT NOT NULL, "
                            "seq BIGINT NOT NULL, reclaimed INTEGER NOT NULL DEFAULT 0, "
                            "PRIMARY KEY (idx))", q)) == VK_OK)
        rc = db->drv->exec(db, sql.p);
    sql.len = 0;
    if (rc == VK_OK &&
        (rc = vk_buf_printf(&sql, "CREATE INDEX IF NOT EXISTS %s ON %s (seq)", ix, bare)) == VK_OK)
        rc = db->drv->exec(db, sql.p);
    sql.len = 0;
    if (rc == VK_OK)
        rc = vk_side_next_seq(db, q, seq);
    free(q);
    free(ix);
    free(bare);
    vk_buf_free(&sql);
    if (rc) {
        vk_db_rollback(db);
        vk_fail_context("cannot record deleted records of table %s", db->table);
        return vk_errcode();
    }
    return VK_OK;
}

/* rollback of a change: the cached set may hold what was just undone */
static int abort_change(vk_db *db, int rc)
{
    vk_db_rollback(db);
    vk_tomb_reset(db);
    return rc;
}

static int end_change(vk_db *db)
{
    int rc = vk_db_commit(db);
    if (rc) {
        vk_tomb_reset(db);
        return rc;
    }
    return vk_tomb_refresh(db);
}

/* " WHERE (where)" or " WHERE (1 = 1)" */
static int add_where(vk_buf *b, const char *where_sql)
{
    return vk_buf_printf(b, " WHERE (%s)", where_sql && *where_sql ? where_sql : "1 = 1");
}

/* params followed by one more integer */
static vk_value *params_plus(const vk_value *params, int nparams, i64 extra)
{
    vk_value *p = vk_malloc(sizeof(vk_value) * (size_t)(nparams + 1));
    if (!p)
        return NULL;
    if (nparams)
        memcpy(p, params, sizeof(vk_value) * (size_t)nparams);
    p[nparams] = (vk_value){.type = VK_INT, .i = extra};
    return p;
}

/* deletes the rows whose idx carries tombstone seq, counts them */
static int delete_seq(vk_db *db, const char *q, i64 seq, i64 *count)
{
    vk_buf sql = {0};
    const char *ph = db->drv->placeholder;
    vk_value p = {.type = VK_INT, .i = seq};
    int rc = vk_buf_printf(&sql, "DELETE FROM %s WHERE ", db->qtable);
    rc |= vk_buf_ident(&sql, db->idx_name);
    rc |= vk_buf_printf(&sql, " IN (SELECT idx FROM %s WHERE seq = %s1)", q, ph);
    if (rc == VK_OK)
        rc = vk_db_run(db, sql.p, &p, 1);
    else
        rc = VK_ENOMEM;
    sql.len = 0;
    if (rc == VK_OK && (rc = vk_buf_printf(&sql, "SELECT COUNT(*) FROM %s WHERE seq = %s1", q, ph)) == VK_OK)
        rc = vk_db_query_int(db, sql.p, &p, 1, count, NULL);
    vk_buf_free(&sql);
    return rc;
}

int vk_db_delete(vk_db *db, const char *where_sql, const vk_value *params, int nparams,
                 int64_t *deleted)
{
    *deleted = 0;
    if (!db->table)
        return vk_fail(VK_ESTATE, "no table: the handle is not bound to a table");
    i64 seq;
    int rc = begin_change(db, &seq);
    if (rc)
        return rc;
    char *q = vk_side_ident(db, TOMB_SUFFIX, 1);
    vk_value *p = params_plus(params, nparams, seq);
    vk_buf sql = {0};
    rc = q && p ? vk_buf_printf(&sql, "INSERT INTO %s (idx, seq, reclaimed) SELECT ", q) : VK_ENOMEM;
    rc |= vk_buf_ident(&sql, db->idx_name);
    rc |= vk_buf_printf(&sql, ", %s%d, 0 FROM %s", db->drv->placeholder, nparams + 1, db->qtable);
    rc |= add_where(&sql, where_sql);
    /* an idx deleted before and written again by other means (execute) */
    rc |= vk_buf_adds(&sql, " ON CONFLICT (idx) DO UPDATE SET seq = excluded.seq, reclaimed = 0");
    if (rc == VK_OK)
        rc = vk_db_run(db, sql.p, p, nparams + 1);
    else
        rc = VK_ENOMEM;
    if (rc == VK_OK)
        rc = delete_seq(db, q, seq, deleted);
    free(q);
    free(p);
    vk_buf_free(&sql);
    if (rc) {
        *deleted = 0;
        vk_fail_context("cannot delete from table %s", db->table);
        return abort_change(db, vk_errcode());
    }
    return end_change(db);
}

/* ---------- updates ---------- */

/* checks the columns to set; checked[i] holds values[i] as stored */
static int check_update(vk_db *db, const int *cols, const vk_value *values, int n,
                        vk_value *checked)
{
    for (int i = 0; i < n; i++) {
        if (cols[i] < 0 || cols[i] >= db->ncols)
            return vk_fail(VK_EINVAL, "column number %d out of range", cols[i]);
        const vk_column *c = &db->cols[cols[i]];
        if (c->primary)
            return vk_fail(VK_EINVAL, "column '%s' is the idx: it cannot be updated", c->name);
        if (c->is_vector)
            return vk_fail(VK_EINVAL, "column '%s' holds the vector: pass it as the new vector",
                           c->name);
        for (int j = 0; j < i; j++)
            if (cols[j] == cols[i])
                return vk_fail(VK_EINVAL, "column '%s' is set twice", c->name);
        int rc = vk_value_check(c, &values[i], &checked[i]);
        if (rc)
            return rc;
        if (checked[i].type == VK_NULL && !c->nullable)
            return vk_fail(VK_EINVAL, "column '%s' cannot be null", c->name);
    }
    return VK_OK;
}

static int update_columns(vk_db *db, const char *where_sql, const vk_value *params, int nparams,
                          const int *cols, const vk_value *checked, int n, i64 *updated)
{
    vk_value *p = vk_malloc(sizeof(vk_value) * (size_t)(nparams + n + 1));
    if (!p)
        return VK_ENOMEM;
    if (nparams)
        memcpy(p, params, sizeof(vk_value) * (size_t)nparams);
    memcpy(p + nparams, checked, sizeof(vk_value) * (size_t)n);
    vk_buf sql = {0};
    int rc = vk_buf_printf(&sql, "UPDATE %s SET ", db->qtable);
    for (int i = 0; i < n; i++) {
        rc |= vk_buf_adds(&sql, i ? ", " : "");
        rc |= vk_buf_ident(&sql, db->cols[cols[i]].name);
        rc |= vk_buf_printf(&sql, " = %s%d", db->drv->placeholder, nparams + i + 1);
    }
    rc |= add_where(&sql, where_sql);
    rc |= vk_buf_adds(&sql, " RETURNING ");
    rc |= vk_buf_ident(&sql, db->idx_name);
    if (rc) {
        free(p);
        vk_buf_free(&sql);
        return VK_ENOMEM;
    }
    rc = vk_db_begin(db);
    vk_stmt *st = NULL;
    if (rc == VK_OK)
        rc = db->drv->query(db, sql.p, p, nparams + n, &st);
    vk_value v;
    int r = 0;
    while (rc == VK_OK && (r = db->drv->next(st, &v, 1)) == 1)
        ++*updated;
    if (rc == VK_OK && r < 0)
        rc = r;
    if (st)
        db->drv->finish(st);
    free(p);
    vk_buf_free(&sql);
    if (rc) {
        *updated = 0;
        vk_db_rollback(db);
        return vk_fail_context("cannot update table %s", db->table);
    }
    rc = vk_db_commit(db);
    if (rc)
        *updated = 0;
    return rc;
}

/* every column of the matching rows, in idx order */
static int read_rows(vk_db *db, const char *where_sql, const vk_value *params, int nparams,
                     vk_rows **out)
{
    *out = NULL;
    int *all = vk_malloc(sizeof(int) * (size_t)db->ncols);
    vk_buf order = {0};
    if (!all || vk_buf_adds(&order, "ORDER BY ") || vk_buf_ident(&order, db->idx_name)) {
        free(all);
        vk_buf_free(&order);
        return VK_ENOMEM;
    }
    for (int i = 0; i < db->ncols; i++)
        all[i] = i;
    vk_cursor *c;
    int rc = vk_db_select(db, all, db->ncols, where_sql, params, nparams, order.p, &c);
    free(all);
    vk_buf_free(&order);
    if (rc)
        return rc;
    vk_rows *rows = vk_rows_new(db->ncols), *r;
    if (!rows)
        rc = VK_ENOMEM;
    while (rc == VK_OK && (rc = vk_cursor_next(c, 65536, &r)) == VK_OK && r) {
        for (i64 i = 0; i < r->nrows && rc == VK_OK; i++)
            rc = vk_rows_append(rows, r->cells + i * r->ncols);
        vk_rows_free(r);
    }
    vk_cursor_close(c);
    if (rc) {
        vk_rows_free(rows);
        return rc;
    }
    vk_rows_seal(rows);
    *out = rows;
    return VK_OK;
}

/* the matching records, again, under new idx values with the new vector */
static int update_vector(vk_db *db, const char *where_sql, const vk_value *params, int nparams,
                         const int *cols, const vk_value *checked, int n, const float *vector,
                         i64 d, i64 *updated, i64 *first_new, i64 **replaced)
{
    vk_batch *b = vk_batch_new(db, 1);
    if (!b)
        return vk_errcode();
    i64 seq, covered = db->covered;
    int rc = begin_change(db, &seq);
    if (rc) {
        vk_batch_free(b);
        return rc;
    }
    vk_batch_clear(b);   /* the next idx, now that other writers wait */
    vk_rows *rows = NULL;
    if (b->next_idx < 0)
        rc = vk_errcode();
    if (rc == VK_OK)
        rc = read_rows(db, where_sql, params, nparams, &rows);
    /* the old idx values, in the order the new ones are given out */
    if (rc == VK_OK && replaced) {
        if (!(*replaced = vk_malloc(sizeof(i64) * (size_t)(rows->nrows + 1))))
            rc = VK_ENOMEM;
        for (i64 r = 0; rc == VK_OK && r < rows->nrows; r++)
            (*replaced)[r] = vk_rows_get(rows, r, db->idx_col)->i;
    }
    for (i64 r = 0; rc == VK_OK && r < rows->nrows; r++) {
        vk_batch_begin_row(b);
        for (int c = 0; c < db->ncols && rc == VK_OK; c++) {
            if (c == db->idx_col || c == db->vec_col)
                continue;
            const vk_value *v = vk_rows_get(rows, r, c);
            for (int j = 0; j < n; j++)
                if (cols[j] == c)
                    v = &checked[j];
            rc = vk_batch_set(b, c, v);
        }
        if (rc == VK_OK)
            rc = vk_batch_set_vector(b, vector, d);
        if (rc == VK_OK)
            rc = vk_batch_end_row(b);
        else
            vk_batch_abort_row(b);
        if (rc)
            vk_fail_context("record with idx %lld", (long long)vk_rows_get(rows, r, db->idx_col)->i);
    }
    /* the old idx values become tombstones, their rows go */
    char *q = vk_side_ident(db, TOMB_SUFFIX, 1);
    vk_buf sql = {0};
    if (rc == VK_OK && !q)
        rc = VK_ENOMEM;
    if (rc == VK_OK && rows->nrows > 0)
        rc = vk_buf_printf(&sql, "INSERT INTO %s (idx, seq, reclaimed) VALUES (%s1, %s2, 0) "
                           "ON CONFLICT (idx) DO UPDATE SET seq = excluded.seq, reclaimed = 0",
                           q, db->drv->placeholder, db->drv->placeholder);
    for (i64 r = 0; rc == VK_OK && r < rows->nrows; r++) {
        vk_value p[2] = {*vk_rows_get(rows, r, db->idx_col), {.type = VK_INT, .i = seq}};
        rc = vk_db_run(db, sql.p, p, 2);
    }
    i64 gone = 0;
    if (rc == VK_OK && rows->nrows > 0 && (rc = delete_seq(db, q, seq, &gone)) == VK_OK &&
        gone != rows->nrows)
        rc = vk_fail(VK_ESTATE, "%lld records matched but %lld were replaced", (long long)rows->nrows,
                     (long long)gone);
    if (rc == VK_OK)
        rc = vk_batch_write(db, b);
    free(q);
    vk_buf_free(&sql);
    if (rc == VK_OK) {
        *updated = rows->nrows;
        *first_new = rows->nrows ? b->first_idx : -1;
        rc = vk_db_commit(db);
        if (rc) {
            vk_tomb_reset(db);
            *updated = 0;
            *first_new = -1;
        } else {
            rc = vk_tomb_refresh(db);
        }
    } else {
        vk_fail_context("cannot update table %s", db->table);
        abort_change(db, vk_errcode());
        rc = vk_errcode();
    }
    if (rc && db->index && db->covered > covered)
        vk_batch_unwrite(db, b, rc);
    if (rc == VK_OK && db->d == 0)
        db->d = d;
    if (rc && replaced) {
        free(*replaced);
        *replaced = NULL;
    }
    vk_rows_free(rows);
    vk_batch_free(b);
    return rc;
}

int vk_db_update(vk_db *db, const char *where_sql, const vk_value *params, int nparams,
                 const int *cols, const vk_value *values, int nvalues, const float *vector,
                 int64_t d, int64_t *updated, int64_t *first_new, int64_t **replaced)
{
    *updated = 0;
    *first_new = -1;
    if (replaced)
        *replaced = NULL;
    if (!db->table)
        return vk_fail(VK_ESTATE, "no table: the handle is not bound to a table");
    if (nvalues < 0 || (nvalues == 0 && !vector))
        return vk_fail(VK_EINVAL, "update needs a column or the vector to set");
    vk_value *checked = vk_malloc(sizeof(vk_value) * (size_t)(nvalues + 1));
    if (!checked)
        return VK_ENOMEM;
    int rc = check_update(db, cols, values, nvalues, checked);
    if (rc == VK_OK && vector) {
        i64 want = vk_db_dim(db);
        if (want <= 0 && db->index)
            want = vk_index_d(db->index);
        if (want > 0 && d != want)
            rc = vk_fail(VK_EINVAL, "vector has dimension %lld, expected %lld", (long long)d,
                         (long long)want);
        else if (d <= 0)
            rc = vk_fail(VK_EINVAL, "vector is empty");
        else if (vk_first_nonfinite(vector, d) >= 0)
            rc = vk_fail(VK_EINVAL, "vector holds a NaN or infinite value at position %lld",
                         (long long)vk_first_nonfinite(vector, d) + 1);
    }
    if (rc == VK_OK)
        rc = vector ? update_vector(db, where_sql, params, nparams, cols, checked, nvalues, vector, d,
                                    updated, first_new, replaced)
                    : update_columns(db, where_sql, params, nparams, cols, checked, nvalues, updated);
    free(checked);
    return rc;
}

/* ---------- the index's accounting ---------- */

i64 vk_index_covered(vk_index *ix)
{
    struct FaissIndex_H *fi = vk_index_faiss(ix);
    int64_t mx;
    if (!vk_faiss_explicit_ids(fi) || vk_faiss_ids(fi, &mx, NULL, 0))
        return vk_index_ntotal(ix);
    return mx + 1;
}

int vk_db_index_lag(vk_db *db, int64_t *lag, int64_t *excess)
{
    *lag = *excess = 0;
    if (!db->index)
        return vk_fail(VK_ESTATE, "no FAISS index: create_index or attach one first");
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
    int rc = vk_buf_adds(&sql, "SELECT COUNT(*) FROM ");
    rc |= vk_buf_adds(&sql, db->qtable);
    rc |= vk_buf_adds(&sql, " WHERE ");
    rc |= vk_buf_ident(&sql, db->idx_name);
    rc |= vk_buf_printf(&sql, " >= %s1", db->drv->placeholder);
    vk_value p = {.type = VK_INT, .i = covered};
    rc = rc ? VK_ENOMEM : vk_db_query_int(db, sql.p, &p, 1, lag, NULL);
    vk_buf_free(&sql);
    return rc;
}

/* ---------- reclaiming ---------- */

int vk_db_rebuild_index(vk_db *db, const char *path, int64_t *removed, int64_t *reclaimed)
{
    *removed = *reclaimed = 0;
    if (!db->index)
        return vk_fail(VK_ESTATE, "no FAISS index: create_index or attach one first");
    int rc = vk_index_check_writable(db->index);
    i64 added = 0;
    /* first what other handles committed, so the saved file is current */
    if (rc == VK_OK)
        rc = vk_db_catch_up(db, 65536, NULL, NULL, 0, &added);
    if (rc == VK_OK)
        rc = vk_tomb_refresh(db);
    if (rc)
        return rc;
    struct FaissIndex_H *fi = vk_index_faiss(db->index);
    vk_idset held;
    vk_tomb_set(db, 1, &held);
    /* position-numbered indexes keep every vector: nothing to reclaim */
    if (!vk_faiss_explicit_ids(fi) || held.count == 0) {
        if (added > 0 && path && *path)
            rc = vk_db_write_index(db, path);
        return rc;
    }
    i64 n = 0, count = held.count;
    i64 *ids = vk_malloc(sizeof(i64) * (size_t)count);
    if (!ids)
        return VK_ENOMEM;
    for (i64 id = 0; id < held.nbits && n < count; id++)
        if (vk_idset_has(&held, id))
            ids[n++] = id;
    rc = vk_faiss_remove_ids(fi, ids, n, removed);
    /* only this handle's index lost them: other handles keep excluding
     * them from theirs until they read a file that lacks them */
    if (rc == VK_OK)
        rc = vk_tomb_purge(db, ids, n);
    if (rc == VK_OK && *removed > 0)
        db->dirty = 1;
    if (rc == VK_OK && (*removed > 0 || added > 0) && path && *path)
        rc = vk_db_write_index(db, path);
    if (rc) {
        free(ids);
        return rc;
    }
    /* for the record (deleted_count and rebuild's result): these tombstones
     * no longer have a vector in the newest index file; seq stays, so
     * other handles do not read them again */
    rc = vk_db_begin(db);
    char *q = vk_side_ident(db, TOMB_SUFFIX, 1);
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
