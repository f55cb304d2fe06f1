/* search_rerank.c: FAISS candidates, reranked by the exact metric computed from the
 * vectors stored in the table. */
#include "vk_search.h"

#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* (query, candidate) pairs reranked together (about 28 bytes each, plus the
 * rows of a few slices): bounds memory.  Large, because queries share
 * candidates: each distinct one is fetched once per chunk, and the more of
 * the table a chunk asks for, the more of it is read by range scans */
#define VK_RERANK_PAIRS ((i64)1 << 20)

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

/* A chunk's rerank: the distinct candidates, sorted (SQLite walks its
 * B-tree in order), fetched in slices on the calling thread (the connection
 * is single-threaded, and a driver error must be raised on the caller's
 * thread), while the other threads decode them and compute the exact metric
 * for every (query, candidate) pair that holds them; then each query's
 * candidates are sorted, the queries in parallel. */

/* distinct candidates fetched in one statement */
#define VK_RERANK_SLICE 2048
/* slices the calling thread fetches ahead of those decoded */
#define VK_RERANK_AHEAD 4

typedef struct {
    i64 id;
    i64 pos;   /* in the chunk's labels */
} id_pos;

/* sorts p (ids >= 0, in order of pos) by id, stable: a radix sort over the
 * bits the largest id uses, 11 at a time (a chunk holds up to a million
 * pairs: qsort's comparisons were the longest serial step of a rerank) */
static int sort_pairs(id_pos *p, i64 n)
{
    u64 max = 0;
    for (i64 i = 0; i < n; i++)
        if ((u64)p[i].id > max)
            max = (u64)p[i].id;
    id_pos *tmp = vk_malloc(sizeof(id_pos) * (size_t)(n ? n : 1));
    if (!tmp)
        return VK_ENOMEM;
    id_pos *src = p, *dst = tmp;
    for (int shift = 0; shift < 64 && (max >> shift) != 0; shift += 11) {
        i64 count[2049] = {0};
        for (i64 i = 0; i < n; i++)
            count[(((u64)src[i].id >> shift) & 2047) + 1]++;
        for (int b = 0; b < 2048; b++)
            count[b + 1] += count[b];
        for (i64 i = 0; i < n; i++)
            dst[count[((u64)src[i].id >> shift) & 2047]++] = src[i];
        id_pos *t = src;
        src = dst;
        dst = t;
    }
    if (src != p)
        memcpy(p, src, sizeof(id_pos) * (size_t)n);
    free(tmp);
    return VK_OK;
}

typedef struct {
    vk_db *db;
    const float *q;      /* the chunk's first query */
    i64 d, kk;
    vk_metric metric;
    const i64 *u;        /* distinct candidates, sorted */
    i64 m;
    const id_pos *pairs; /* sorted by id: pairs[start[i] .. start[i + 1]) hold u[i] */
    const i64 *start;
    i64 *row_of;         /* u[i]'s row in its slice's rows, -1: missing */
    unsigned char *present;
    float *mv;           /* the metric of each candidate of the chunk */
    vk_rows **rows;      /* per slice, freed once decoded */
    i64 nslices;
    missing *ms;
    /* the pipeline, under lock */
    pthread_mutex_t lock;
    pthread_cond_t more;
    i64 fetched, next;   /* slices fetched, slices claimed for decoding */
    int stop;
    int rc;              /* the first error */
    int err_code;        /* a decode error of another thread, to raise on the caller's */
    char err[512];
} rerank_job;

static int fetch_slice(rerank_job *j, i64 s)
{
    i64 lo = s * VK_RERANK_SLICE, hi = lo + VK_RERANK_SLICE < j->m ? lo + VK_RERANK_SLICE : j->m;
    int rc = vk_db_fetch_stored(j->db, j->u + lo, hi - lo, &j->rows[s], j->row_of + lo);
    for (i64 i = lo; i < hi && rc == VK_OK; i++)
        if (j->row_of[i] < 0)
            rc = add_missing(j->ms, j->u[i]);
    return rc;
}

/* decodes slice s into v (room for d) one vector at a time and computes the
 * metric of every pair that holds it */
static int decode_slice(rerank_job *j, i64 s, float *v)
{
    i64 lo = s * VK_RERANK_SLICE, hi = lo + VK_RERANK_SLICE < j->m ? lo + VK_RERANK_SLICE : j->m;
    int rc = VK_OK;
    for (i64 i = lo; i < hi && rc == VK_OK; i++) {
        j->present[i] = j->row_of[i] >= 0;
        if (!j->present[i])
            continue;
        const vk_value *b = vk_rows_get(j->rows[s], j->row_of[i], 1);
        if (b->type != VK_BLOB && b->type != VK_TEXT)
            rc = vk_fail(VK_ECODEC, "corrupted vector at idx %lld: not a blob", (long long)j->u[i]);
        else if ((rc = vk_decode(b->s, b->len, v, j->d)))
            vk_fail_context("idx %lld", (long long)j->u[i]);
        for (i64 p = j->start[i]; p < j->start[i + 1] && rc == VK_OK; p++) {
            i64 pos = j->pairs[p].pos;
            j->mv[pos] = vk_metric_value(j->metric, j->q + (pos / j->kk) * j->d, v, j->d);
        }
    }
    vk_rows_free(j->rows[s]);
    j->rows[s] = NULL;
    return rc;
}

/* one thread's share of the pipeline; the caller's thread (thread 0 of the
 * team) alone fetches */
static void rerank_worker(rerank_job *j, int fetcher, float *v)
{
    pthread_mutex_lock(&j->lock);
    for (;;) {
        if (j->stop)
            break;
        if (fetcher && j->fetched < j->nslices &&
            (j->fetched - j->next < VK_RERANK_AHEAD || j->next >= j->fetched)) {
            i64 s = j->fetched;
            pthread_mutex_unlock(&j->lock);
            int rc = fetch_slice(j, s);
            pthread_mutex_lock(&j->lock);
            if (rc) {
                if (!j->rc)
                    j->rc = rc;
                j->stop = 1;
            } else {
                j->fetched = s + 1;
            }
            pthread_cond_broadcast(&j->more);
            continue;
        }
        if (j->next < j->fetched) {
            i64 s = j->next++;
            pthread_mutex_unlock(&j->lock);
            int rc = decode_slice(j, s, v);
            pthread_mutex_lock(&j->lock);
            if (rc) {
                if (!j->rc) {
                    j->rc = rc;
                    if (!fetcher) {
                        j->err_code = vk_errcode() ? vk_errcode() : rc;
                        snprintf(j->err, sizeof j->err, "%s", vk_errmsg());
                    }
                }
                j->stop = 1;
                pthread_cond_broadcast(&j->more);
            }
            continue;
        }
        if (j->next >= j->nslices)
            break;
        if (fetcher)   /* cannot happen: fetched < nslices here */
            break;
        pthread_cond_wait(&j->more, &j->lock);
    }
    pthread_mutex_unlock(&j->lock);
}

/* threads for n items of work, at most what vekterdb.set_num_threads allows */
static int rerank_threads(i64 n)
{
    int nt = omp_get_max_threads();
    if (nt < 1 || omp_in_parallel())
        nt = 1;
    return n < nt ? (int)(n > 0 ? n : 1) : nt;
}

/* reranks queries [q0, q1) whose candidates are in labels (nq x kk) */
static int rerank_chunk(vk_db *db, const float *q, i64 q0, i64 q1, i64 kk, i64 k, const i64 *labels,
                        const vk_search_opts *o, int sort, vk_metric metric, vk_hits *out, missing *ms)
{
    i64 d = vk_index_d(db->index);
    i64 n = (q1 - q0) * kk, np = 0;
    const i64 *lab = labels + q0 * kk;
    id_pos *pairs = vk_malloc(sizeof(id_pos) * (size_t)(n ? n : 1));
    i64 *at_of = vk_malloc(sizeof(i64) * (size_t)(n ? n : 1));
    float *mv = vk_malloc(sizeof(float) * (size_t)(n ? n : 1));
    if (!pairs || !at_of || !mv) {
        free(pairs);
        free(at_of);
        free(mv);
        return VK_ENOMEM;
    }
    /* the excluded id (nearest_neighbors' own record) is never ranked: not
     * fetched either */
    for (i64 i = 0; i < n; i++)
        if (lab[i] >= 0 && !(o->exclude && lab[i] == o->exclude[q0 + i / kk]))
            pairs[np++] = (id_pos){lab[i], i};
    if (sort_pairs(pairs, np)) {
        free(pairs);
        free(at_of);
        free(mv);
        return VK_ENOMEM;
    }
    i64 m = 0;
    for (i64 p = 0; p < np; p++)
        if (p == 0 || pairs[p].id != pairs[p - 1].id)
            m++;
    i64 nslices = (m + VK_RERANK_SLICE - 1) / VK_RERANK_SLICE;
    int nt = rerank_threads(nslices);
    rerank_job j = {.db = db, .q = q + q0 * d, .d = d, .kk = kk, .metric = metric, .m = m,
                    .pairs = pairs, .mv = mv, .nslices = nslices, .ms = ms};
    i64 *u = vk_malloc(sizeof(i64) * (size_t)(m + 1));
    i64 *start = vk_malloc(sizeof(i64) * (size_t)(m + 1));
    j.row_of = vk_malloc(sizeof(i64) * (size_t)(m + 1));
    j.present = vk_malloc((size_t)(m + 1));
    j.rows = vk_calloc((size_t)(nslices + 1), sizeof(vk_rows *));
    float *vbuf = vk_malloc(sizeof(float) * (size_t)(nt * d));
    /* a few queries are sorted sooner than a team of threads wakes up */
    int ntq = q1 - q0 >= 64 ? rerank_threads(q1 - q0) : 1;
    cand *cbuf = vk_malloc(sizeof(cand) * (size_t)(ntq * kk));
    int rc = u && start && j.row_of && j.present && j.rows && vbuf && cbuf ? VK_OK : VK_ENOMEM;
    if (rc == VK_OK) {
        m = 0;
        for (i64 p = 0; p < np; p++) {
            if (p == 0 || pairs[p].id != pairs[p - 1].id) {
                start[m] = p;
                u[m++] = pairs[p].id;
            }
            at_of[pairs[p].pos] = m - 1;
        }
        start[m] = np;
        j.u = u;
        j.start = start;
    }
    if (rc == VK_OK && nt == 1) {
        for (i64 s = 0; s < nslices && rc == VK_OK; s++)
            if ((rc = fetch_slice(&j, s)) == VK_OK)
                rc = decode_slice(&j, s, vbuf);
    } else if (rc == VK_OK) {
        pthread_mutex_init(&j.lock, NULL);
        pthread_cond_init(&j.more, NULL);
#pragma omp parallel num_threads(nt)
        {
            int t = omp_get_thread_num();
            rerank_worker(&j, t == 0, vbuf + t * d);
        }
        pthread_mutex_destroy(&j.lock);
        pthread_cond_destroy(&j.more);
        rc = j.rc;
        if (j.err_code)   /* raised by another thread: the caller's thread reports it */
            vk_set_error(j.err_code, "%s", j.err);
    }
    for (i64 s = 0; j.rows && s < nslices; s++)
        vk_rows_free(j.rows[s]);
    int short_query = 0;
    if (rc == VK_OK) {
#pragma omp parallel for num_threads(ntq) schedule(static) reduction(|: short_query) if (ntq > 1)
        for (i64 qi = q0; qi < q1; qi++) {
            cand *buf = cbuf + omp_get_thread_num() * kk;
            i64 nc = 0, lost = 0;
            for (i64 jj = 0; jj < kk; jj++) {
                i64 pos = (qi - q0) * kk + jj, id = lab[pos];
                if (id < 0 || (o->exclude && id == o->exclude[qi]))
                    continue;
                if (!j.present[at_of[pos]]) {
                    lost++;
                    continue;
                }
                float v = mv[pos];
                if (!isfinite(v))   /* a stored NaN or infinity is never ranked */
                    continue;
                if (o->has_threshold &&
                    (metric == VK_METRIC_IP ? v < o->threshold : v > o->threshold))
                    continue;
                buf[nc++] = (cand){id, v, jj};
            }
            if (sort)
                qsort(buf, (size_t)nc, sizeof(cand), metric == VK_METRIC_IP ? cmp_cand_ip : cmp_cand_l2);
            if (lost && nc < k)
                short_query = 1;
            if (nc > k)
                nc = k;
            out->count[qi] = nc;
            for (i64 x = 0; x < nc; x++) {
                out->ids[qi * k + x] = buf[x].id;
                out->metric[qi * k + x] = buf[x].metric;
            }
        }
    }
    if (short_query)
        ms->short_query = 1;
    free(pairs);
    free(at_of);
    free(mv);
    free(u);
    free(start);
    free(j.row_of);
    free(j.present);
    free(j.rows);
    free(vbuf);
    free(cbuf);
    return rc;
}

/* candidates for every query, then the exact rerank; missing records found
 * by the rerank go to ms.  tail: records a mapped index lacks, candidates
 * of every query (labels has room for kk + ntail per query) */
static int search_once(vk_db *db, const float *q, i64 nq, i64 k, i64 kk, const vk_search_opts *o,
                       vk_metric metric, const i64 *dead, i64 ndead, const i64 *tail, i64 ntail,
                       vk_hits *out, i64 *labels, missing *ms, vk_search_stats *st)
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
    i64 chunk = VK_RERANK_PAIRS / (width > 0 ? width : 1);
    if (chunk < 1)
        chunk = 1;
    for (i64 q0 = 0; q0 < nq && rc == VK_OK; q0 += chunk) {
        i64 q1 = q0 + chunk < nq ? q0 + chunk : nq;
        rc = rerank_chunk(db, q, q0, q1, width, k, labels, o, o->rerank || ntail > 0, metric, out, ms);
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
    i64 *tail = NULL, ntail = 0;
    /* what other handles committed since the last call: a cheap check of
     * the table's next idx, skipped by a node that heard of no commit
     * (deleted records are read by every search all the same) */
    int rc = vk_db_refresh(db);
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
    missing ms = {0};
    i64 *dead = NULL, ndead = 0;
    rc = (out->count && out->ids && out->metric && labels) ? VK_OK : VK_ENOMEM;
    for (int attempt = 0; rc == VK_OK && nq > 0 && (ntotal > 0 || ntail > 0); attempt++) {
        ms.n = 0;
        ms.short_query = 0;
        rc = search_once(db, q, nq, k, kk, o, metric, dead, ndead, tail, ntail, out, labels, &ms,
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
    free(ms.ids);
    free(dead);
    free(tail);
    if (rc)
        vk_hits_free(out);
    return rc;
}
