/* write_change.c: deleting and updating records.  A delete writes the
 * deleted idx values to the tombstone table in the transaction that removes
 * the rows (table_tomb.c reads them); an update with a new vector deletes
 * each record and inserts it again under a new idx. */
#include "vk_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOMB_SEQ_SUFFIX "__vekterdb_deleted_seq"

/* opens the write transaction, creates the side table when needed (and
 * on PostgreSQL locks it: writers of tombstones take turns, so seq values
 * are committed in order) and picks this transaction's seq */
static int begin_change(vk_db *db, i64 *seq)
{
    int rc = vk_db_begin(db);
    if (rc)
        return rc;
    char *q = vk_side_ident(db, VK_TOMB_SUFFIX, 1);
    vk_buf sql = {0};
    rc = q ? VK_OK : VK_ENOMEM;
    if (rc == VK_OK &&
        (rc = vk_buf_printf(&sql, "CREATE TABLE IF NOT EXISTS %s (idx BIGINT NOT NULL, "
                            "seq BIGINT NOT NULL, reclaimed INTEGER NOT NULL DEFAULT 0, "
                            "PRIMARY KEY (idx))", q)) == VK_OK)
        rc = db->drv->exec(db, sql.p);
    if (rc == VK_OK)
        rc = vk_side_index(db, TOMB_SEQ_SUFFIX, VK_TOMB_SUFFIX, "seq");
    if (rc == VK_OK)
        rc = vk_side_next_seq(db, q, seq);
    free(q);
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
    rc |= vk_db_ident(db, &sql, db->idx_name);
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
    int rc0 = vk_db_need_table(db);
    if (rc0)
        return rc0;
    i64 seq;
    int rc = begin_change(db, &seq);
    if (rc)
        return rc;
    char *q = vk_side_ident(db, VK_TOMB_SUFFIX, 1);
    vk_value *p = params_plus(params, nparams, seq);
    vk_buf sql = {0};
    rc = q && p ? vk_buf_printf(&sql, "INSERT INTO %s (idx, seq, reclaimed) SELECT ", q) : VK_ENOMEM;
    rc |= vk_db_ident(db, &sql, db->idx_name);
    rc |= vk_buf_printf(&sql, ", %s%d, 0 FROM %s", db->drv->placeholder, nparams + 1, db->qtable);
    rc |= add_where(&sql, where_sql);
    /* an idx deleted before and written again by other means (execute) */
    rc |= vk_db_upsert(db, &sql, "idx", "seq", "reclaimed = 0");
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

/* checks the columns to set; checked[i] holds values[i] as stored */
static int check_update(vk_db *db, const int *cols, const vk_value *values, int n,
                        vk_value *checked, char (*bufs)[VK_VALUE_BUF])
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
        int rc = vk_value_store(c, &values[i], &checked[i], bufs[i]);
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
        rc |= vk_db_ident(db, &sql, db->cols[cols[i]].name);
        rc |= vk_buf_printf(&sql, " = %s%d", db->drv->placeholder, nparams + i + 1);
    }
    rc |= add_where(&sql, where_sql);
    /* without RETURNING (MySQL): the rows are counted first, inside the
     * writers' turn */
    vk_buf count = {0};
    if (db->drv->update_returning) {
        rc |= vk_buf_adds(&sql, " RETURNING ");
        rc |= vk_db_ident(db, &sql, db->idx_name);
    } else {
        rc |= vk_buf_printf(&count, "SELECT COUNT(*) FROM %s", db->qtable);
        rc |= add_where(&count, where_sql);
    }
    if (rc) {
        free(p);
        vk_buf_free(&sql);
        vk_buf_free(&count);
        return VK_ENOMEM;
    }
    rc = vk_db_begin(db);
    vk_stmt *st = NULL;
    if (rc == VK_OK && count.p)
        rc = vk_db_query_int(db, count.p, params, nparams, updated, NULL);
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
    vk_buf_free(&count);
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
    if (!all || vk_buf_adds(&order, "ORDER BY ") || vk_db_ident(db, &order, db->idx_name)) {
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
            int given = 0;
            for (int j = 0; j < n; j++)
                if (cols[j] == c) {
                    v = &checked[j];
                    given = 1;
                }
            /* the record's other values go back as they were stored */
            rc = given ? vk_batch_set(b, c, v) : vk_batch_set_stored(b, c, v);
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
    char *q = vk_side_ident(db, VK_TOMB_SUFFIX, 1);
    vk_buf sql = {0};
    if (rc == VK_OK && !q)
        rc = VK_ENOMEM;
    if (rc == VK_OK && rows->nrows > 0)
        rc = vk_buf_printf(&sql, "INSERT INTO %s (idx, seq, reclaimed) VALUES (%s1, %s2, 0)", q,
                           db->drv->placeholder, db->drv->placeholder) ||
             vk_db_upsert(db, &sql, "idx", "seq", "reclaimed = 0");
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
    int rc0 = vk_db_need_table(db);
    if (rc0)
        return rc0;
    if (nvalues < 0 || (nvalues == 0 && !vector))
        return vk_fail(VK_EINVAL, "update needs a column or the vector to set");
    vk_value *checked = vk_malloc(sizeof(vk_value) * (size_t)(nvalues + 1));
    char (*bufs)[VK_VALUE_BUF] = vk_malloc(VK_VALUE_BUF * (size_t)(nvalues + 1));
    if (!checked || !bufs) {
        free(checked);
        free(bufs);
        return VK_ENOMEM;
    }
    int rc = check_update(db, cols, values, nvalues, checked, bufs);
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
    free(bufs);
    return rc;
}
