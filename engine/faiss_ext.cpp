/*
 * faiss_ext.cpp: what FAISS 1.7.3's C API lacks, written in the style of
 * that API (opaque handles, int status, no exception crosses into C).
 *
 * vk_faiss_get_param reads the value a ParameterSpace::set_index_parameter
 * call with the same name would change, walking the index the same way, so
 * a caller can save a value and put it back after a per-call override.
 */
#include <faiss/Index.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexIVFPQR.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/MetaIndexes.h>
#include <faiss/c_api/Index_c.h>

#include <cmath>
#include <cstring>
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
