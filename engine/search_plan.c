/* search_plan.c: filtered search.
 *
 * The database first counts a filter's matches, up to VK_FILTER_EXACT_MAX + 1;
 * a planner then chooses how candidates are proposed:
 *   EXACT     few matches (<= VK_FILTER_EXACT_MAX): their stored vectors,
 *             read by the filter's own query, are scanned exactly (recall 1)
 *   CHECK     more: FAISS is asked for 4k (at least 64) neighbors and the
 *             database says
 *             which of those candidates match; reading every matching idx of
 *             a broad filter would cost more than the search.  The share of
 *             candidates that match estimates the filter's selectivity; the
 *             next round asks for about 2k / share neighbors, unless reading
 *             the share x n matching ids costs less than checking those
 *             (VK_FILTER_CANDIDATE_COST): then the plan turns to SELECTOR
 *   SELECTOR  the matching idx values are read into a bitmap that FAISS
 *             applies as an ID selector, so it only visits them
 *   WIDEN     as SELECTOR where the index type takes no selector: FAISS is
 *             asked for more neighbors and its results are filtered here
 * Without a filter, deleted records (tombstones) are left out through the
 * same selector, inverted (or WIDEN).
 * A query that comes back short (fewer members than it should have) is
 * searched again with more effort (k, IVF nprobe, HNSW efSearch, each x4)
 * until it is full or FAISS has been asked everything it can give; a
 * filtered query still short then gets an exact scan of the matches.  So
 * whenever at least k records match, k candidates come back.
 */
#include "vk_search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WIDEN_FACTOR 4
/* queries x k asked of FAISS in one call while widening: bounds memory */
#define WIDEN_CELLS ((i64)1 << 22)
/* CHECK's first round asks FAISS for at least this many neighbors */
#define CHECK_FIRST_K 64
/* vectors fetched at once by an exact scan */
#define EXACT_SLICE 4096

static int cmp_i64(const void *a, const void *b)
{
    i64 x = *(const i64 *)a, y = *(const i64 *)b;
    return (x > y) - (x < y);
}

/* ---------- what a filter read, kept while the table is unchanged ---------- */

/* A filter used again (same where-clause, same values) on a table no one
 * changed since reuses what the last call read: its count, the matching ids
 * and their bitmap (SELECTOR), the matches' vectors (EXACT).  "Unchanged" is
 * a stamp read before the filter runs: on SQLite the connection's own
 * changes (total_changes()) and the commits of every other connection
 * (PRAGMA data_version); on PostgreSQL the current snapshot, which moves
 * whenever any transaction that wrote commits or starts writing.  Reading the
 * stamp first makes a write that lands while the filter runs change the next
 * stamp, so nothing read after a write is labelled as read before it.  No
 * stamp (another driver, a handle inside its own write transaction): no
 * reuse.  The share of FAISS's candidates that matched is kept as a hint for
 * the size of the next call's first round, whatever the stamp: it only
 * decides how many candidates are asked for, never which ones are allowed. */

typedef struct fset {
    int refs;
    i64 *ids;               /* SELECTOR: sorted; EXACT: in the order read */
    i64 nids;
    unsigned char *bits;    /* SELECTOR: bit per idx below nbits */
    i64 nbits;
    float *vecs;            /* EXACT: nids x d */
    i64 d;
} fset;

static void fset_release(fset *s)
{
    if (!s || --s->refs > 0)
        return;
    free(s->ids);
    free(s->bits);
    free(s->vecs);
    free(s);
}

#define FCACHE_SLOTS 8

typedef struct fentry {
    char *ident;            /* where-clause and values, serialized; NULL: free */
    size_t nident;
    char *stamp;            /* what n and the sets were read at, or NULL */
    i64 n;                  /* the count (up to VK_FILTER_EXACT_MAX + 1) */
    fset *lset, *xset;      /* matching ids (SELECTOR), matches' vectors (EXACT) */
    double share;           /* last estimate of the filter's share, 0: none */
    double spent;           /* candidates the database checked since stamp */
    i64 tick;
} fentry;

typedef struct fcache {
    fentry e[FCACHE_SLOTS];
    i64 tick;
} fcache;

static void fentry_forget(fentry *e)
{
    free(e->stamp);
    e->stamp = NULL;
    fset_release(e->lset);
    fset_release(e->xset);
    e->lset = e->xset = NULL;
    e->n = -1;
    e->spent = 0;
}

static void fcache_free(void *v)
{
    fcache *c = v;
    if (!c)
        return;
    for (int i = 0; i < FCACHE_SLOTS; i++) {
        fentry_forget(&c->e[i]);
        free(c->e[i].ident);
    }
    free(c);
}

static fentry *fcache_find(vk_db *db, const char *ident, size_t nident)
{
    fcache *c = db->scache;
    for (int i = 0; c && i < FCACHE_SLOTS; i++)
        if (c->e[i].ident && c->e[i].nident == nident && !memcmp(c->e[i].ident, ident, nident)) {
            c->e[i].tick = ++c->tick;
            return &c->e[i];
        }
    return NULL;
}

/* the entry of ident, made (in a free or the least recently used slot) when
 * missing; NULL when out of memory */
static fentry *fcache_entry(vk_db *db, const char *ident, size_t nident)
{
    fentry *e = fcache_find(db, ident, nident);
    if (e)
        return e;
    if (!db->scache) {
        if (!(db->scache = vk_calloc(1, sizeof(fcache))))
            return NULL;
        db->scache_free = fcache_free;
    }
    fcache *c = db->scache;
    e = &c->e[0];
    for (int i = 0; i < FCACHE_SLOTS; i++)
        if (!c->e[i].ident || c->e[i].tick < e->tick)
            e = &c->e[i];
    char *id = vk_malloc(nident + 1);
    if (!id)
        return NULL;
    memcpy(id, ident, nident);
    fentry_forget(e);
    free(e->ident);
    e->ident = id;
    e->nident = nident;
    e->share = 0;
    e->tick = ++c->tick;
    return e;
}

/* the table's data stamp (see above), or *out = NULL when there is none */
static int data_stamp(vk_db *db, char **out)
{
    *out = NULL;
    const char *sql = NULL;
    if (db->in_txn)
        return VK_OK;
    if (!strcmp(db->drv->name, "sqlite") && !db->schema)
        sql = "SELECT total_changes() || '/' || data_version FROM pragma_data_version";
    else if (!strcmp(db->drv->name, "postgresql"))
        sql = "SELECT CASE WHEN txid_current_if_assigned() IS NULL "
              "THEN txid_current_snapshot()::text END";
    if (!sql)
        return VK_OK;
    vk_stmt *st;
    int rc = db->drv->query(db, sql, NULL, 0, &st);
    if (rc)
        return rc;
    vk_value v;
    int r = db->drv->next(st, &v, 1);
    if (r == 1 && v.type == VK_TEXT && v.len > 0) {
        if ((*out = vk_malloc(v.len + 1))) {
            memcpy(*out, v.s, v.len);
            (*out)[v.len] = '\0';
        } else {
            rc = VK_ENOMEM;
        }
    }
    db->drv->finish(st);
    return rc ? rc : r < 0 ? r : VK_OK;
}

/* ---------- the filter ---------- */

struct vk_filter {
    vk_db *db;
    char *where;            /* NULL: every record */
    vk_value *params;       /* copies; text and blob bytes in bytes */
    int nparams;
    char *bytes;
    i64 n;                  /* matching records counted by the database, up to
                             * VK_FILTER_EXACT_MAX + 1 (all of them once loaded) */
    int loaded;             /* ids and bits read */
    i64 *ids;               /* sorted */
    i64 nids;
    unsigned char *bits;    /* bit per idx below nbits */
    i64 nbits;
    char *check_sql[7];     /* per size of check_sizes (7), built once */
    char *ident;            /* where-clause and values, serialized (the cache's key) */
    size_t nident;
    char *stamp;            /* the table's stamp before it ran; NULL: no reuse */
    fset *lset;             /* owns ids and bits when shared with the cache */
    fset *xset;             /* EXACT: the matches' vectors, from the cache */
    i64 checked;            /* candidates the database checked in this call */
};

/* the filter's cache entry, while it still holds what was read at the
 * filter's stamp */
static fentry *filter_entry(vk_filter *f)
{
    if (!f->stamp)
        return NULL;
    fentry *e = fcache_find(f->db, f->ident, f->nident);
    return e && e->stamp && !strcmp(e->stamp, f->stamp) ? e : NULL;
}

/* where-clause and values as one byte string */
static int filter_ident(vk_filter *f)
{
    vk_buf b = {0};
    int rc = vk_buf_adds(&b, "w:");
    if (rc == VK_OK)
        rc = vk_buf_adds(&b, f->where ? f->where : "");
    for (int i = 0; rc == VK_OK && i < f->nparams; i++) {
        const vk_value *v = &f->params[i];
        /* a NUL ends the where-clause text; lengths keep values apart */
        rc = vk_buf_add(&b, "", 1);
        if (rc == VK_OK)
            rc = vk_buf_printf(&b, "%d:", (int)v->type);
        if (rc == VK_OK && (v->type == VK_INT || v->type == VK_BOOL))
            rc = vk_buf_printf(&b, "%lld", (long long)v->i);
        else if (rc == VK_OK && v->type == VK_REAL)
            rc = vk_buf_printf(&b, "%a", v->r);
        else if (rc == VK_OK && (v->type == VK_TEXT || v->type == VK_BLOB)) {
            rc = vk_buf_printf(&b, "%zu:", v->len);
            if (rc == VK_OK && v->len)
                rc = vk_buf_add(&b, v->s, v->len);
        }
    }
    if (rc) {
        vk_buf_free(&b);
        return VK_ENOMEM;
    }
    f->ident = b.p;
    f->nident = b.len;
    return VK_OK;
}

int vk_filter_new(vk_db *db, const char *where_sql, const vk_value *params, int nparams,
                  vk_filter **out)
{
    *out = NULL;
    if (!db->table)
        return vk_db_need_table(db);
    vk_filter *f = vk_calloc(1, sizeof *f);
    if (!f)
        return VK_ENOMEM;
    f->db = db;
    size_t nbytes = 0;
    for (int i = 0; i < nparams; i++)
        if (params[i].type == VK_TEXT || params[i].type == VK_BLOB)
            nbytes += params[i].len + 1;
    int rc = VK_OK;
    if ((where_sql && !(f->where = vk_strdup(where_sql))) ||
        !(f->params = vk_malloc(sizeof(vk_value) * (size_t)(nparams + 1))) ||
        !(f->bytes = vk_malloc(nbytes + 1)))
        rc = VK_ENOMEM;
    for (int i = 0, off = 0; rc == VK_OK && i < nparams; i++) {
        f->params[i] = params[i];
        if (params[i].type == VK_TEXT || params[i].type == VK_BLOB) {
            if (params[i].len)
                memcpy(f->bytes + off, params[i].s, params[i].len);
            f->bytes[off + (int)params[i].len] = '\0';
            f->params[i].s = f->bytes + off;
            off += (int)params[i].len + 1;
        }
    }
    f->nparams = nparams;
    if (rc == VK_OK)
        rc = filter_ident(f);
    if (rc == VK_OK && (rc = data_stamp(db, &f->stamp)) != VK_OK && rc != VK_ENOMEM)
        vk_fail_context("cannot read the table's change stamp");
    fentry *e = rc == VK_OK && f->stamp ? fcache_entry(db, f->ident, f->nident) : NULL;
    if (e && e->stamp && !strcmp(e->stamp, f->stamp) && e->n >= 0) {
        /* unchanged since the last call: what it read holds */
        f->n = e->n;
        if (e->lset) {
            f->lset = e->lset;
            f->lset->refs++;
            f->ids = f->lset->ids;
            f->nids = f->n = f->lset->nids;
            f->bits = f->lset->bits;
            f->nbits = f->lset->nbits;
            f->loaded = 1;
        }
        if ((f->xset = e->xset))
            f->xset->refs++;
        *out = f;
        return VK_OK;
    }
    vk_buf sql = {0};
    if (rc == VK_OK &&
        (rc = vk_buf_printf(&sql, "SELECT COUNT(*) FROM (SELECT 1 FROM %s WHERE (%s) LIMIT %d) "
                            "AS vk_some", db->qtable, where_sql && *where_sql ? where_sql : "1 = 1",
                            VK_FILTER_EXACT_MAX + 1)) == VK_OK)
        rc = vk_db_query_int(db, sql.p, f->params, nparams, &f->n, NULL);
    vk_buf_free(&sql);
    if (rc) {
        vk_filter_free(f);
        return rc == VK_ENOMEM ? rc : vk_fail_context("cannot evaluate the filter");
    }
    if (e) {
        fentry_forget(e);
        if ((e->stamp = vk_strdup(f->stamp)))
            e->n = f->n;
    }
    *out = f;
    return VK_OK;
}

int64_t vk_filter_count(const vk_filter *f)
{
    if (!f)
        return 0;
    return f->loaded || f->n <= VK_FILTER_EXACT_MAX ? f->n : -1;
}

void vk_filter_free(vk_filter *f)
{
    if (!f)
        return;
    free(f->where);
    free(f->params);
    free(f->bytes);
    if (f->lset) {
        fset_release(f->lset);
    } else {
        free(f->ids);
        free(f->bits);
    }
    fset_release(f->xset);
    free(f->ident);
    free(f->stamp);
    for (int i = 0; i < 7; i++)
        free(f->check_sql[i]);
    free(f);
}

static int filter_check(vk_filter *f, const i64 *cand, i64 n, i64 *ok, i64 *nok);

/* reads every matching idx, sorted, and their bitmap */
static int filter_load(vk_filter *f)
{
    if (f->loaded)
        return VK_OK;
    vk_db *db = f->db;
    int col = db->idx_col;
    vk_cursor *c;
    int rc = vk_db_select(db, &col, 1, f->where, f->params, f->nparams, NULL, &c);
    if (rc)
        return vk_fail_context("cannot evaluate the filter");
    i64 cap = 0, n = 0;
    vk_rows *r;
    while ((rc = vk_cursor_next(c, 65536, &r)) == VK_OK && r) {
        if (n + r->nrows > cap) {
            i64 ncap = cap ? cap : 1024;
            while (n + r->nrows > ncap)
                ncap *= 2;
            i64 *p = vk_realloc(f->ids, sizeof(i64) * (size_t)ncap);
            if (!p) {
                vk_rows_free(r);
                rc = VK_ENOMEM;
                break;
            }
            f->ids = p;
            cap = ncap;
        }
        for (i64 i = 0; i < r->nrows; i++) {
            const vk_value *v = vk_rows_get(r, i, 0);
            if (v->type == VK_INT && v->i >= 0)   /* a negative idx is never a FAISS id */
                f->ids[n++] = v->i;
        }
        vk_rows_free(r);
    }
    vk_cursor_close(c);
    if (rc == VK_OK && n > 0) {
        qsort(f->ids, (size_t)n, sizeof(i64), cmp_i64);
        i64 m = 0;
        for (i64 i = 0; i < n; i++)
            if (m == 0 || f->ids[m - 1] != f->ids[i])
                f->ids[m++] = f->ids[i];
        n = m;
        f->nbits = f->ids[m - 1] + 1;
        free(f->bits);
        f->bits = vk_calloc((size_t)(f->nbits / 8 + 1), 1);
        if (!f->bits)
            rc = VK_ENOMEM;
        for (i64 i = 0; rc == VK_OK && i < m; i++)
            f->bits[f->ids[i] >> 3] |= (unsigned char)(1u << (f->ids[i] & 7));
    }
    if (rc)
        return rc == VK_ENOMEM ? rc : vk_fail_context("cannot evaluate the filter");
    f->nids = f->n = n;
    f->loaded = 1;
    fentry *e = filter_entry(f);
    if (e && !e->lset && (e->lset = vk_calloc(1, sizeof(fset)))) {
        /* shared from now on: the cache keeps it for the next call */
        *e->lset = (fset){.refs = 2, .ids = f->ids, .nids = f->nids, .bits = f->bits,
                          .nbits = f->nbits};
        f->lset = e->lset;
    }
    return VK_OK;
}

int vk_filter_keep(vk_filter *f, const i64 *ids, i64 n, i64 *ok, i64 *nok)
{
    return filter_check(f, ids, n, ok, nok);
}

/* IN lists come in these sizes (padded with the last id) so that the
 * drivers' statement caches see few distinct texts */
static const int check_sizes[] = {16, 32, 64, 128, 256, 512, 1024};
#define NCHECK (sizeof check_sizes / sizeof check_sizes[0])
_Static_assert(NCHECK == sizeof((vk_filter *)0)->check_sql / sizeof(char *),
               "one cached statement per IN list size");

/* the candidates (sorted, unique) the filter matches, by the database:
 * ok receives them sorted */
static int filter_check(vk_filter *f, const i64 *cand, i64 n, i64 *ok, i64 *nok)
{
    vk_db *db = f->db;
    const char *ph = db->drv->placeholder;
    *nok = 0;
    vk_value *p = vk_malloc(sizeof(vk_value) * (size_t)(f->nparams + 1024));
    if (!p)
        return VK_ENOMEM;
    if (f->nparams)
        memcpy(p, f->params, sizeof(vk_value) * (size_t)f->nparams);
    int rc = VK_OK;
    f->checked += n;
    for (i64 s = 0; rc == VK_OK && s < n;) {
        i64 m = n - s < 1024 ? n - s : 1024;
        size_t at = 0;
        while (at + 1 < NCHECK && check_sizes[at] < m)
            at++;
        int size = check_sizes[at];
        if (!f->check_sql[at]) {
            vk_buf sql = {0};
            rc = vk_buf_adds(&sql, "SELECT ");
            rc |= vk_db_ident(db, &sql, db->idx_name);
            rc |= vk_buf_printf(&sql, " FROM %s WHERE ", db->qtable);
            rc |= vk_db_ident(db, &sql, db->idx_name);
            rc |= vk_buf_adds(&sql, " IN (");
            for (int i = 0; i < size; i++)
                rc |= vk_buf_printf(&sql, "%s%s%d", i ? ", " : "", ph, f->nparams + i + 1);
            rc |= vk_buf_printf(&sql, ") AND (%s)", f->where && *f->where ? f->where : "1 = 1");
            if (rc) {
                vk_buf_free(&sql);
                rc = VK_ENOMEM;
                break;
            }
            f->check_sql[at] = sql.p;
        }
        for (int i = 0; i < size; i++)
            p[f->nparams + i] = (vk_value){.type = VK_INT, .i = cand[s + (i < m ? i : m - 1)]};
        vk_stmt *st;
        if ((rc = db->drv->query(db, f->check_sql[at], p, f->nparams + size, &st)))
            break;
        vk_value v;
        int r;
        while ((r = db->drv->next(st, &v, 1)) == 1)
            if (v.type == VK_INT)
                ok[(*nok)++] = v.i;
        db->drv->finish(st);
        if (r < 0)
            rc = r;
        s += m;
    }
    free(p);
    if (rc)
        return rc == VK_ENOMEM ? rc : vk_fail_context("cannot evaluate the filter");
    qsort(ok, (size_t)*nok, sizeof(i64), cmp_i64);
    return VK_OK;
}

/* ---------- planning ---------- */

typedef struct plan {
    vk_db *db;
    vk_index *ix;
    struct FaissIndex_H *fi;
    const float *q;
    i64 d, kk, ntotal;
    vk_metric metric;
    /* ids FAISS may return: bits == NULL allows all; with invert, bits
     * mark the excluded ones (tombstones, dead) */
    const unsigned char *bits;
    i64 nbits;
    int invert;
    unsigned char *own;     /* bits, when this call had to change them */
    vk_filter *f;           /* the filter, or NULL */
    int check;              /* CHECK: the database says which candidates match */
    i64 *okids;             /* CHECK: the matching candidates of the current chunk */
    i64 nok;
    const i64 *dead;        /* ids to leave out whatever the plan (sorted) */
    i64 ndead;
    i64 avail;              /* ids the index may hold that can be returned */
    i64 need;               /* members a query should get: min(kk, avail) */
    i64 *labels;            /* nq x kk */
    vk_search_stats *st;
    double hint;            /* CHECK: the filter's share seen by the last call, 0 */
} plan;

static int in_sorted(const i64 *ids, i64 n, i64 id)
{
    return n > 0 && bsearch(&id, ids, (size_t)n, sizeof(i64), cmp_i64) != NULL;
}

/* what the bitmap FAISS was given allows */
static int bitmap_ok(const plan *p, i64 id)
{
    if (!p->bits)
        return 1;
    int set = id < p->nbits && ((p->bits[id >> 3] >> (id & 7)) & 1);
    return set != p->invert;
}

static int allowed(const plan *p, i64 id)
{
    if (id < 0 || !bitmap_ok(p, id))
        return 0;
    return !p->check || in_sorted(p->okids, p->nok, id);
}

/* takes dead ids out of the bitmap (on a private copy) */
static int apply_dead(plan *p)
{
    if (p->ndead <= 0)
        return VK_OK;
    i64 nbits = p->nbits;
    if (!p->bits || p->invert)
        nbits = p->dead[p->ndead - 1] + 1 > nbits ? p->dead[p->ndead - 1] + 1 : nbits;
    p->own = vk_calloc((size_t)(nbits / 8 + 1), 1);
    if (!p->own)
        return VK_ENOMEM;
    if (p->bits)
        memcpy(p->own, p->bits, (size_t)((p->nbits + 7) / 8));
    else
        p->invert = 1;
    for (i64 i = 0; i < p->ndead; i++) {
        i64 id = p->dead[i];
        if (id < 0 || id >= nbits)
            continue;
        if (p->invert)
            p->own[id >> 3] |= (unsigned char)(1u << (id & 7));
        else
            p->own[id >> 3] &= (unsigned char)~(1u << (id & 7));
    }
    p->bits = p->own;
    p->nbits = nbits;
    return VK_OK;
}

/* the deleted ids as an inverted bitmap: an index that keeps explicit ids
 * lost the reclaimed ones in a rebuild, one numbered by position keeps
 * every deleted vector; *inside: how many of them the index holds */
static int use_tombstones(plan *p, i64 *inside)
{
    *inside = 0;
    int rc = vk_tomb_refresh(p->db);
    if (rc)
        return rc;
    int explicit_ids = vk_faiss_explicit_ids(p->fi);
    vk_idset t;
    vk_tomb_set(p->db, explicit_ids, &t);
    if (t.count == 0)
        return VK_OK;
    p->bits = t.bits;
    p->nbits = t.nbits;
    p->invert = 1;
    p->st->excluded = t.count;
    if (explicit_ids || vk_tomb_max(p->db) < p->ntotal) {
        *inside = t.count;
    } else {
        for (i64 id = 0; id < p->ntotal && id < t.nbits; id++)
            *inside += vk_idset_has(&t, id);
    }
    return VK_OK;
}

/* ---------- exact scan ---------- */

typedef struct scored {
    i64 id;
    float m;
} scored;

/* a is a worse neighbor than b: smaller inner product / larger distance,
 * on ties the larger idx */
static int worse(vk_metric metric, const scored *a, const scored *b)
{
    if (a->m != b->m)
        return metric == VK_METRIC_IP ? a->m < b->m : a->m > b->m;
    return a->id > b->id;
}

/* a heap of at most cap entries, the worst on top */
static void heap_push(vk_metric metric, scored *h, i64 *n, i64 cap, scored x)
{
    i64 i;
    if (*n < cap) {
        /* sift up: a worse entry than its parent moves toward the top */
        i = (*n)++;
        while (i > 0 && worse(metric, &x, &h[(i - 1) / 2])) {
            h[i] = h[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        h[i] = x;
        return;
    }
    if (!worse(metric, &h[0], &x))
        return;   /* no better than the worst kept */
    /* replace the top, sift down */
    i = 0;
    for (;;) {
        i64 l = 2 * i + 1, r = l + 1, w = -1;
        const scored *wv = &x;
        if (l < *n && worse(metric, &h[l], wv))
            w = l, wv = &h[l];
        if (r < *n && worse(metric, &h[r], wv))
            w = r;
        if (w < 0)
            break;
        h[i] = h[w];
        i = w;
    }
    h[i] = x;
}

static int cmp_best_ip(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    return worse(VK_METRIC_IP, x, y) ? 1 : worse(VK_METRIC_IP, y, x) ? -1 : 0;
}

static int cmp_best_l2(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    return worse(VK_METRIC_L2, x, y) ? 1 : worse(VK_METRIC_L2, y, x) ? -1 : 0;
}

/* the kk best of the vectors shown to it, for queries qs */
typedef struct scan {
    const plan *p;
    const i64 *qs;
    i64 nqs;
    scored *heaps;   /* nqs x kk */
    i64 *sizes;
} scan;

static int scan_init(scan *sc, const plan *p, const i64 *qs, i64 nqs)
{
    sc->p = p;
    sc->qs = qs;
    sc->nqs = nqs;
    sc->heaps = vk_malloc(sizeof(scored) * (size_t)(nqs * p->kk + 1));
    sc->sizes = vk_calloc((size_t)nqs + 1, sizeof(i64));
    return sc->heaps && sc->sizes ? VK_OK : VK_ENOMEM;
}

/* m vectors (ids[j], vecs + j*d); found may be NULL (all present) */
static void scan_add(scan *sc, const i64 *ids, const float *vecs, const unsigned char *found, i64 m)
{
    const plan *p = sc->p;
    for (i64 i = 0; i < sc->nqs; i++) {
        const float *qv = p->q + sc->qs[i] * p->d;
        for (i64 j = 0; j < m; j++) {
            if ((found && !found[j]) || ids[j] < 0 || in_sorted(p->dead, p->ndead, ids[j]))
                continue;
            float mv = vk_metric_value(p->metric, qv, vecs + j * p->d, p->d);
            if (isfinite(mv))   /* a stored NaN or infinity is never ranked */
                heap_push(p->metric, sc->heaps + i * p->kk, &sc->sizes[i], p->kk, (scored){ids[j], mv});
        }
    }
}

/* best first into the queries' label rows */
static void scan_finish(scan *sc)
{
    const plan *p = sc->p;
    for (i64 i = 0; i < sc->nqs; i++) {
        scored *h = sc->heaps + i * p->kk;
        qsort(h, (size_t)sc->sizes[i], sizeof(scored),
              p->metric == VK_METRIC_IP ? cmp_best_ip : cmp_best_l2);
        i64 *row = p->labels + sc->qs[i] * p->kk;
        for (i64 j = 0; j < p->kk; j++)
            row[j] = j < sc->sizes[i] ? h[j].id : -1;
    }
}

static void scan_free(scan *sc)
{
    free(sc->heaps);
    free(sc->sizes);
}

/* exact neighbors among the filter's matches, read by its own query */
static int exact_by_query(plan *p, const i64 *qs, i64 nqs)
{
    vk_db *db = p->db;
    scan sc;
    int rc = scan_init(&sc, p, qs, nqs);
    int cols[2] = {db->idx_col, db->vec_col};
    vk_cursor *c = NULL;
    if (rc == VK_OK && (rc = vk_db_select(db, cols, 2, p->f->where, p->f->params, p->f->nparams,
                                          NULL, &c)))
        vk_fail_context("cannot evaluate the filter");
    float *vecs = rc ? NULL : vk_malloc(sizeof(float) * (size_t)(EXACT_SLICE * p->d));
    i64 *ids = rc ? NULL : vk_malloc(sizeof(i64) * EXACT_SLICE);
    if (rc == VK_OK && (!vecs || !ids))
        rc = VK_ENOMEM;
    /* kept for the next call while the table stays unchanged: few matches */
    fset *keep = filter_entry(p->f) ? vk_calloc(1, sizeof(fset)) : NULL;
    vk_rows *r;
    while (rc == VK_OK && (rc = vk_cursor_next(c, EXACT_SLICE, &r)) == VK_OK && r) {
        for (i64 i = 0; i < r->nrows; i++)
            ids[i] = vk_rows_get(r, i, 0)->type == VK_INT ? vk_rows_get(r, i, 0)->i : -1;
        rc = vk_rows_vectors(r, 1, p->d, vecs);
        if (rc == VK_OK)
            scan_add(&sc, ids, vecs, NULL, r->nrows);
        if (rc == VK_OK && keep) {
            i64 n = keep->nids + r->nrows;
            i64 *ki = n <= 2 * VK_FILTER_EXACT_MAX ? vk_realloc(keep->ids, sizeof(i64) * (size_t)n) : NULL;
            if (ki)
                keep->ids = ki;
            float *kv = ki ? vk_realloc(keep->vecs, sizeof(float) * (size_t)(n * p->d)) : NULL;
            if (kv) {
                keep->vecs = kv;
                memcpy(keep->ids + keep->nids, ids, sizeof(i64) * (size_t)r->nrows);
                memcpy(keep->vecs + keep->nids * p->d, vecs, sizeof(float) * (size_t)(r->nrows * p->d));
                keep->nids = n;
            } else {   /* too many, or no memory: not kept */
                keep->refs = 1;
                fset_release(keep);
                keep = NULL;
            }
        }
        vk_rows_free(r);
    }
    vk_cursor_close(c);
    if (rc == VK_OK)
        scan_finish(&sc);
    fentry *e = rc == VK_OK && keep ? filter_entry(p->f) : NULL;
    if (e && !e->xset) {
        keep->refs = 1;
        keep->d = p->d;
        e->xset = keep;
    } else if (keep) {
        keep->refs = 1;
        fset_release(keep);
    }
    scan_free(&sc);
    free(vecs);
    free(ids);
    return rc;
}

/* exact neighbors among the filter's matches, from the vectors the last
 * call read (the table unchanged since) */
static int exact_cached(plan *p, const i64 *qs, i64 nqs)
{
    scan sc;
    int rc = scan_init(&sc, p, qs, nqs);
    if (rc == VK_OK) {
        scan_add(&sc, p->f->xset->ids, p->f->xset->vecs, NULL, p->f->xset->nids);
        scan_finish(&sc);
    }
    scan_free(&sc);
    return rc;
}

/* exact neighbors among the filter's matches, by their ids */
static int exact_by_ids(plan *p, const i64 *qs, i64 nqs)
{
    int rc = filter_load(p->f);
    if (rc)
        return rc;
    const i64 *all = p->f->ids;
    i64 n = p->f->nids;
    scan sc;
    rc = scan_init(&sc, p, qs, nqs);
    float *vecs = vk_malloc(sizeof(float) * (size_t)(EXACT_SLICE * p->d));
    unsigned char *found = vk_malloc(EXACT_SLICE);
    if (rc == VK_OK && (!vecs || !found))
        rc = VK_ENOMEM;
    for (i64 s = 0; rc == VK_OK && s < n; s += EXACT_SLICE) {
        i64 m = n - s < EXACT_SLICE ? n - s : EXACT_SLICE;
        /* a record deleted since the filter ran is simply not there */
        if ((rc = vk_db_fetch_vectors_found(p->db, all + s, m, vecs, found)) == VK_OK)
            scan_add(&sc, all + s, vecs, found, m);
    }
    if (rc == VK_OK)
        scan_finish(&sc);
    scan_free(&sc);
    free(vecs);
    free(found);
    return rc;
}

/* ---------- FAISS rounds ---------- */

/* One search of queries qs with k neighbors; the allowed ones (in FAISS's
 * order, at most kk) land in the queries' label rows and got[i] counts
 * them.  use_sel: FAISS applies the bitmap itself; *nosel = 1 when it
 * cannot (or did not: a result outside the bitmap).  CHECK: *ncand and
 * *nmatch count the distinct candidates and those the filter matched.
 * *exhausted: a query came back short with fewer than k results from FAISS
 * (an IVF index ran out of vectors in the lists it scanned). */
static int faiss_round(plan *p, const i64 *qs, i64 nqs, i64 k, int use_sel, i64 nprobe, i64 ef,
                       i64 *got, int *nosel, i64 *ncand, i64 *nmatch, int *exhausted)
{
    i64 d = p->d, kk = p->kk;
    i64 chunk = WIDEN_CELLS / k;
    if (chunk < 1)
        chunk = 1;
    if (chunk > nqs)
        chunk = nqs;
    float *x = vk_malloc(sizeof(float) * (size_t)(chunk * d));
    float *dist = vk_malloc(sizeof(float) * (size_t)(chunk * k));
    i64 *lab = vk_malloc(sizeof(i64) * (size_t)(chunk * k));
    i64 *cand = p->check ? vk_malloc(sizeof(i64) * (size_t)(chunk * k)) : NULL;
    p->okids = p->check ? vk_malloc(sizeof(i64) * (size_t)(chunk * k)) : NULL;
    int rc = x && dist && lab && (!p->check || (cand && p->okids)) ? VK_OK : VK_ENOMEM;
    if (k > p->st->max_k)
        p->st->max_k = k;
    for (i64 c0 = 0; rc == VK_OK && c0 < nqs; c0 += chunk) {
        i64 m = nqs - c0 < chunk ? nqs - c0 : chunk;
        for (i64 i = 0; i < m; i++)
            memcpy(x + i * d, p->q + qs[c0 + i] * d, sizeof(float) * (size_t)d);
        if (use_sel) {
            rc = vk_faiss_search(p->fi, m, x, k, p->bits, p->nbits, p->invert, nprobe, ef, dist, lab);
            if (rc == VK_FAISS_NOSEL) {
                *nosel = 1;
                rc = VK_OK;
                break;
            }
        } else if (nprobe > 0 || ef > 0) {
            rc = vk_faiss_search(p->fi, m, x, k, NULL, 0, 0, nprobe, ef, dist, lab);
            if (rc == VK_FAISS_NOSEL)
                rc = vk_index_search(p->ix, m, x, k, dist, lab);
        } else {
            rc = vk_index_search(p->ix, m, x, k, dist, lab);
        }
        if (rc == VK_OK && p->check) {
            /* the database tells which of the candidates match */
            i64 nc = 0;
            for (i64 j = 0; j < m * k; j++)
                if (lab[j] >= 0)
                    cand[nc++] = lab[j];
            qsort(cand, (size_t)nc, sizeof(i64), cmp_i64);
            i64 u = 0;
            for (i64 j = 0; j < nc; j++)
                if (u == 0 || cand[u - 1] != cand[j])
                    cand[u++] = cand[j];
            rc = filter_check(p->f, cand, u, p->okids, &p->nok);
            *ncand += u;
            *nmatch += p->nok;
        }
        for (i64 i = 0; rc == VK_OK && i < m; i++) {
            i64 *row = p->labels + qs[c0 + i] * kk, n = 0, valid = 0;
            for (i64 j = 0; j < k; j++)
                valid += lab[i * k + j] >= 0;
            for (i64 j = 0; j < k && n < kk; j++) {
                i64 id = lab[i * k + j];
                if (id < 0)
                    continue;
                if (use_sel && !bitmap_ok(p, id)) {   /* FAISS ignored the selector */
                    *nosel = 1;
                    goto done;
                }
                if (allowed(p, id))
                    row[n++] = id;
            }
            for (i64 j = n; j < kk; j++)
                row[j] = -1;
            got[c0 + i] = n;
            if (n < p->need && valid < k)
                *exhausted = 1;
        }
    }
done:
    free(x);
    free(dist);
    free(lab);
    free(cand);
    free(p->okids);
    p->okids = NULL;
    p->nok = 0;
    return rc;
}

/* k for kk allowed ids out of avail among ntotal, with a margin */
static i64 k_for(const plan *p, double avail)
{
    double want = 2.0 * (double)p->kk * (double)p->ntotal / (avail > 1 ? avail : 1);
    i64 k = want >= (double)p->ntotal ? p->ntotal : (i64)want;
    i64 least = p->kk < p->ntotal ? p->kk : p->ntotal;
    return k < least ? least : k;
}

/* Searches queries todo[0..*ntodo), then again with x4 effort those that
 * came back short, until they are full or FAISS has been asked all it can
 * give; on return todo holds the queries still short.  *nosel: use_sel was
 * asked but the index type takes no selector (nothing was searched).
 * CHECK: *narrow when the first round shows the filter so narrow that
 * reading its matches is cheaper than checking more candidates (the caller
 * turns to SELECTOR). */
static int widen(plan *p, i64 *todo, i64 *ntodo, int use_sel, int *nosel, int *narrow)
{
    int kind = vk_faiss_kind(p->fi);
    i64 nlist = 0, nprobe0 = 0;
    int ivf = vk_faiss_ivf_lists(p->fi, &nlist, &nprobe0);
    double efv = 0;
    i64 ef0 = kind == VK_FAISS_HNSW && vk_index_get_param(p->ix, "efSearch", &efv) == VK_OK ? (i64)efv : 0;
    /* FAISS filters by itself, or enough neighbors that kk should pass */
    int filtered_by_faiss = use_sel && !p->check;
    i64 k = p->kk < p->ntotal ? p->kk : p->ntotal;
    if (p->check) {
        /* enough for a broad filter, and for a first estimate of its share */
        k = 4 * p->kk > CHECK_FIRST_K ? 4 * p->kk : CHECK_FIRST_K;
        if (p->hint > 0) {
            /* the last call's estimate: one round where it holds */
            i64 h = k_for(p, p->hint * (double)p->ntotal);
            k = h > 4 * p->kk ? h : 4 * p->kk;
        }
        k = k < p->ntotal ? k : p->ntotal;
    }
    else if (!filtered_by_faiss && p->need > 0)
        k = k_for(p, (double)p->avail);
    i64 nprobe = 0, ef = kind == VK_FAISS_HNSW && k > ef0 ? k : 0;
    i64 *got = vk_malloc(sizeof(i64) * (size_t)(*ntodo + 1));
    if (!got)
        return VK_ENOMEM;
    int rc = VK_OK;
    *nosel = 0;
    for (i64 round = 0; *ntodo > 0; round++) {
        i64 ncand = 0, nmatch = 0;
        int exhausted = 0;
        rc = faiss_round(p, todo, *ntodo, k, use_sel, nprobe, ef, got, nosel, &ncand, &nmatch,
                         &exhausted);
        if (rc || *nosel)
            break;
        i64 m = 0;
        for (i64 i = 0; i < *ntodo; i++)
            if (got[i] < p->need)
                todo[m++] = todo[i];
        if (round == 0)
            p->st->widened += m;
        *ntodo = m;
        /* what the candidates tell of the filter's selectivity (smoothed:
         * a few dozen candidates are a small sample) */
        double share = p->check && ncand > 0 ? (double)(nmatch + 1) / (double)(ncand + 2) : 0;
        if (p->check && ncand > 0)
            p->st->estimated = (i64)(share * (double)p->ntotal + 0.5);
        if (m == 0)
            break;
        i64 next = k;
        if (p->check && ncand > 0) {
            next = k_for(p, share * (double)p->ntotal);
            if (round == 0 && narrow &&
                share * (double)p->ntotal < (double)VK_FILTER_CANDIDATE_COST * (double)next) {
                *narrow = 1;
                break;
            }
        }
        /* more effort: IVF scans more lists when those it scanned ran out;
         * the rest (and IVF when FAISS does not filter) ask for more
         * neighbors; HNSW explores as far as k */
        int grew = 0;
        if (ivf && exhausted) {
            i64 cur = nprobe ? nprobe : nprobe0;
            if (cur < (i64)nlist) {
                nprobe = cur * WIDEN_FACTOR < nlist ? cur * WIDEN_FACTOR : nlist;
                grew = 1;
            }
        }
        if ((!ivf || !filtered_by_faiss) && k < p->ntotal) {
            if (next < k * WIDEN_FACTOR)
                next = k * WIDEN_FACTOR;
            k = next < p->ntotal ? next : p->ntotal;
            grew = 1;
        }
        if (kind == VK_FAISS_HNSW)
            ef = k > ef0 ? k : ef0;
        if (!grew)
            break;
        if (round + 1 > p->st->rounds)
            p->st->rounds = round + 1;
    }
    free(got);
    return rc;
}

/* reads the filter's ids and makes them the bitmap FAISS is given */
static int use_filter_ids(plan *p)
{
    int rc = filter_load(p->f);
    if (rc)
        return rc;
    free(p->own);
    p->own = NULL;
    p->check = 0;
    p->bits = p->f->bits;
    p->nbits = p->f->nbits;
    p->invert = 0;
    p->avail = p->f->nids - p->ndead;
    if (p->avail < 0)
        p->avail = 0;
    p->need = p->avail < p->kk ? p->avail : p->kk;
    p->st->matches = p->f->nids;
    return apply_dead(p);
}

/* FAISS proposes, for the plan set up in p: CHECK (turning to SELECTOR for
 * a narrow filter), SELECTOR (WIDEN where there is no selector) or WIDEN;
 * filtered queries still short at the end get an exact scan */
static int search_faiss(plan *p, i64 *todo, i64 ntodo, int plan_kind)
{
    int rc = VK_OK, nosel = 0, narrow = 0;
    if (plan_kind == VK_PLAN_CHECK) {
        p->st->plan = VK_PLAN_CHECK;
        rc = widen(p, todo, &ntodo, p->bits != NULL, &nosel, &narrow);
        if (rc == VK_OK && nosel)   /* no selector for the tombstones: FAISS unfiltered */
            rc = widen(p, todo, &ntodo, 0, &nosel, &narrow);
        if (rc || !narrow)
            goto tail;
        plan_kind = VK_PLAN_SELECTOR;
        if ((rc = use_filter_ids(p)))
            return rc;
    }
    if (plan_kind == VK_PLAN_SELECTOR) {
        p->st->plan = VK_PLAN_SELECTOR;
        rc = widen(p, todo, &ntodo, p->bits != NULL, &nosel, NULL);
        if (rc || !nosel)
            goto tail;
    }
    p->st->plan = VK_PLAN_WIDEN;
    rc = widen(p, todo, &ntodo, 0, &nosel, NULL);
tail:
    if (rc == VK_OK && ntodo > 0 && p->f) {
        p->st->exact_fallback += ntodo;
        rc = exact_by_ids(p, todo, ntodo);
    }
    return rc;
}

int vk_plan_candidates(vk_db *db, const float *q, i64 nq, i64 kk, const vk_search_opts *o,
                       const i64 *dead, i64 ndead, vk_metric metric, i64 *labels,
                       vk_search_stats *st)
{
    plan p = {.db = db, .ix = db->index, .fi = vk_index_faiss(db->index), .q = q,
              .d = vk_index_d(db->index), .kk = kk, .ntotal = vk_index_ntotal(db->index),
              .metric = metric, .f = o->filter, .dead = dead, .ndead = ndead, .labels = labels,
              .st = st};
    for (i64 i = 0; i < nq * kk; i++)
        labels[i] = -1;
    i64 *todo = vk_malloc(sizeof(i64) * (size_t)(nq + 1));
    if (!todo)
        return VK_ENOMEM;
    for (i64 i = 0; i < nq; i++)
        todo[i] = i;
    int rc = VK_OK, chosen = VK_PLAN_INDEX;
    i64 inside = 0;
    if (p.f) {
        i64 known = vk_filter_count(p.f);   /* -1: more than VK_FILTER_EXACT_MAX */
        st->matches = known;
        chosen = o->filter_plan;
        fentry *e = filter_entry(p.f);
        if (!chosen || known == 0) {
            chosen = known >= 0 && known <= VK_FILTER_EXACT_MAX ? VK_PLAN_EXACT
                     : kk > VK_FILTER_EXACT_MAX                  ? VK_PLAN_SELECTOR
                                                                 : VK_PLAN_CHECK;
            /* the table unchanged: its ids already read, or checking
             * candidates already cost as much as reading them would */
            double est = e && e->share > 0 ? e->share * (double)p.ntotal : (double)p.ntotal;
            if (chosen == VK_PLAN_CHECK && e &&
                (p.f->loaded || e->spent * VK_FILTER_CANDIDATE_COST >= est))
                /* HNSW under a selector explores efSearch nodes of which
                 * only the share matching can be results: its recall falls
                 * with the share.  Asking it for 2k/share neighbors and
                 * keeping those in the bitmap keeps the recall of CHECK */
                chosen = vk_faiss_kind(p.fi) == VK_FAISS_HNSW ? VK_PLAN_WIDEN : VK_PLAN_SELECTOR;
        }
        p.hint = e ? e->share : 0;
        if (chosen == VK_PLAN_EXACT) {
            st->plan = VK_PLAN_EXACT;
            if (known != 0)
                rc = p.f->xset && p.f->xset->d == p.d ? exact_cached(&p, todo, nq)
                                                      : exact_by_query(&p, todo, nq);
        } else if (chosen == VK_PLAN_CHECK) {
            /* FAISS skips deleted ids; the database checks the rest */
            p.check = 1;
            p.need = kk;   /* more than VK_FILTER_EXACT_MAX >= kk match */
            if ((rc = use_tombstones(&p, &inside)) == VK_OK && (rc = apply_dead(&p)) == VK_OK)
                rc = search_faiss(&p, todo, nq, VK_PLAN_CHECK);
        } else if ((rc = use_filter_ids(&p)) == VK_OK) {
            rc = search_faiss(&p, todo, nq, chosen);
        }
    } else {
        rc = use_tombstones(&p, &inside);
        p.avail = p.ntotal - inside - ndead;
        if (p.avail < 0)
            p.avail = 0;
        p.need = p.avail < kk ? p.avail : kk;
        if (rc == VK_OK)
            rc = apply_dead(&p);
        if (rc == VK_OK && !p.bits) {
            st->plan = VK_PLAN_INDEX;
            i64 *got = vk_malloc(sizeof(i64) * (size_t)(nq + 1));
            i64 nc = 0, nm = 0;
            int nosel = 0, exhausted = 0;
            rc = got ? faiss_round(&p, todo, nq, kk < p.ntotal ? kk : p.ntotal, 0, 0, 0, got, &nosel,
                                   &nc, &nm, &exhausted)
                     : VK_ENOMEM;
            free(got);
        } else if (rc == VK_OK) {
            rc = search_faiss(&p, todo, nq, VK_PLAN_SELECTOR);
        }
    }
    fentry *e = rc == VK_OK && p.f ? filter_entry(p.f) : NULL;
    if (e) {
        /* what the next call with this filter starts from */
        if (st->estimated > 0 && p.ntotal > 0)
            e->share = (double)st->estimated / (double)p.ntotal;
        else if (p.f->loaded && p.ntotal > 0)
            e->share = (double)p.f->nids / (double)p.ntotal;
        e->spent += (double)p.f->checked;
        p.f->checked = 0;
    }
    free(todo);
    free(p.own);
    return rc;
}
