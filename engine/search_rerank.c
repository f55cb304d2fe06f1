/* search_rerank.c: FAISS candidates, reranked by the exact metric computed from the
 * vectors stored in the table. */
#include "vk_search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* queries whose candidates are fetched and reranked together: bounds memory */
#define VK_RERANK_CHUNK 1024

typedef struct {
    i64 id;
    float metric;
    i64 rank;      /* FAISS's order, for stable sorting */
} cand;

/* best first: larger inner product, smaller distance; ties keep FAISS's order */
static int cmp_rank(const cand *x, const cand *y)
{
    return (x->rank > y->rank) - (x->rank < y->rank);
}

static int cmp_cand_ip(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->metric != y->metric)
        return x->metric > y->metric ? -1 : 1;
    return cmp_rank(x, y);
}

static int cmp_cand_l2(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->metric != y->metric)
        return x->metric < y->metric ? -1 : 1;
    return cmp_rank(x, y);
}

static int cmp_i64(const void *a, const void *b)
{
    i64 x = *(const i64 *)a, y = *(const i64 *)b;
    return (x > y) - (x < y);
}

static i64 find_id(const i64 *ids, i64 n, i64 id)
{
    const i64 *p = bsearch(&id, ids, (size_t)n, sizeof(i64), cmp_i64);
    return p ? p - ids : -1;
}

void vk_hits_free(vk_hits *h)
{
    if (!h)
        return;
    free(h->count);
    free(h->ids);
    free(h->metric);
    memset(h, 0, sizeof *h);
}

/* what a rerank found missing: candidates whose record is no longer in the
 * table (deleted while the search ran, or by a process whose deletes this
 * index copy predates) */
typedef struct missing {
    i64 *ids;
    i64 n, cap;
    int short_query;   /* a query lost one and came back with fewer than k */
} missing;

static int add_missing(missing *ms, i64 id)
{
    if (ms->n == ms->cap) {
        i64 cap = ms->cap ? ms->cap * 2 : 16;
        i64 *p = vk_realloc(ms->ids, sizeof(i64) * (size_t)cap);
        if (!p)
            return VK_ENOMEM;
        ms->ids = p;
        ms->cap = cap;
    }
    ms->ids[ms->n++] = id;
    return VK_OK;
}

/* reranks queries [q0, q1) whose candidates are in labels (nq x kk) */
static int rerank_chunk(vk_db *db, const float *q, i64 q0, i64 q1, i64 kk, i64 k, const i64 *labels,
                        const vk_search_opts *o, int sort, vk_metric metric, vk_hits *out, cand *buf,
                        missing *ms)
{
    i64 d = vk_index_d(db->index);
    i64 n = (q1 - q0) * kk, nu = 0;
    i64 *u = vk_malloc(sizeof(i64) * (size_t)(n ? n : 1));
    if (!u)
        return VK_ENOMEM;
    for (i64 i = 0; i < n; i++)
        if (labels[q0 * kk + i] >= 0)
            u[nu++] = labels[q0 * kk + i];
    qsort(u, (size_t)nu, sizeof(i64), cmp_i64);
    i64 m = 0;
    for (i64 i = 0; i < nu; i++)
        if (m == 0 || u[m - 1] != u[i])
            u[m++] = u[i];
    float *vecs = vk_malloc(sizeof(float) * (size_t)(m * d + 1));
    unsigned char *found = vk_malloc((size_t)(m + 1));
    int rc = vecs && found ? vk_db_fetch_vectors_found(db, u, m, vecs, found) : VK_ENOMEM;
    for (i64 i = 0; rc == VK_OK && i < m; i++)
        if (!found[i])
            rc = add_missing(ms, u[i]);
    for (i64 qi = q0; qi < q1 && rc == VK_OK; qi++) {
        const float *qv = q + qi * d;
        i64 nc = 0, lost = 0;
        for (i64 j = 0; j < kk; j++) {
            i64 id = labels[qi * kk + j];
            if (id < 0 || (o->exclude && id == o->exclude[qi]))
                continue;
            i64 at = find_id(u, m, id);
            if (!found[at]) {
                lost++;
                continue;
            }
            float mv = vk_metric_value(metric, qv, vecs + at * d, d);
            if (!isfinite(mv))   /* a stored NaN or infinity is never ranked */
                continue;
            if (o->has_threshold &&
                (metric == VK_METRIC_IP ? mv < o->threshold : mv > o->threshold))
                continue;
            buf[nc++] = (cand){id, mv, j};
        }
        if (sort) {
            qsort(buf, (size_t)nc, sizeof(cand), metric == VK_METRIC_IP ? cmp_cand_ip : cmp_cand_l2);
        }
        if (lost && nc < k)
            ms->short_query = 1;
        if (nc > k)
            nc = k;
        out->count[qi] = nc;
        for (i64 j = 0; j < nc; j++) {
            out->ids[qi * k + j] = buf[j].id;
            out->metric[qi * k + j] = buf[j].metric;
        }
    }
    free(vecs);
    free(found);
    free(u);
    return rc;
}

/* candidates for every query, then the exact rerank; missing records found
 * by the rerank go to ms.  tail: records a mapped index lacks, candidates
 * of every query (labels has room for kk + ntail per query) */
static int search_once(vk_db *db, const float *q, i64 nq, i64 k, i64 kk, const vk_search_opts *o,
                       vk_metric metric, const i64 *dead, i64 ndead, const i64 *tail, i64 ntail,
                       vk_hits *out, i64 *labels, cand *buf, missing *ms, vk_search_stats *st)
{
    vk_param_undo *undo = NULL;
    int rc = o->params && *o->params ? vk_index_push_params(db->index, o->params, &undo) : VK_OK;
    if (rc == VK_OK) {
        rc = vk_plan_candidates(db, q, nq, kk, o, dead, ndead, metric, labels, st);
        vk_index_pop_params(db->index, undo);
    }
    i64 width = kk + ntail;
    if (rc == VK_OK && ntail > 0) {
        for (i64 qi = nq - 1; qi >= 0; qi--) {
            memmove(labels + qi * width, labels + qi * kk, sizeof(i64) * (size_t)kk);
            memcpy(labels + qi * width + kk, tail, sizeof(i64) * (size_t)ntail);
        }
    }
    for (i64 q0 = 0; q0 < nq && rc == VK_OK; q0 += VK_RERANK_CHUNK) {
        i64 q1 = q0 + VK_RERANK_CHUNK < nq ? q0 + VK_RERANK_CHUNK : nq;
        rc = rerank_chunk(db, q, q0, q1, width, k, labels, o, o->rerank || ntail > 0, metric, out, buf, ms);
    }
    return rc;
}

/* the live records above what a mapped index covers (that match the
 * filter): it cannot take them, so every query scans them exactly */
static int mapped_tail(vk_db *db, const vk_search_opts *o, i64 **tail, i64 *ntail)
{
    *tail = NULL;
    *ntail = 0;
    if (!db->index_mmap)
        return VK_OK;
    i64 *ids, n;
    int rc = vk_db_live_ids_from(db, db->covered, &ids, &n);
    if (rc == VK_OK && n > 0 && o->filter) {
        i64 *ok = vk_malloc(sizeof(i64) * (size_t)n);
        i64 nok = 0;
        rc = ok ? vk_filter_keep(o->filter, ids, n, ok, &nok) : VK_ENOMEM;
        free(ids);
        ids = ok;
        n = nok;
    }
    if (rc) {
        free(ids);
        return rc;
    }
    *tail = ids;
    *ntail = n;
    return VK_OK;
}

/* searches again (at most this many times) when deleted records took the
 * place of neighbors */
#define VK_SEARCH_RETRIES 2

int vk_db_search(vk_db *db, const float *q, int64_t nq, int64_t k,
                 const vk_search_opts *opts, vk_hits *out)
{
    memset(out, 0, sizeof *out);
    vk_search_opts none = {.rerank = 1};
    const vk_search_opts *o = opts ? opts : &none;
    if (!db->index)
        return vk_fail(VK_ESTATE, "no FAISS index: create_index or attach one before searching");
    vk_metric metric = vk_index_metric(db->index);
    if (k <= 0)
        return vk_fail(VK_EINVAL, "k must be a positive integer, got %lld", (long long)k);
    if (o->k_extra < 0)
        return vk_fail(VK_EINVAL, "k_extra_neighbors must not be negative, got %lld",
                       (long long)o->k_extra);
    if (nq < 0)
        return vk_fail(VK_EINVAL, "negative number of queries");
    if (o->filter_plan && (o->filter_plan < VK_PLAN_EXACT || o->filter_plan > VK_PLAN_CHECK))
        return vk_fail(VK_EINVAL, "unknown filter plan %d", o->filter_plan);
    i64 d = vk_index_d(db->index);
    i64 bad = vk_first_nonfinite(q, nq * d);
    if (bad >= 0)
        return vk_fail(VK_EINVAL, "query %lld holds a NaN or infinite value", (long long)(bad / d) + 1);
    /* what other handles committed since the last call: a cheap check of
     * the table's next idx when there is nothing new */
    i64 added;
    i64 *tail = NULL, ntail = 0;
    int rc = vk_db_catch_up(db, 0, NULL, NULL, 1, &added);
    if (rc == VK_OK)
        rc = mapped_tail(db, o, &tail, &ntail);
    if (rc)
        return rc;
    i64 ntotal = vk_index_ntotal(db->index);
    /* k_extra is capped like k: never more candidates than the index holds */
    i64 extra = o->k_extra < ntotal ? o->k_extra : ntotal;
    i64 kk = k + extra + (o->exclude ? 1 : 0);
    if (kk > ntotal && ntotal > 0)
        kk = ntotal;
    vk_search_stats local = {0};
    vk_search_stats *st = o->stats ? o->stats : &local;
    memset(st, 0, sizeof *st);
    st->matches = o->filter ? vk_filter_count(o->filter) : -1;
    out->nq = nq;
    out->k = k;
    out->count = vk_calloc((size_t)(nq ? nq : 1), sizeof(i64));
    out->ids = vk_malloc(sizeof(i64) * (size_t)(nq * k + 1));
    out->metric = vk_malloc(sizeof(float) * (size_t)(nq * k + 1));
    i64 *labels = vk_malloc(sizeof(i64) * (size_t)(nq * (kk + ntail) + 1));
    cand *buf = vk_malloc(sizeof(cand) * (size_t)(kk + ntail + 1));
    missing ms = {0};
    i64 *dead = NULL, ndead = 0;
    rc = (out->count && out->ids && out->metric && labels && buf) ? VK_OK : VK_ENOMEM;
    for (int attempt = 0; rc == VK_OK && nq > 0 && (ntotal > 0 || ntail > 0); attempt++) {
        ms.n = 0;
        ms.short_query = 0;
        rc = search_once(db, q, nq, k, kk, o, metric, dead, ndead, tail, ntail, out, labels, buf, &ms,
                         st);
        if (rc || ms.n == 0)
            break;
        /* a record missing from the table must have been deleted: an idx
         * nobody ever deleted means the index is not this table's */
        st->missing += ms.n;
        if ((rc = vk_tomb_refresh(db)))
            break;
        vk_idset all;
        vk_tomb_set(db, 0, &all);
        for (i64 i = 0; i < ms.n && rc == VK_OK; i++)
            if (!vk_idset_has(&all, ms.ids[i]))
                rc = vk_fail(VK_ESTATE, "idx %lld is in the index but not in table %s: "
                             "the index does not belong to this table", (long long)ms.ids[i],
                             db->table);
        if (rc || !ms.short_query || attempt == VK_SEARCH_RETRIES)
            break;
        /* search again without them */
        i64 *p = vk_realloc(dead, sizeof(i64) * (size_t)(ndead + ms.n));
        if (!p) {
            rc = VK_ENOMEM;
            break;
        }
        dead = p;
        memcpy(dead + ndead, ms.ids, sizeof(i64) * (size_t)ms.n);
        ndead += ms.n;
        qsort(dead, (size_t)ndead, sizeof(i64), cmp_i64);
    }
    free(labels);
    free(buf);
    free(ms.ids);
    free(dead);
    free(tail);
    if (rc)
        vk_hits_free(out);
    return rc;
}
