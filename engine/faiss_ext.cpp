/*
 * faiss_ext.cpp: what FAISS 1.7.3's C API lacks, written in the style of
 * that API (opaque handles, int status, no exception crosses into C).
 *
 * vk_faiss_get_param reads the value a ParameterSpace::set_index_parameter
 * call with the same name would change, walking the index the same way, so
 * a caller can save a value and put it back after a per-call override.
 *
 * vk_faiss_search searches with per-call SearchParameters: an ID selector
 * (a bitmap of allowed ids, or of excluded ids) and the IVF nprobe / HNSW
 * efSearch to use, without touching the index's own settings.  FAISS 1.7.3
 * applies a selector in IndexFlat, IndexScalarQuantizer, the IndexIVF family
 * and IndexHNSW (under IndexPreTransform too); every other type gets
 * VK_FAISS_NOSEL back so the caller can filter FAISS's results itself.
 *
 * Ids: IVF indexes and IndexIDMap store the id they are given, so vectors can
 * be removed without renumbering the others; every other type numbers its
 * vectors by position (remove_ids would renumber them: never used here).
 */
#include "vk_faiss.h"

#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFFastScan.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexIVFPQR.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/invlists/OnDiskInvertedLists.h>
#include <faiss/IndexRefine.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/MetaIndexes.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/invlists/InvertedLists.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <memory>
#include <string>

using namespace faiss;

namespace {

bool get_param(const Index *index, const std::string &name, double *out)
{
    if (auto ix = dynamic_cast<const IndexIDMap *>(index))
        return get_param(ix->index, name, out);
    if (auto ix = dynamic_cast<const IndexPreTransform *>(index))
        return get_param(ix->index, name, out);
    if (auto ix = dynamic_cast<const ThreadedIndex<Index> *>(index)) {
        if (ix->count() == 0)
            return false;
        return get_param(ix->at(0), name, out);
    }
    if (auto ix = dynamic_cast<const IndexRefine *>(index)) {
        if (name == "k_factor_rf") {
            *out = ix->k_factor;
            return true;
        }
        return get_param(ix->base_index, name, out);
    }
    if (name == "verbose") {
        *out = index->verbose;
        return true;
    }
    if (name == "nprobe") {
        if (auto ix = dynamic_cast<const IndexIVF *>(index)) {
            *out = double(ix->nprobe);
            return true;
        }
    }
    if (name == "ht") {
        if (auto ix = dynamic_cast<const IndexPQ *>(index)) {
            *out = ix->search_type == IndexPQ::ST_PQ ? double(ix->pq.code_size * 8)
                                                     : double(ix->polysemous_ht);
            return true;
        }
        if (auto ix = dynamic_cast<const IndexIVFPQ *>(index)) {
            *out = ix->polysemous_ht == 0 ? double(ix->pq.code_size * 8)
                                          : double(ix->polysemous_ht);
            return true;
        }
    }
    if (name == "k_factor") {
        if (auto ix = dynamic_cast<const IndexIVFPQR *>(index)) {
            *out = ix->k_factor;
            return true;
        }
    }
    if (name == "max_codes") {
        if (auto ix = dynamic_cast<const IndexIVF *>(index)) {
            *out = ix->max_codes == 0 ? INFINITY : double(ix->max_codes);
            return true;
        }
    }
    if (name == "efConstruction" || name == "efSearch") {
        const IndexHNSW *h = dynamic_cast<const IndexHNSW *>(index);
        if (!h)
            if (auto ix = dynamic_cast<const IndexIVF *>(index))
                h = dynamic_cast<const IndexHNSW *>(ix->quantizer);
        if (h) {
            *out = name == "efSearch" ? h->hnsw.efSearch : h->hnsw.efConstruction;
            return true;
        }
    }
    if (name.rfind("quantizer_", 0) == 0) {
        if (auto ix = dynamic_cast<const IndexIVF *>(index))
            return get_param(ix->quantizer, name.substr(strlen("quantizer_")), out);
    }
    return false;
}

} // namespace

extern "C" int vk_faiss_get_param(const FaissIndex *fi, const char *name, double *out)
{
    try {
        return get_param(reinterpret_cast<const Index *>(fi), name, out) ? 0 : -1;
    } catch (...) {
        return -1;
    }
}

/* ---------- ids, selectors, per-call search parameters ---------- */

namespace {

/* an exception's message as our error (index.c trims FAISS's prefix) */
int fail(const char *what, const char *msg) { return vk_faiss_error(what, msg); }

const Index *unwrap(const Index *ix)
{
    while (auto p = dynamic_cast<const IndexPreTransform *>(ix))
        ix = p->index;
    return ix;
}

/* one bit per id (bit i%8 of byte i/8); a member when its bit is set, or,
 * inverted, when it is clear (ids past the bitmap: not set) */
struct BitmapSelector : IDSelector {
    const uint8_t *bits;
    int64_t nbits;
    bool invert;

    BitmapSelector(const uint8_t *bits, int64_t nbits, bool invert)
        : bits(bits), nbits(nbits), invert(invert) {}

    bool is_member(idx_t id) const final
    {
        bool set = id >= 0 && id < nbits && ((bits[id >> 3] >> (id & 7)) & 1);
        return set != invert;
    }
};

/* Parameters carrying sel for the index under the transforms, with the
 * index's own settings unless nprobe / efsearch (> 0) override them; the
 * quantizer of an IVF index keeps its own (quantizer_params stay null).
 * nullptr: FAISS 1.7.3 takes no such parameters for this type. */
std::unique_ptr<SearchParameters> make_params(const Index *index, IDSelector *sel, int64_t nprobe,
                                              int64_t efsearch)
{
    const Index *in = unwrap(index);
    if (dynamic_cast<const IndexIVFFastScan *>(in) || dynamic_cast<const IndexHNSW2Level *>(in))
        return nullptr;   /* their search() refuses any parameters */
    if (auto ivf = dynamic_cast<const IndexIVF *>(in)) {
        auto p = std::make_unique<SearchParametersIVF>();
        p->nprobe = nprobe > 0 ? size_t(nprobe) : ivf->nprobe;
        p->max_codes = ivf->max_codes;
        p->sel = sel;
        return p;
    }
    if (auto h = dynamic_cast<const IndexHNSW *>(in)) {
        auto p = std::make_unique<SearchParametersHNSW>();
        p->efSearch = efsearch > 0 ? int(std::min<int64_t>(efsearch, 1 << 30)) : h->hnsw.efSearch;
        p->check_relative_distance = h->hnsw.check_relative_distance;
        p->sel = sel;
        return p;
    }
    if (dynamic_cast<const IndexFlat *>(in) || dynamic_cast<const IndexScalarQuantizer *>(in)) {
        auto p = std::make_unique<SearchParameters>();
        p->sel = sel;
        return p;
    }
    return nullptr;
}

} // namespace

extern "C" void vk_faiss_mapped(FaissIndex *fi)
{
    /* An IVF index read with the mmap flag keeps its lists in an
     * OnDiskInvertedLists, whose prefetch starts up to 32 threads for every
     * search to touch the lists' pages: measured at 100k x 128, IVF1000,
     * nprobe 35, one query at a time, 3.9 ms a query instead of 1.0. The
     * pages are in the page cache once warm; the kernel reads them on
     * demand otherwise. */
    auto ivf = dynamic_cast<IndexIVF *>(const_cast<Index *>(unwrap(reinterpret_cast<Index *>(fi))));
    if (!ivf)
        return;
    if (auto od = dynamic_cast<OnDiskInvertedLists *>(ivf->invlists))
        od->prefetch_nthread = 0;
}

extern "C" int vk_faiss_kind(const FaissIndex *fi)
{
    const Index *in = unwrap(reinterpret_cast<const Index *>(fi));
    if (dynamic_cast<const IndexIVF *>(in))
        return VK_FAISS_IVF;
    if (dynamic_cast<const IndexHNSW *>(in))
        return VK_FAISS_HNSW;
    if (dynamic_cast<const IndexFlat *>(in))
        return VK_FAISS_FLAT;
    return VK_FAISS_OTHER;
}

extern "C" int vk_faiss_explicit_ids(const FaissIndex *fi)
{
    const Index *in = unwrap(reinterpret_cast<const Index *>(fi));
    return dynamic_cast<const IndexIVF *>(in) || dynamic_cast<const IndexIDMap *>(in) ||
           dynamic_cast<const IndexIDMap2 *>(in);
}

extern "C" int vk_faiss_ivf_lists(const FaissIndex *fi, int64_t *nlist, int64_t *nprobe)
{
    const IndexIVF *ivf = dynamic_cast<const IndexIVF *>(unwrap(reinterpret_cast<const Index *>(fi)));
    *nlist = ivf ? int64_t(ivf->nlist) : 0;
    *nprobe = ivf ? int64_t(ivf->nprobe) : 0;
    return ivf != nullptr;
}

/* one stored id: the largest so far, and its bit when asked */
static inline void note_id(int64_t id, int64_t *max, unsigned char *bits, int64_t nbits)
{
    *max = std::max<int64_t>(*max, id);
    if (bits && id >= 0 && id < nbits)
        bits[id >> 3] |= (unsigned char)(1u << (id & 7));
}

extern "C" int vk_faiss_ids(const FaissIndex *fi, int64_t *max, unsigned char *bits, int64_t nbits)
{
    *max = -1;
    try {
        const Index *in = unwrap(reinterpret_cast<const Index *>(fi));
        if (auto m = dynamic_cast<const IndexIDMap *>(in)) {
            for (idx_t id : m->id_map)
                note_id(id, max, bits, nbits);
            return VK_OK;
        }
        if (auto m = dynamic_cast<const IndexIDMap2 *>(in)) {
            for (idx_t id : m->id_map)
                note_id(id, max, bits, nbits);
            return VK_OK;
        }
        auto ivf = dynamic_cast<const IndexIVF *>(in);
        if (!ivf)
            return vk_set_error(VK_EINVAL, "the index numbers its vectors by position: no ids to read");
        const InvertedLists *il = ivf->invlists;
        for (size_t l = 0; il && l < il->nlist; l++) {
            size_t n = il->list_size(l);
            if (n == 0)
                continue;
            InvertedLists::ScopedIds ids(il, l);
            /* lists mapped from a file (the mmap flag) keep ids at any byte
             * offset: copy each out rather than load it as an idx_t */
            const unsigned char *raw = reinterpret_cast<const unsigned char *>(ids.get());
            for (size_t i = 0; i < n; i++) {
                idx_t id;
                memcpy(&id, raw + i * sizeof id, sizeof id);
                note_id(id, max, bits, nbits);
            }
        }
        return VK_OK;
    } catch (const std::exception &e) {
        return fail("cannot read the index's ids", e.what());
    }
}

extern "C" int vk_faiss_add_ids(FaissIndex *fi, int64_t n, const float *x, const int64_t *ids)
{
    try {
        reinterpret_cast<Index *>(fi)->add_with_ids(n, x, reinterpret_cast<const idx_t *>(ids));
        return VK_OK;
    } catch (const std::exception &e) {
        return fail("adding vectors to the index failed", e.what());
    }
}

extern "C" int vk_faiss_remove_ids(FaissIndex *fi, const int64_t *ids, int64_t n, int64_t *removed)
{
    *removed = 0;
    if (!vk_faiss_explicit_ids(fi))
        return vk_set_error(VK_ESTATE, "the index numbers its vectors by position: removing some "
                            "would renumber the others");
    if (n <= 0)
        return VK_OK;
    try {
        IDSelectorBatch sel(size_t(n), reinterpret_cast<const idx_t *>(ids));
        *removed = int64_t(reinterpret_cast<Index *>(fi)->remove_ids(sel));
        return VK_OK;
    } catch (const std::exception &e) {
        return fail("removing vectors from the index failed", e.what());
    }
}

extern "C" int vk_faiss_search(const FaissIndex *fi, int64_t n, const float *x, int64_t k,
                               const uint8_t *bits, int64_t nbits, int invert, int64_t nprobe,
                               int64_t efsearch, float *distances, int64_t *labels)
{
    try {
        const Index *index = reinterpret_cast<const Index *>(fi);
        std::unique_ptr<BitmapSelector> sel;
        if (bits)
            sel = std::make_unique<BitmapSelector>(bits, nbits, invert != 0);
        std::unique_ptr<SearchParameters> params = make_params(index, sel.get(), nprobe, efsearch);
        if (!params)
            return VK_FAISS_NOSEL;
        index->search(n, x, k, distances, reinterpret_cast<idx_t *>(labels), params.get());
        return VK_OK;
    } catch (const std::exception &e) {
        return fail("search failed", e.what());
    }
}
