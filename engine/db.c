/* db.c: the table handle: connection, schema, reading, index maintenance.
 * Everything here is driver-neutral SQL; drivers do the rest. */
#include "vk_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VK_NAME_MAX 128

int vk_db_open(vk_db **out, const char *url, const char *const *options, int noptions)
{
    *out = NULL;
    vk_url u;
    int rc = vk_url_parse(url, &u);
    if (rc)
        return rc;
    vk_db *db = vk_calloc(1, sizeof *db);
    if (!db) {
        vk_url_free(&u);
        return VK_ENOMEM;
    }
    db->idx_col = db->vec_col = -1;
    db->drv = strcmp(u.scheme, "sqlite") == 0 ? &vk_sqlite_driver : &vk_pg_driver;
    rc = db->drv->connect(db, &u, options, noptions);
    vk_url_free(&u);
    if (rc) {
        free(db);
        return rc;
    }
    *out = db;
    return VK_OK;
}

void vk_columns_free(vk_column *cols, int n)
{
    if (!cols)
        return;
    for (int i = 0; i < n; i++)
        free((char *)cols[i].name);
    free(cols);
}

void vk_db_close(vk_db *db)
{
    if (!db)
        return;
    if (db->conn)
        db->drv->disconnect(db);
    vk_index_release(db->index);
    vk_tomb_free(db);
    free(db->index_path);
    free(db->purged);
    free(db->params);
    vk_columns_free(db->cols, db->ncols);
    free(db->schema);
    free(db->table);
    free(db->qtable);
    free(db->idx_name);
    free(db->vector_name);
    free(db);
}

const char *vk_db_driver(const vk_db *db) { return db->drv->name; }
const char *vk_db_placeholder(const vk_db *db) { return db->drv->placeholder; }
int vk_db_table_existed(const vk_db *db) { return db->existed; }
int vk_db_ncolumns(const vk_db *db) { return db->ncols; }
const vk_column *vk_db_column(const vk_db *db, int i) { return &db->cols[i]; }
const char *vk_db_idx_name(const vk_db *db) { return db->idx_name; }
const char *vk_db_vector_name(const vk_db *db) { return db->vector_name; }
const char *vk_db_table(const vk_db *db) { return db->table; }
vk_index *vk_db_index(const vk_db *db) { return db->index; }

int vk_db_column_index(const vk_db *db, const char *name)
{
    for (int i = 0; i < db->ncols; i++)
        if (strcmp(db->cols[i].name, name) == 0)
            return i;
    return -1;
}


/* ---------- transactions and small queries ---------- */

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

/* ---------- the table ---------- */

static int check_name(const char *what, const char *name)
{
    if (!name || !*name)
        return vk_fail(VK_EINVAL, "%s name is empty", what);
    if (strlen(name) > VK_NAME_MAX)
        return vk_fail(VK_EINVAL, "%s name is longer than %d bytes", what, VK_NAME_MAX);
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        if (*c < 0x20)
            return vk_fail(VK_EINVAL, "%s name contains a control character", what);
    return VK_OK;
}

static int create_table(vk_db *db, const vk_column *cols, int ncols)
{
    vk_buf sql = {0};
    int rc = vk_buf_printf(&sql, "CREATE TABLE %s (", db->qtable);
    for (int i = 0; i < ncols && !rc; i++) {
        const vk_column *c = &cols[i];
        if (i)
            rc |= vk_buf_adds(&sql, ", ");
        rc |= vk_buf_ident(&sql, c->name);
        rc |= vk_buf_printf(&sql, " %s", c->primary ? "BIGINT" : db->drv->sql_type(c->type));
        if (!c->nullable)
            rc |= vk_buf_adds(&sql, " NOT NULL");
    }
    rc |= vk_buf_adds(&sql, ", PRIMARY KEY (");
    rc |= vk_buf_ident(&sql, db->idx_name);
    rc |= vk_buf_adds(&sql, ")");
    for (int i = 0; i < ncols && !rc; i++)
        if (cols[i].unique && !cols[i].index && !cols[i].primary) {
            rc |= vk_buf_adds(&sql, ", UNIQUE (");
            rc |= vk_buf_ident(&sql, cols[i].name);
            rc |= vk_buf_adds(&sql, ")");
        }
    rc |= vk_buf_adds(&sql, ")");
    if (rc) {
        vk_buf_free(&sql);
        return VK_ENOMEM;
    }
    rc = vk_db_begin(db);
    if (rc == VK_OK)
        rc = db->drv->exec(db, sql.p);
    /* indexes named as SQLAlchemy names them: ix_<table>_<column> */
    for (int i = 0; i < ncols && rc == VK_OK; i++) {
        if (!cols[i].index || cols[i].primary)
            continue;
        sql.len = 0;
        char ixname[2 * VK_NAME_MAX + 8];
        snprintf(ixname, sizeof ixname, "ix_%s_%s", db->table, cols[i].name);
        rc = vk_buf_printf(&sql, "CREATE %sINDEX ", cols[i].unique ? "UNIQUE " : "");
        if (db->schema && strcmp(db->drv->name, "sqlite") == 0) {
            rc |= vk_buf_ident(&sql, db->schema);
            rc |= vk_buf_adds(&sql, ".");
        }
        rc |= vk_buf_ident(&sql, ixname);
        rc |= vk_buf_printf(&sql, " ON %s (", db->qtable);
        rc |= vk_buf_ident(&sql, cols[i].name);
        rc |= vk_buf_adds(&sql, ")");
        if (rc == VK_OK)
            rc = db->drv->exec(db, sql.p);
    }
    vk_buf_free(&sql);
    if (rc) {
        vk_db_rollback(db);
        return vk_fail_context("cannot create table %s", db->table);
    }
    return vk_db_commit(db);
}

static int copy_columns(vk_column **dst, const vk_column *src, int n)
{
    *dst = vk_calloc((size_t)n, sizeof(vk_column));
    if (!*dst)
        return VK_ENOMEM;
    for (int i = 0; i < n; i++) {
        (*dst)[i] = src[i];
        if (!((*dst)[i].name = vk_strdup(src[i].name))) {
            vk_columns_free(*dst, i);
            *dst = NULL;
            return VK_ENOMEM;
        }
    }
    return VK_OK;
}

int vk_db_use_table(vk_db *db, const char *schema, const char *table,
                    const char *idx_name, const char *vector_name,
                    const vk_column *cols, int ncols)
{
    if (db->table)
        return vk_fail(VK_ESTATE, "this handle already uses table %s", db->table);
    int rc;
    if ((rc = check_name("table", table)) || (schema && (rc = check_name("schema", schema))) ||
        (rc = check_name("idx column", idx_name)) || (rc = check_name("vector column", vector_name)))
        return rc;
    if (strcmp(idx_name, vector_name) == 0)
        return vk_fail(VK_EINVAL, "idx_name and vector_name are both '%s'", idx_name);
    for (int i = 0; i < ncols; i++) {
        if ((rc = check_name("column", cols[i].name)))
            return rc;
        if (!strcmp(cols[i].name, idx_name) || !strcmp(cols[i].name, vector_name))
            return vk_fail(VK_EINVAL, "column '%s' is already the idx or vector column", cols[i].name);
        for (int j = 0; j < i; j++)
            if (!strcmp(cols[i].name, cols[j].name))
                return vk_fail(VK_EINVAL, "column '%s' is declared twice", cols[i].name);
        if (cols[i].type == VK_NULL)
            return vk_fail(VK_EINVAL, "column '%s' has no type", cols[i].name);
    }
    vk_buf q = {0};
    if (schema) {
        rc |= vk_buf_ident(&q, schema);
        rc |= vk_buf_adds(&q, ".");
    }
    rc |= vk_buf_ident(&q, table);
    if (rc)
        return VK_ENOMEM;
    db->qtable = q.p;
    db->schema = vk_strdup(schema);
    db->table = vk_strdup(table);
    db->idx_name = vk_strdup(idx_name);
    db->vector_name = vk_strdup(vector_name);
    if (!db->table || !db->idx_name || !db->vector_name || (schema && !db->schema))
        return VK_ENOMEM;

    int exists = 0;
    vk_column *found = NULL;
    int nfound = 0;
    if ((rc = db->drv->describe(db, &exists, &found, &nfound)))
        goto fail;
    if (!exists) {
        vk_column *all = vk_calloc((size_t)ncols + 2, sizeof(vk_column));
        if (!all) {
            rc = VK_ENOMEM;
            goto fail;
        }
        all[0] = (vk_column){.name = idx_name, .type = VK_INT, .primary = 1, .unique = 1};
        all[1] = (vk_column){.name = vector_name, .type = VK_BLOB, .is_vector = 1};
        if (ncols > 0)   /* cols may be NULL */
            memcpy(all + 2, cols, sizeof(vk_column) * (size_t)ncols);
        rc = create_table(db, all, ncols + 2);
        if (rc == VK_OK)
            rc = copy_columns(&found, all, ncols + 2);
        free(all);
        if (rc)
            goto fail;
        nfound = ncols + 2;
    }
    db->cols = found;
    db->ncols = nfound;
    db->existed = exists;
    db->idx_col = vk_db_column_index(db, idx_name);
    db->vec_col = vk_db_column_index(db, vector_name);
    if (db->idx_col < 0 || db->vec_col < 0) {
        rc = vk_fail(VK_EINVAL, "table %s has no column '%s'", table,
                     db->idx_col < 0 ? idx_name : vector_name);
        goto fail;
    }
    if (db->cols[db->idx_col].type != VK_INT) {
        rc = vk_fail(VK_EINVAL, "column '%s' of table %s is not an integer column", idx_name, table);
        goto fail;
    }
    db->cols[db->idx_col].primary = 1;
    db->cols[db->vec_col].is_vector = 1;
    for (int i = 0; exists && i < ncols; i++)
        if (vk_db_column_index(db, cols[i].name) < 0) {
            rc = vk_fail(VK_EINVAL, "table %s already exists and has no column '%s'", table,
                         cols[i].name);
            goto fail;
        }
    return VK_OK;
fail:
    /* back to the unbound state, so the handle stays consistent */
    vk_columns_free(db->cols, db->ncols);
    db->cols = NULL;
    db->ncols = 0;
    free(db->qtable);
    free(db->schema);
    free(db->table);
    free(db->idx_name);
    free(db->vector_name);
    db->qtable = db->schema = db->table = db->idx_name = db->vector_name = NULL;
    return rc;
}

static int need_table(const vk_db *db)
{
    if (!db->table)
        return vk_fail(VK_ESTATE, "no table: the handle is not bound to a table");
    return VK_OK;
}

/* "SELECT <what> FROM <table>" plus an optional tail */
static char *simple_sql(const vk_db *db, const char *what, const char *tail)
{
    vk_buf b = {0};
    int rc = vk_buf_printf(&b, "SELECT %s FROM %s%s", what, db->qtable, tail ? tail : "");
    if (rc) {
        vk_buf_free(&b);
        return NULL;
    }
    return b.p;
}

/* an aggregate over the idx column: "MAX(%s)" etc. */
static int idx_aggregate(vk_db *db, const char *fmt, i64 *out, int *isnull)
{
    vk_buf what = {0};
    vk_buf ident = {0};
    if (vk_buf_ident(&ident, db->idx_name) || vk_buf_printf(&what, fmt, ident.p)) {
        vk_buf_free(&what);
        vk_buf_free(&ident);
        return VK_ENOMEM;
    }
    char *sql = simple_sql(db, what.p, NULL);
    vk_buf_free(&what);
    vk_buf_free(&ident);
    if (!sql)
        return VK_ENOMEM;
    int rc = vk_db_query_int(db, sql, NULL, 0, out, isnull);
    free(sql);
    return rc;
}

int64_t vk_db_count(vk_db *db)
{
    if (need_table(db))
        return -1;
    i64 n = 0;
    if (idx_aggregate(db, "COUNT(%s)", &n, NULL))
        return -1;
    return n;
}

int64_t vk_db_next_idx(vk_db *db)
{
    if (need_table(db))
        return -1;
    i64 mx = -1;
    int isnull = 1;
    if (idx_aggregate(db, "MAX(%s)", &mx, &isnull))
        return -1;
    /* a deleted idx is never given out again */
    if (vk_tomb_refresh(db))
        return -1;
    i64 dead = vk_tomb_max(db);
    if (isnull || dead > mx)
        mx = dead;
    return mx + 1;
}

int64_t vk_db_dim(vk_db *db)
{
    if (db->d > 0 || need_table(db))
        return db->table ? db->d : -1;
    vk_buf what = {0};
    if (vk_buf_ident(&what, db->idx_name) || vk_buf_adds(&what, ", ") ||
        vk_buf_ident(&what, db->vector_name)) {
        vk_buf_free(&what);
        return -1;
    }
    char *sql = simple_sql(db, what.p, " LIMIT 1");
    vk_buf_free(&what);
    if (!sql)
        return -1;
    vk_stmt *st;
    int rc = db->drv->query(db, sql, NULL, 0, &st);
    free(sql);
    if (rc)
        return -1;
    vk_value v[2];
    rc = db->drv->next(st, v, 2);
    if (rc == 1) {
        i64 d = (v[1].type == VK_BLOB || v[1].type == VK_TEXT) ? vk_decoded_dim(v[1].s, v[1].len) : -1;
        if (d <= 0) {
            db->drv->finish(st);
            if (v[0].type == VK_INT)
                vk_fail(VK_ECODEC, "corrupted vector at idx %lld of table %s: cannot tell its dimension",
                        (long long)v[0].i, db->table);
            else
                vk_fail(VK_ECODEC, "corrupted vector in table %s: cannot tell its dimension", db->table);
            return -1;
        }
        db->d = d;
    }
    db->drv->finish(st);
    return rc < 0 ? -1 : db->d;
}

/* ---------- select ---------- */

struct vk_cursor {
    vk_db *db;
    vk_stmt *st;
    int ncols;
    vk_value *row;
};

static int add_column_list(vk_buf *b, const vk_db *db, const int *cols, int ncols)
{
    int rc = VK_OK;
    for (int i = 0; i < ncols; i++) {
        if (cols[i] < 0 || cols[i] >= db->ncols)
            return vk_fail(VK_EINVAL, "column number %d out of range", cols[i]);
        if (i)
            rc |= vk_buf_adds(b, ", ");
        rc |= vk_buf_ident(b, db->cols[cols[i]].name);
    }
    return rc ? VK_ENOMEM : VK_OK;
}

int vk_db_select(vk_db *db, const int *cols, int ncols, const char *where_sql,
                 const vk_value *params, int nparams, const char *order_limit,
                 vk_cursor **out)
{
    *out = NULL;
    int rc = need_table(db);
    if (rc)
        return rc;
    if (ncols <= 0)
        return vk_fail(VK_EINVAL, "select needs at least one column");
    vk_buf sql = {0};
    rc = vk_buf_adds(&sql, "SELECT ");
    if (!rc)
        rc = add_column_list(&sql, db, cols, ncols);
    if (!rc)
        rc = vk_buf_printf(&sql, " FROM %s", db->qtable);
    if (!rc && where_sql && *where_sql)
        rc = vk_buf_printf(&sql, " WHERE %s", where_sql);
    if (!rc && order_limit && *order_limit)
        rc = vk_buf_printf(&sql, " %s", order_limit);
    vk_cursor *c = rc ? NULL : vk_calloc(1, sizeof *c);
    if (c)
        c->row = vk_calloc((size_t)ncols, sizeof(vk_value));
    if (!c || !c->row) {
        if (c)
            free(c);
        vk_buf_free(&sql);
        return rc ? rc : VK_ENOMEM;
    }
    rc = db->drv->query(db, sql.p, params, nparams, &c->st);
    vk_buf_free(&sql);
    if (rc) {
        free(c->row);
        free(c);
        return rc;
    }
    c->db = db;
    c->ncols = ncols;
    *out = c;
    return VK_OK;
}

int vk_cursor_next(vk_cursor *c, int64_t max, vk_rows **out)
{
    *out = NULL;
    if (!c->st)
        return VK_OK;
    vk_rows *r = vk_rows_new(c->ncols);
    if (!r)
        return VK_ENOMEM;
    int rc = 1;   /* 1: the statement may hold more rows, 0: it is done */
    while (r->nrows < max) {
        rc = c->db->drv->next(c->st, c->row, c->ncols);
        if (rc != 1)
            break;
        if (vk_rows_append(r, c->row)) {
            rc = VK_ENOMEM;
            break;
        }
    }
    if (rc == 0 || rc == 1) {
        if (rc == 0) {
            c->db->drv->finish(c->st);
            c->st = NULL;
        }
        rc = VK_OK;
    }
    if (rc || r->nrows == 0) {
        vk_rows_free(r);
        return rc;
    }
    vk_rows_seal(r);
    *out = r;
    return VK_OK;
}

void vk_cursor_close(vk_cursor *c)
{
    if (!c)
        return;
    if (c->st)
        c->db->drv->finish(c->st);
    free(c->row);
    free(c);
}

int vk_db_execute(vk_db *db, const char *sql, const vk_value *params, int nparams,
                  vk_rows **out)
{
    *out = NULL;
    if (!db->drv->ncols)
        return vk_fail(VK_ESTATE, "the %s driver cannot run arbitrary statements", db->drv->name);
    vk_stmt *st;
    int rc = db->drv->query(db, sql, params, nparams, &st);
    if (rc)
        return rc;
    int n = db->drv->ncols(st);
    vk_rows *r = vk_rows_new(n);
    vk_value *row = vk_calloc((size_t)n + 1, sizeof(vk_value));
    rc = (r && row) ? VK_OK : VK_ENOMEM;
    while (rc == VK_OK && (rc = db->drv->next(st, row, n)) == 1)
        rc = vk_rows_append(r, row);
    db->drv->finish(st);
    free(row);
    if (rc) {
        vk_rows_free(r);
        return rc;
    }
    vk_rows_seal(r);
    *out = r;
    return VK_OK;
}

/* ---------- fetch by idx ---------- */

static int cmp_i64(const void *a, const void *b)
{
    i64 x = *(const i64 *)a, y = *(const i64 *)b;
    return (x > y) - (x < y);
}

/* sorted unique copy of ids */
static i64 *unique_ids(const i64 *ids, i64 n, i64 *nu)
{
    i64 *u = vk_malloc(sizeof(i64) * (size_t)(n ? n : 1));
    if (!u)
        return NULL;
    memcpy(u, ids, sizeof(i64) * (size_t)n);
    qsort(u, (size_t)n, sizeof(i64), cmp_i64);
    i64 m = 0;
    for (i64 i = 0; i < n; i++)
        if (m == 0 || u[m - 1] != u[i])
            u[m++] = u[i];
    *nu = m;
    return u;
}

typedef struct {
    i64 id;
    i64 row;
} id_row;

static int cmp_id_row(const void *a, const void *b)
{
    return cmp_i64(&((const id_row *)a)->id, &((const id_row *)b)->id);
}

/* fetched rows (column 0 = idx) sorted by idx, for binary search */
static id_row *index_rows(const vk_rows *r)
{
    id_row *m = vk_malloc(sizeof(id_row) * (size_t)(r->nrows ? r->nrows : 1));
    if (!m)
        return NULL;
    for (i64 i = 0; i < r->nrows; i++) {
        m[i].id = vk_rows_get(r, i, 0)->i;
        m[i].row = i;
    }
    qsort(m, (size_t)r->nrows, sizeof(id_row), cmp_id_row);
    return m;
}

static i64 find_row(const id_row *m, i64 n, i64 id)
{
    i64 lo = 0, hi = n - 1;
    while (lo <= hi) {
        i64 mid = lo + (hi - lo) / 2;
        if (m[mid].id == id)
            return m[mid].row;
        if (m[mid].id < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* fetches unique ids through the driver; result rows: idx + cols */
static int fetch_unique(vk_db *db, const i64 *ids, i64 n, const int *cols, int ncols,
                        vk_rows **rows, id_row **map, i64 *nu_out)
{
    i64 nu = 0;
    i64 *u = unique_ids(ids, n, &nu);
    if (!u)
        return VK_ENOMEM;
    int rc = db->drv->fetch(db, u, nu, cols, ncols, rows);
    free(u);
    if (rc)
        return rc;
    if (!(*map = index_rows(*rows))) {
        vk_rows_free(*rows);
        return VK_ENOMEM;
    }
    *nu_out = (*rows)->nrows;
    return VK_OK;
}

int vk_db_fetch(vk_db *db, const int64_t *ids, int64_t n, const int *cols, int ncols,
                vk_rows **out)
{
    *out = NULL;
    int rc = need_table(db);
    if (rc)
        return rc;
    for (int i = 0; i < ncols; i++)
        if (cols[i] < 0 || cols[i] >= db->ncols)
            return vk_fail(VK_EINVAL, "column number %d out of range", cols[i]);
    vk_rows *got;
    id_row *map;
    i64 ngot;
    if ((rc = fetch_unique(db, ids, n, cols, ncols, &got, &map, &ngot)))
        return rc;
    vk_rows *r = vk_rows_new(ncols);
    vk_value *tmp = vk_calloc((size_t)ncols + 1, sizeof(vk_value));
    rc = (r && tmp) ? VK_OK : VK_ENOMEM;
    for (i64 i = 0; i < n && rc == VK_OK; i++) {
        i64 row = find_row(map, ngot, ids[i]);
        for (int c = 0; c < ncols; c++)
            tmp[c] = row < 0 ? (vk_value){.type = VK_NULL} : *vk_rows_get(got, row, c + 1);
        rc = vk_rows_append(r, tmp);
    }
    free(tmp);
    free(map);
    vk_rows_free(got);
    if (rc) {
        vk_rows_free(r);
        return rc;
    }
    vk_rows_seal(r);
    *out = r;
    return VK_OK;
}

int vk_db_fetch_vectors_found(vk_db *db, const i64 *ids, i64 n, float *out, unsigned char *found)
{
    int rc = need_table(db);
    if (rc)
        return rc;
    i64 d = vk_db_dim(db);
    if (d <= 0)
        return d < 0 ? vk_errcode() : vk_fail(VK_ESTATE, "the table holds no vectors");
    vk_rows *got;
    id_row *map;
    i64 ngot;
    if ((rc = fetch_unique(db, ids, n, &db->vec_col, 1, &got, &map, &ngot)))
        return rc;
    for (i64 i = 0; i < n && rc == VK_OK; i++) {
        i64 row = find_row(map, ngot, ids[i]);
        if (row < 0 && found) {
            found[i] = 0;
            memset(out + i * d, 0, sizeof(float) * (size_t)d);
            continue;
        }
        if (row < 0) {
            rc = vk_fail(VK_ESTATE, "idx %lld is in the index but not in table %s: "
                         "the index does not belong to this table", (long long)ids[i], db->table);
            break;
        }
        if (found)
            found[i] = 1;
        const vk_value *v = vk_rows_get(got, row, 1);
        if (v->type != VK_BLOB && v->type != VK_TEXT)
            rc = vk_fail(VK_ECODEC, "corrupted vector at idx %lld: not a blob", (long long)ids[i]);
        else if ((rc = vk_decode(v->s, v->len, out + i * d, d)))
            vk_fail_context("idx %lld", (long long)ids[i]);
    }
    free(map);
    vk_rows_free(got);
    return rc;
}

int vk_db_fetch_vectors(vk_db *db, const int64_t *ids, int64_t n, float *out)
{
    return vk_db_fetch_vectors_found(db, ids, n, out, NULL);
}

/* ---------- consecutive idx ---------- */

int vk_db_find_gap(vk_db *db, int64_t *gap)
{
    *gap = -1;
    i64 count = vk_db_count(db), next = count < 0 ? -1 : vk_db_next_idx(db);
    if (count < 0 || next < 0)
        return vk_errcode();
    /* deleted idx values are accounted for, not gaps */
    vk_idset dead;
    vk_tomb_set(db, 0, &dead);
    if (count == 0 || count + dead.count == next) {
        i64 mn = 0;
        int isnull = 1;
        int rc = count ? idx_aggregate(db, "MIN(%s)", &mn, &isnull) : VK_OK;
        if (rc)
            return rc;
        if (count && mn < 0)
            *gap = 0;   /* negative idx values */
        else if (count && mn > 0 && !vk_idset_has(&dead, 0))
            *gap = 0;
        return VK_OK;
    }
    /* walk the idx values in order to name the first hole */
    int col = db->idx_col;
    vk_buf order = {0};
    if (vk_buf_adds(&order, "ORDER BY ") || vk_buf_ident(&order, db->idx_name))
        return VK_ENOMEM;
    vk_cursor *c;
    int rc = vk_db_select(db, &col, 1, NULL, NULL, 0, order.p, &c);
    vk_buf_free(&order);
    if (rc)
        return rc;
    i64 expect = 0;
    vk_rows *r;
    while (*gap < 0 && (rc = vk_cursor_next(c, 65536, &r)) == VK_OK && r) {
        for (i64 i = 0; i < r->nrows; i++, expect++) {
            i64 v = vk_rows_get(r, i, 0)->i;
            while (expect < v && vk_idset_has(&dead, expect))
                expect++;
            if (v != expect) {
                *gap = expect;
                break;
            }
        }
        vk_rows_free(r);
    }
    vk_cursor_close(c);
    return rc;
}

/* ---------- sampling, training, syncing ---------- */

static u64 splitmix(u64 *s)
{
    u64 z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* all idx values in order */
static int all_ids(vk_db *db, i64 **out, i64 *n)
{
    int col = db->idx_col;
    vk_buf order = {0};
    if (vk_buf_adds(&order, "ORDER BY ") || vk_buf_ident(&order, db->idx_name))
        return VK_ENOMEM;
    vk_cursor *c;
    int rc = vk_db_select(db, &col, 1, NULL, NULL, 0, order.p, &c);
    vk_buf_free(&order);
    if (rc)
        return rc;
    i64 cap = 1024, len = 0;
    i64 *ids = vk_malloc(sizeof(i64) * (size_t)cap);
    vk_rows *r = NULL;
    while (ids && (rc = vk_cursor_next(c, 65536, &r)) == VK_OK && r) {
        if (len + r->nrows > cap) {
            while (len + r->nrows > cap)
                cap *= 2;
            i64 *p = vk_realloc(ids, sizeof(i64) * (size_t)cap);
            if (!p) {
                free(ids);
                ids = NULL;
                vk_rows_free(r);
                break;
            }
            ids = p;
        }
        for (i64 i = 0; i < r->nrows; i++)
            ids[len++] = vk_rows_get(r, i, 0)->i;
        vk_rows_free(r);
    }
    vk_cursor_close(c);
    if (!ids)
        return VK_ENOMEM;
    if (rc) {
        free(ids);
        return rc;
    }
    *out = ids;
    *n = len;
    return VK_OK;
}

int vk_db_sample_vectors(vk_db *db, int64_t n, uint64_t seed, float **out, int64_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    i64 d = vk_db_dim(db);
    if (d < 0)
        return vk_errcode();
    if (d == 0)
        return vk_fail(VK_ESTATE, "table %s holds no records to sample", db->table);
    i64 *ids, count;
    int rc = all_ids(db, &ids, &count);
    if (rc)
        return rc;
    if (n > 0 && n < count) {
        /* partial Fisher-Yates: the first n entries become the sample */
        u64 s = seed;
        for (i64 i = 0; i < n; i++) {
            i64 j = i + (i64)(splitmix(&s) % (u64)(count - i));
            i64 t = ids[i];
            ids[i] = ids[j];
            ids[j] = t;
        }
        qsort(ids, (size_t)n, sizeof(i64), cmp_i64);
        count = n;
    }
    float *x = vk_malloc(sizeof(float) * (size_t)(count * d));
    if (!x) {
        free(ids);
        return VK_ENOMEM;
    }
    /* fetch in slices to bound the driver's working set */
    for (i64 off = 0; off < count && rc == VK_OK; off += 65536) {
        i64 m = count - off < 65536 ? count - off : 65536;
        rc = vk_db_fetch_vectors(db, ids + off, m, x + off * d);
    }
    free(ids);
    if (rc) {
        free(x);
        return rc;
    }
    *out = x;
    *n_out = count;
    return VK_OK;
}

static int need_index(const vk_db *db)
{
    if (!db->index)
        return vk_fail(VK_ESTATE, "no FAISS index: create_index or attach one first");
    return VK_OK;
}

int vk_db_train_index(vk_db *db, int64_t sample_size, vk_progress_fn fn, void *ud)
{
    int rc = need_index(db);
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

int vk_db_sync_index(vk_db *db, int64_t batch_size, const char *path,
                     vk_progress_fn fn, void *ud, int64_t *added)
{
    *added = 0;
    int rc = need_index(db);
    if (rc)
        return rc;
    if (batch_size <= 0)
        return vk_fail(VK_EINVAL, "batch_size must be positive, got %lld", (long long)batch_size);
    i64 gap;
    if ((rc = vk_db_find_gap(db, &gap)))
        return rc;
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
    if (lag > 0 && (rc = vk_index_check_writable(db->index)))
        return rc;
    if (lag > 0 && !vk_index_is_trained(db->index))
        return vk_fail(VK_ESTATE, "the index is not trained: call train_index first");
    if ((rc = vk_db_catch_up(db, batch_size, fn, ud, 0, added)))
        return rc;
    /* a mapped index is read-only: its file stays as it is */
    if (path && *path && !vk_index_is_mapped(db->index))
        rc = vk_db_write_index(db, path);
    return rc;
}
