/* test_filter.c: the FAISS entry points of faiss_ext.cpp (ID selectors,
 * explicit ids), filtered search, deletes and updates, through C only */
#include "ctest.h"
#include "vk_search.h"

#include <stdlib.h>
#include <string.h>

enum { N = 3000, D = 16, K = 10 };

static float frand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f;
}

static float *data(void)
{
    float *x = malloc(sizeof(float) * N * D);
    unsigned s = 11;
    for (int i = 0; i < N * D; i++)
        x[i] = frand(&s);
    return x;
}

static vk_index *built(const char *factory, const float *x)
{
    vk_index *ix = NULL;
    if (vk_index_factory(&ix, D, factory, VK_METRIC_L2))
        return NULL;
    if (vk_index_train(ix, N, x) || vk_index_add(ix, N, x, 0)) {
        vk_index_release(ix);
        return NULL;
    }
    return ix;
}

/* every third id */
static unsigned char bits[N / 8 + 1];

static void test_selectors(const float *x)
{
    for (int i = 0; i < N; i += 3)
        bits[i >> 3] |= (unsigned char)(1u << (i & 7));
    static const struct {
        const char *factory;
        int kind, explicit_ids, honors;
    } cases[] = {
        {"Flat", VK_FAISS_FLAT, 0, 1},         {"HNSW16", VK_FAISS_HNSW, 0, 1},
        {"IVF8,Flat", VK_FAISS_IVF, 1, 1},     {"PCA8,IVF8,Flat", VK_FAISS_IVF, 1, 1},
        {"SQ8", VK_FAISS_OTHER, 0, 1},         {"PQ4x4", VK_FAISS_OTHER, 0, 0},
        {"IDMap,Flat", VK_FAISS_OTHER, 1, 0},
    };
    float dist[K * 2];
    int64_t lab[K * 2];
    char name[160];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *f = cases[c].factory;
        vk_index *ix = NULL;
        if (!strcmp(f, "IDMap,Flat")) {
            if (vk_index_factory(&ix, D, f, VK_METRIC_L2) == VK_OK && vk_index_add(ix, N, x, 0)) {
                vk_index_release(ix);
                ix = NULL;
            }
        } else {
            ix = built(f, x);
        }
        snprintf(name, sizeof name, "%s: built", f);
        CHECK(ix != NULL, name);
        if (!ix)
            continue;
        struct FaissIndex_H *fi = vk_index_faiss(ix);
        snprintf(name, sizeof name, "%s: kind and id numbering", f);
        CHECK(vk_faiss_kind(fi) == cases[c].kind && vk_faiss_explicit_ids(fi) == cases[c].explicit_ids,
              name);
        int rc = vk_faiss_search(fi, 2, x + 5 * D, K, bits, N, 0, 0, 0, dist, lab);
        if (cases[c].honors) {
            int ok = rc == VK_OK;
            for (int j = 0; ok && j < 2 * K; j++)
                ok = lab[j] >= 0 && lab[j] % 3 == 0;
            snprintf(name, sizeof name, "%s: k results, every one allowed by the bitmap", f);
            CHECK(ok, name);
            rc = vk_faiss_search(fi, 1, x + 6 * D, K, bits, N, 1, 0, 0, dist, lab);
            ok = rc == VK_OK;
            for (int j = 0; ok && j < K; j++)
                ok = lab[j] >= 0 && lab[j] % 3 != 0;
            snprintf(name, sizeof name, "%s: an inverted bitmap excludes its ids", f);
            CHECK(ok, name);
        } else {
            snprintf(name, sizeof name, "%s: no selector: VK_FAISS_NOSEL, nothing searched", f);
            CHECK(rc == VK_FAISS_NOSEL, name);
        }
        int64_t mx = -2, removed = -1;
        if (cases[c].explicit_ids) {
            snprintf(name, sizeof name, "%s: largest stored id", f);
            CHECK(vk_faiss_ids(fi, &mx, NULL, 0) == VK_OK && mx == N - 1, name);
            int64_t gone[3] = {N - 1, 7, 99999};
            snprintf(name, sizeof name, "%s: remove_ids drops the ids it holds, keeps the others", f);
            CHECK(vk_faiss_remove_ids(fi, gone, 3, &removed) == VK_OK && removed == 2 &&
                      vk_index_ntotal(ix) == N - 2 && vk_index_covered(ix) == N - 1,
                  name);
        } else {
            snprintf(name, sizeof name, "%s: remove_ids refused (it would renumber)", f);
            int64_t gone = 7;
            CHECK(vk_faiss_remove_ids(fi, &gone, 1, &removed) == VK_ESTATE &&
                      strstr(vk_errmsg(), "numbers its vectors by position") != NULL &&
                      vk_index_ntotal(ix) == N,
                  name);
        }
        vk_index_release(ix);
    }
}

static int64_t count_matching(const vk_hits *h, int64_t q, int mod, int rem)
{
    int64_t n = 0;
    for (int64_t j = 0; j < h->count[q]; j++)
        n += h->ids[q * h->k + j] % mod == rem;
    return n;
}

static void test_db(const float *x)
{
    vk_db *db;
    vk_column cols[] = {{.name = "b", .type = VK_INT, .nullable = 1}};
    CHECK(vk_db_open(&db, "sqlite://", NULL, 0) == VK_OK &&
              vk_db_use_table(db, NULL, "f", "idx", "vector", cols, 1) == VK_OK,
          "a table with an integer column");
    vk_batch *b = vk_batch_new(db, 1);
    int rc = b ? VK_OK : VK_ENOMEM;
    for (int i = 0; i < N && rc == VK_OK; i++) {
        vk_batch_begin_row(b);
        vk_value v = {.type = VK_INT, .i = i % 10};
        rc = vk_batch_set(b, 2, &v);
        if (rc == VK_OK)
            rc = vk_batch_set_vector(b, x + i * D, D);
        if (rc == VK_OK)
            rc = vk_batch_end_row(b);
    }
    CHECK(rc == VK_OK && vk_db_insert(db, b) == VK_OK, "insert 3000 records");
    vk_batch_free(b);
    vk_index *ix = NULL;
    int64_t added = 0;
    CHECK(vk_index_factory(&ix, D, "Flat", VK_METRIC_L2) == VK_OK, "a Flat index");
    vk_db_attach(db, ix, NULL);
    vk_index_release(ix);
    CHECK(vk_db_sync_index(db, 1000, NULL, NULL, NULL, NULL, &added) == VK_OK && added == N, "synced");

    vk_filter *f = NULL;
    vk_value three = {.type = VK_INT, .i = 3};
    CHECK(vk_filter_new(db, "\"b\" = ?1", &three, 1, &f) == VK_OK && vk_filter_count(f) == N / 10,
          "the filter matches a tenth of the table");
    vk_search_stats st;
    vk_search_opts o = {.rerank = 1, .filter = f, .stats = &st};
    vk_hits h;
    CHECK(vk_db_search(db, x, 2, K, &o, &h) == VK_OK && h.count[0] == K &&
              h.count[1] == K && count_matching(&h, 0, 10, 3) == K && count_matching(&h, 1, 10, 3) == K,
          "filtered search: k neighbors, all matching");
    CHECK(st.plan == VK_PLAN_EXACT && st.matches == N / 10, "300 matches: scanned exactly");
    vk_hits_free(&h);
    vk_filter_free(f);
    vk_value eight = {.type = VK_INT, .i = 8};
    CHECK(vk_filter_new(db, "\"b\" < ?1", &eight, 1, &f) == VK_OK && vk_filter_count(f) == -1,
          "a broad filter: more matches than the exact scan takes, not counted further");
    o.filter = f;
    CHECK(vk_db_search(db, x, 1, K, &o, &h) == VK_OK && h.count[0] == K &&
              st.plan == VK_PLAN_CHECK,
          "2400 matches of 3000: FAISS's candidates checked by the database");
    int ok = h.count[0] == K;
    for (int64_t j = 0; ok && j < K; j++)
        ok = h.ids[j] % 10 < 8;
    CHECK(ok, "every neighbor matches");
    vk_hits_free(&h);
    o.filter_plan = VK_PLAN_SELECTOR;
    CHECK(vk_db_search(db, x, 1, K, &o, &h) == VK_OK && h.count[0] == K &&
              st.plan == VK_PLAN_SELECTOR,
          "the same through FAISS's selector, when asked");
    CHECK(vk_filter_count(f) == 2400, "reading the ids for the selector counted them");
    ok = h.count[0] == K;
    for (int64_t j = 0; ok && j < K; j++)
        ok = h.ids[j] % 10 < 8;
    CHECK(ok, "every neighbor matches");
    vk_hits_free(&h);
    o.filter_plan = 0;
    vk_filter_free(f);

    int64_t deleted = 0;
    CHECK(vk_db_delete(db, "\"b\" = ?1", &three, 1, &deleted) == VK_OK && deleted == N / 10 &&
              vk_db_count(db) == N - N / 10 && vk_db_deleted_count(db) == N / 10,
          "delete 300 records");
    vk_search_opts plain = {.rerank = 1, .stats = &st};
    CHECK(vk_db_search(db, x + 3 * D, 1, K, &plain, &h) == VK_OK && h.count[0] == K &&
              count_matching(&h, 0, 10, 3) == 0 && st.plan == VK_PLAN_SELECTOR &&
              st.excluded == N / 10,
          "search leaves the deleted records out (record 3's own vector)");
    vk_hits_free(&h);
    CHECK(vk_db_next_idx(db) == N, "the next idx follows the largest ever used");
    int64_t gap = 0;
    CHECK(vk_db_find_gap(db, &gap) == VK_OK && gap == -1, "deleted idx values are not gaps");

    int64_t updated = 0, first_new = 0;
    vk_value one = {.type = VK_INT, .i = 1}, nine = {.type = VK_INT, .i = 9};
    int bcol = 2;
    float far[D];
    for (int j = 0; j < D; j++)
        far[j] = 50.0f;
    CHECK(vk_db_update(db, "\"idx\" = ?1", &one, 1, &bcol, &nine, 1, far, D, &updated, &first_new, NULL) ==
                  VK_OK &&
              updated == 1 && first_new == N && vk_index_ntotal(vk_db_index(db)) == N + 1,
          "update with a vector: a new idx");
    CHECK(vk_db_search(db, far, 1, 1, &plain, &h) == VK_OK && h.count[0] == 1 &&
              h.ids[0] == N && h.metric[0] == 0.0f,
          "found by its new vector");
    vk_hits_free(&h);
    CHECK(vk_db_update(db, "\"idx\" = ?1", &one, 1, &bcol, &nine, 1, NULL, 0, &updated, &first_new, NULL) ==
                  VK_OK && updated == 0,
          "the old idx is gone");
    int idxcol = 0;
    CHECK(vk_db_update(db, NULL, NULL, 0, &idxcol, &nine, 1, NULL, 0, &updated, &first_new, NULL) == VK_EINVAL &&
              strstr(vk_errmsg(), "cannot be updated") != NULL,
          "the idx cannot be updated");
    vk_db_close(db);
}

int main(void)
{
    float *x = data();
    test_selectors(x);
    test_db(x);
    free(x);
    CT_DONE();
}
