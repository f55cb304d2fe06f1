/* table_read.c: reading records: selects through cursors, any statement
 * (execute), rows and vectors by idx, samples, the live idx values. */
#include "vk_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        rc |= vk_db_ident(db, b, db->cols[cols[i]].name);
    }
    return rc ? VK_ENOMEM : VK_OK;
}

int vk_db_select(vk_db *db, const int *cols, int ncols, const char *where_sql,
                 const vk_value *params, int nparams, const char *order_limit,
                 vk_cursor **out)
{
    *out = NULL;
    int rc = vk_db_need_table(db);
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
    int rc = vk_db_need_table(db);
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

/* on an embedded database a scanned row costs about a quarter of a B-tree
 * lookup by idx, so one scan of the idx range, skipping the rows not asked
 * for, wins when at least a quarter of the range is asked for (a rerank's
 * candidates often are; create_index's reads always are) */
static int dense_ids(const vk_db *db, const i64 *ids, i64 n)
{
    return n >= 64 && strcmp(db->drv->name, "sqlite") == 0 && ids[n - 1] - ids[0] < 4 * n;
}

/* idx and vector of the rows with idx in [lo, hi], in idx order */
static int range_query(vk_db *db, i64 lo, i64 hi, vk_stmt **st)
{
    vk_buf sql = {0};
    int rc = vk_buf_adds(&sql, "SELECT ");
    rc |= vk_buf_ident(&sql, db->idx_name);
    rc |= vk_buf_adds(&sql, ", ");
    rc |= vk_buf_ident(&sql, db->cols[db->vec_col].name);
    rc |= vk_buf_printf(&sql, " FROM %s WHERE ", db->qtable);
    rc |= vk_buf_ident(&sql, db->idx_name);
    rc |= vk_buf_printf(&sql, " BETWEEN %s1 AND %s2 ORDER BY ", db->drv->placeholder, db->drv->placeholder);
    rc |= vk_buf_ident(&sql, db->idx_name);
    vk_value p[2] = {{.type = VK_INT, .i = lo}, {.type = VK_INT, .i = hi}};
    *st = NULL;
    if (rc == VK_OK)
        rc = db->drv->query(db, sql.p, p, 2, st);
    else
        rc = VK_ENOMEM;
    vk_buf_free(&sql);
    return rc;
}

/* what one scan of an idx range does with the ids asked for */
typedef struct range_visit {
    int (*take)(struct range_visit *v, i64 at, const vk_value *row);   /* ids[at] found: row */
    int (*skip)(struct range_visit *v, i64 at);   /* ids[at] not in the table; NULL: passed over */
} range_visit;

/* ids (sorted, unique) by one scan of their idx range, skipping the rows
 * not asked for */
static int range_scan(vk_db *db, const i64 *ids, i64 n, range_visit *v)
{
    vk_value row[2];
    vk_stmt *st = NULL;
    int rc = range_query(db, ids[0], ids[n - 1], &st);
    i64 at = 0;
    while (rc == VK_OK && (rc = db->drv->next(st, row, 2)) == 1) {
        rc = VK_OK;
        if (row[0].type != VK_INT)
            continue;
        for (; rc == VK_OK && at < n && ids[at] < row[0].i; at++)
            rc = v->skip ? v->skip(v, at) : VK_OK;
        if (rc == VK_OK && at < n && ids[at] == row[0].i)
            rc = v->take(v, at++, row);
    }
    for (; rc == VK_OK && at < n; at++)
        rc = v->skip ? v->skip(v, at) : VK_OK;
    if (st)
        db->drv->finish(st);
    return rc;
}

typedef struct rows_visit {
    range_visit v;
    vk_rows *r;
} rows_visit;

static int take_row(range_visit *v, i64 at, const vk_value *row)
{
    (void)at;
    return vk_rows_append(((rows_visit *)v)->r, row);
}

/* the rows of ids (sorted, unique): idx and vector */
static int fetch_range(vk_db *db, const i64 *ids, i64 n, vk_rows **out)
{
    rows_visit rv = {.v = {.take = take_row}, .r = vk_rows_new(2)};
    if (!rv.r)
        return VK_ENOMEM;
    int rc = range_scan(db, ids, n, &rv.v);
    if (rc) {
        vk_rows_free(rv.r);
        return rc;
    }
    vk_rows_seal(rv.r);
    *out = rv.r;
    return VK_OK;
}

typedef struct vectors_visit {
    range_visit v;
    vk_db *db;
    const i64 *ids;
    i64 d;
    float *out;
    unsigned char *found;   /* NULL: a missing id is an error */
} vectors_visit;

static int take_vector(range_visit *v, i64 at, const vk_value *row)
{
    vectors_visit *w = (vectors_visit *)v;
    if (row[1].type != VK_BLOB && row[1].type != VK_TEXT)
        return vk_fail(VK_ECODEC, "corrupted vector at idx %lld: not a blob", (long long)w->ids[at]);
    if (vk_decode(row[1].s, row[1].len, w->out + at * w->d, w->d))
        return vk_fail_context("idx %lld", (long long)w->ids[at]);
    if (w->found)
        w->found[at] = 1;
    return VK_OK;
}

static int skip_vector(range_visit *v, i64 at)
{
    vectors_visit *w = (vectors_visit *)v;
    if (!w->found)
        return vk_fail(VK_ESTATE, "idx %lld is in the index but not in table %s: "
                       "the index does not belong to this table", (long long)w->ids[at], w->db->table);
    w->found[at] = 0;
    memset(w->out + at * w->d, 0, sizeof(float) * (size_t)w->d);
    return VK_OK;
}

static int sorted_unique(const i64 *ids, i64 n)
{
    for (i64 i = 1; i < n; i++)
        if (ids[i] <= ids[i - 1])
            return 0;
    return 1;
}

int vk_db_fetch_vectors_found(vk_db *db, const i64 *ids, i64 n, float *out, unsigned char *found)
{
    int rc = vk_db_need_table(db);
    if (rc)
        return rc;
    i64 d = vk_db_dim(db);
    if (d <= 0)
        return d < 0 ? vk_errcode() : vk_fail(VK_ESTATE, "the table holds no vectors");
    /* a dense run (create_index reads every record so, twice): each vector
     * decoded straight from the scan, no copy of its bytes kept */
    if (n > 0 && dense_ids(db, ids, n) && sorted_unique(ids, n)) {
        vectors_visit w = {.v = {.take = take_vector, .skip = skip_vector}, .db = db, .ids = ids, .d = d,
                           .out = out, .found = found};
        return range_scan(db, ids, n, &w.v);
    }
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

int vk_db_fetch_stored(vk_db *db, const i64 *ids, i64 n, vk_rows **rows, i64 *row_of)
{
    *rows = NULL;
    int rc = vk_db_need_table(db);
    if (rc)
        return rc;
    rc = dense_ids(db, ids, n) ? fetch_range(db, ids, n, rows) : db->drv->fetch(db, ids, n, &db->vec_col, 1, rows);
    if (rc)
        return rc;
    vk_rows *r = *rows;
    /* an embedded driver returns the rows in the order asked: a merge;
     * otherwise (PostgreSQL's = ANY) a binary search per id */
    i64 at = 0;
    for (i64 i = 0; i < n; i++) {
        if (at < r->nrows && vk_rows_get(r, at, 0)->i == ids[i])
            row_of[i] = at++;
        else
            row_of[i] = -1;
    }
    if (at == r->nrows)
        return VK_OK;
    id_row *map = index_rows(r);
    if (!map) {
        vk_rows_free(r);
        *rows = NULL;
        return VK_ENOMEM;
    }
    for (i64 i = 0; i < n; i++)
        row_of[i] = find_row(map, r->nrows, ids[i]);
    free(map);
    return VK_OK;
}

int vk_db_fetch_vectors(vk_db *db, const int64_t *ids, int64_t n, float *out)
{
    return vk_db_fetch_vectors_found(db, ids, n, out, NULL);
}

static u64 splitmix(u64 *s)
{
    u64 z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
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
    int rc = vk_db_live_ids_from(db, INT64_MIN, &ids, &count);
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

int vk_db_live_ids_from(vk_db *db, i64 from, i64 **out, i64 *n)
{
    *out = NULL;
    *n = 0;
    int col = db->idx_col;
    vk_buf where = {0}, order = {0};
    int rc = vk_db_ident(db, &where, db->idx_name);
    rc |= vk_buf_printf(&where, " >= %s1", db->drv->placeholder);
    rc |= vk_buf_adds(&order, "ORDER BY ");
    rc |= vk_db_ident(db, &order, db->idx_name);
    vk_cursor *c = NULL;
    vk_value p = {.type = VK_INT, .i = from};
    if (rc == VK_OK)
        rc = vk_db_select(db, &col, 1, where.p, &p, 1, order.p, &c);
    else
        rc = VK_ENOMEM;
    vk_buf_free(&where);
    vk_buf_free(&order);
    i64 cap = 0, len = 0;
    i64 *ids = NULL;
    vk_rows *r = NULL;
    while (rc == VK_OK && (rc = vk_cursor_next(c, 65536, &r)) == VK_OK && r) {
        if (len + vk_rows_count(r) > cap) {
            i64 ncap = cap ? cap : 1024;
            while (len + vk_rows_count(r) > ncap)
                ncap *= 2;
            i64 *p2 = vk_realloc(ids, sizeof(i64) * (size_t)ncap);
            if (!p2) {
                vk_rows_free(r);
                rc = VK_ENOMEM;
                break;
            }
            ids = p2;
            cap = ncap;
        }
        for (i64 i = 0; i < vk_rows_count(r); i++)
            ids[len++] = vk_rows_get(r, i, 0)->i;
        vk_rows_free(r);
    }
    vk_cursor_close(c);
    if (rc) {
        free(ids);
        return rc;
    }
    *out = ids;
    *n = len;
    return VK_OK;
}
