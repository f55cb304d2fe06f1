/* store_sql.c: driver-neutral SQL the layers above build on: write
 * transactions (writers of a table take turns), one-value queries, the
 * side tables VekterDB keeps next to a table.  Dialects stay behind the
 * driver table. */
#include "vk_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vk_columns_free(vk_column *cols, int n)
{
    if (!cols)
        return;
    for (int i = 0; i < n; i++)
        free((char *)cols[i].name);
    free(cols);
}

int vk_db_ident(const vk_db *db, vk_buf *b, const char *name)
{
    return vk_buf_quoted(b, name, db->drv->quote);
}

int vk_db_upsert(const vk_db *db, vk_buf *b, const char *key, const char *copied, const char *set)
{
    int mysql = db->drv->upsert_style == 1;
    int rc = mysql ? vk_buf_adds(b, " ON DUPLICATE KEY UPDATE ")
                   : vk_buf_printf(b, " ON CONFLICT (%s) DO UPDATE SET ", key);
    for (const char *c = copied; rc == VK_OK && *c;) {
        int n = (int)strcspn(c, ",");
        rc = vk_buf_printf(b, mysql ? "%s%.*s = VALUES(%.*s)" : "%s%.*s = excluded.%.*s",
                           c == copied ? "" : ", ", n, c, n, c);
        c += n + (c[n] == ',');
    }
    if (rc == VK_OK && set)
        rc = vk_buf_printf(b, ", %s", set);
    return rc ? VK_ENOMEM : VK_OK;
}

/* every write transaction: writers of a table take turns, and whatever
 * they read inside (the next idx, the next seq) stays theirs until commit */
int vk_db_begin(vk_db *db)
{
    int rc = db->drv->exec(db, db->drv->begin_sql);
    if (rc == VK_OK)
        db->in_txn = 1;
    if (rc == VK_OK && db->table && db->drv->lock_writers && (rc = db->drv->lock_writers(db)))
        vk_db_rollback(db);
    return rc;
}

int vk_db_begin_snapshot(vk_db *db)
{
    if (!db->drv->snapshot_sql)
        return vk_fail(VK_EINVAL, "%s has no snapshot reads", db->drv->name);
    int rc = db->drv->exec(db, db->drv->snapshot_sql);
    if (rc == VK_OK)
        db->in_txn = 1;
    return rc;
}

int vk_db_commit(vk_db *db)
{
    int rc = db->drv->exec(db, "COMMIT");
    if (rc == VK_OK)
        db->in_txn = 0;
    else
        vk_db_rollback(db);
    return rc;
}

void vk_db_rollback(vk_db *db)
{
    if (!db->in_txn)
        return;
    /* keep the message of the failure that led here */
    char saved[1024];
    int code = vk_errcode();
    snprintf(saved, sizeof saved, "%s", vk_errmsg());
    db->drv->exec(db, "ROLLBACK");
    db->in_txn = 0;
    vk_fail(code, "%s", saved);
}

int vk_db_query_int(vk_db *db, const char *sql, const vk_value *params, int nparams,
                    i64 *out, int *isnull)
{
    vk_stmt *st;
    int rc = db->drv->query(db, sql, params, nparams, &st);
    if (rc)
        return rc;
    vk_value v;
    rc = db->drv->next(st, &v, 1);
    if (isnull)
        *isnull = 1;
    if (rc == 1) {
        if (v.type == VK_INT || v.type == VK_BOOL) {
            *out = v.i;
            if (isnull)
                *isnull = 0;
        } else if (v.type == VK_REAL) {
            *out = (i64)v.r;
            if (isnull)
                *isnull = 0;
        }
        rc = VK_OK;
    }
    db->drv->finish(st);
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

/* "<table><suffix>" quoted, with_schema: qualified by the table's schema */
char *vk_side_ident(const vk_db *db, const char *suffix, int with_schema)
{
    vk_buf b = {0};
    int rc = VK_OK;
    if (with_schema && db->schema) {
        rc |= vk_db_ident(db, &b, db->schema);
        rc |= vk_buf_adds(&b, ".");
    }
    char *name = vk_malloc(strlen(db->table) + strlen(suffix) + 1);
    if (!name) {
        vk_buf_free(&b);
        return NULL;
    }
    strcpy(name, db->table);
    strcat(name, suffix);
    rc |= vk_db_ident(db, &b, name);
    free(name);
    if (rc) {
        vk_buf_free(&b);
        vk_fail(VK_ENOMEM, "out of memory");
        return NULL;
    }
    return b.p;
}
int vk_side_exists(vk_db *db, const char *suffix, int *exists)
{
    *exists = 0;
    char *name = vk_malloc(strlen(db->table) + strlen(suffix) + 1);
    if (!name)
        return VK_ENOMEM;
    strcpy(name, db->table);
    strcat(name, suffix);
    int rc = db->drv->table_exists(db, db->schema, name, exists);
    free(name);
    return rc;
}

int vk_side_index(vk_db *db, const char *ix_suffix, const char *suffix, const char *cols)
{
    int q = db->drv->index_name_qualified;
    char *ix = vk_side_ident(db, ix_suffix, q);
    char *on = vk_side_ident(db, suffix, !q);
    vk_buf sql = {0};
    int rc = ix && on ? vk_buf_printf(&sql, "CREATE INDEX IF NOT EXISTS %s ON %s (%s)", ix, on, cols)
                      : VK_ENOMEM;
    if (rc == VK_OK)
        rc = db->drv->exec(db, sql.p);
    free(ix);
    free(on);
    vk_buf_free(&sql);
    return rc;
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

const vk_driver *vk_driver_for(const char *scheme)
{
    static const vk_driver *const all[] = {&vk_sqlite_driver, &vk_pg_driver, &vk_mysql_driver};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(all[i]->name, scheme) == 0)
            return all[i];
    return NULL;
}
