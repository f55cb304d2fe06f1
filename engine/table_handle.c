/* table_handle.c: the handle: connecting, binding to a table (reading or
 * creating its schema), its columns, dimension, count and next idx. */
#include "vk_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VK_NAME_MAX 128

/* characters of a UTF-8 string */
static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

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
    db->drv = vk_driver_for(u.scheme);
    rc = db->drv ? db->drv->connect(db, &u, options, noptions)
                 : vk_fail(VK_EINVAL, "no driver for database URL scheme '%s'", u.scheme);
    vk_url_free(&u);
    if (rc) {
        free(db);
        return rc;
    }
    *out = db;
    return VK_OK;
}

void vk_db_close(vk_db *db)
{
    if (!db)
        return;
    if (db->conn)
        db->drv->disconnect(db);
    vk_index_release(db->index);
    vk_tomb_free(db);
    if (db->scache_free)
        db->scache_free(db->scache);
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

char vk_db_quote(const vk_db *db) { return db->drv->quote; }

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

/* the longest suffix of a side table's name (account_trust.c) */
#define VK_SIDE_SUFFIX_MAX ((int)sizeof "__vekterdb_index_files" - 1)

/* names the database cannot hold (MySQL: 64 characters); a table's side
 * tables add up to `side` characters to its name */
static int check_length(const vk_db *db, const char *what, const char *name, int side)
{
    int max = db->drv->max_name;
    if (!max || !name || (int)utf8_len(name) + side <= max)
        return VK_OK;
    if (side)
        return vk_fail(VK_EINVAL, "table name '%s' is too long for %s: its names hold %d characters and "
                       "the side tables VekterDB keeps add up to %d (__vekterdb_index_files), so a table "
                       "name may have %d", name, db->drv->name, max, side, max - side);
    return vk_fail(VK_EINVAL, "%s name '%s' is too long for %s: its names hold %d characters", what, name,
                   db->drv->name, max);
}

/* " <DDL type>" of a column: the driver's, VARCHAR(n) for a length */
static int add_sql_type(const vk_db *db, vk_buf *sql, const vk_column *c)
{
    if (c->primary)
        return vk_buf_adds(sql, " BIGINT");
    if (c->kind != VK_KIND_PLAIN) {
        const char *t = db->drv->kind_sql_type ? db->drv->kind_sql_type(c->kind) : NULL;
        if (!t)
            return vk_fail(VK_EINVAL, "column '%s': %s cannot create %s columns", c->name, db->drv->name,
                           vk_column_type_name(c));
        return vk_buf_printf(sql, " %s", t);
    }
    if (c->type == VK_TEXT && c->length > 0)
        return vk_buf_printf(sql, " VARCHAR(%d)", c->length);
    return vk_buf_printf(sql, " %s", db->drv->sql_type(c->type));
}

static int create_table(vk_db *db, const vk_column *cols, int ncols)
{
    vk_buf sql = {0};
    int rc = vk_buf_printf(&sql, "CREATE TABLE %s (", db->qtable);
    for (int i = 0; i < ncols && !rc; i++) {
        const vk_column *c = &cols[i];
        if (i)
            rc |= vk_buf_adds(&sql, ", ");
        rc |= vk_db_ident(db, &sql, c->name);
        int trc = add_sql_type(db, &sql, c);
        if (trc) {
            vk_buf_free(&sql);
            return trc;
        }
        if (!c->nullable)
            rc |= vk_buf_adds(&sql, " NOT NULL");
    }
    rc |= vk_buf_adds(&sql, ", PRIMARY KEY (");
    rc |= vk_db_ident(db, &sql, db->idx_name);
    rc |= vk_buf_adds(&sql, ")");
    for (int i = 0; i < ncols && !rc; i++)
        if (cols[i].unique && !cols[i].index && !cols[i].primary) {
            rc |= vk_buf_adds(&sql, ", UNIQUE (");
            rc |= vk_db_ident(db, &sql, cols[i].name);
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
        if (db->schema && db->drv->index_name_qualified) {
            rc |= vk_db_ident(db, &sql, db->schema);
            rc |= vk_buf_adds(&sql, ".");
        }
        rc |= vk_db_ident(db, &sql, ixname);
        rc |= vk_buf_printf(&sql, " ON %s (", db->qtable);
        rc |= vk_db_ident(db, &sql, cols[i].name);
        if (db->drv->key_prefix && !cols[i].unique && (cols[i].type == VK_TEXT || cols[i].type == VK_BLOB))
            rc |= vk_buf_adds(&sql, db->drv->key_prefix);
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

int vk_db_table_exists(vk_db *db, const char *schema, const char *table, int *exists)
{
    *exists = 0;
    if (!table || !*table)
        return vk_fail(VK_EINVAL, "the table name is empty");
    int rc = db->drv->table_exists(db, schema, table, exists);
    return rc ? vk_fail_context("cannot ask the catalog whether table %s exists", table) : VK_OK;
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
    if ((rc = check_length(db, "table", table, VK_SIDE_SUFFIX_MAX)) ||
        (schema && (rc = check_length(db, "schema", schema, 0))) ||
        (rc = check_length(db, "idx column", idx_name, 0)) ||
        (rc = check_length(db, "vector column", vector_name, 0)))
        return rc;
    for (int i = 0; i < ncols; i++)
        if ((rc = check_length(db, "column", cols[i].name, 0)))
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
        if ((cols[i].kind != VK_KIND_PLAIN || cols[i].length > 0) && cols[i].type != VK_TEXT)
            return vk_fail(VK_EINVAL, "column '%s' is %s but its values are not text", cols[i].name,
                           vk_column_type_name(&cols[i]));
    }
    vk_buf q = {0};
    if (schema) {
        rc |= vk_db_ident(db, &q, schema);
        rc |= vk_buf_adds(&q, ".");
    }
    rc |= vk_db_ident(db, &q, table);
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

int vk_db_need_table(const vk_db *db)
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
    if (vk_db_ident(db, &ident, db->idx_name) || vk_buf_printf(&what, fmt, ident.p)) {
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
    if (vk_db_need_table(db))
        return -1;
    i64 n = 0;
    if (idx_aggregate(db, "COUNT(%s)", &n, NULL))
        return -1;
    return n;
}

int64_t vk_db_next_idx(vk_db *db)
{
    if (vk_db_need_table(db))
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
    if (db->d > 0 || vk_db_need_table(db))
        return db->table ? db->d : -1;
    vk_buf what = {0};
    if (vk_db_ident(db, &what, db->idx_name) || vk_buf_adds(&what, ", ") ||
        vk_db_ident(db, &what, db->vector_name)) {
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
    if (vk_buf_adds(&order, "ORDER BY ") || vk_db_ident(db, &order, db->idx_name))
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
