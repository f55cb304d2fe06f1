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
#include <faiss/invlists/InvertedListsIOHook.h>
#include <faiss/impl/io.h>
#include <faiss/impl/io_macros.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* the resident pages of mapped lists (on disk, or an index file read with
 * the mmap flag) drop out of this process; they stay in the page cache */
static void release_pages(const InvertedLists *il)
{
    auto od = dynamic_cast<const OnDiskInvertedLists *>(il);
    if (od && od->ptr && od->totsize > 0)
        madvise(od->ptr, od->totsize, MADV_DONTNEED);
}

/* one stored id: the largest so far, and its bit when asked */
static inline void note_id(int64_t id, int64_t *max, unsigned char *bits, int64_t nbits)
{
    *max = std::max<int64_t>(*max, id);
    if (bits && id >= 0 && id < nbits)
        bits[id >> 3] |= (unsigned char)(1u << (id & 7));
}

/* the ids of lists on disk, through the mapping (the file may be gone
 * already: a newer generation's save removes it): the kernel maps the pages
 * around each one read too (fault-around), so each list's pages, and as
 * much around them, are dropped from this process once read, lest nearly
 * the whole file become resident for a moment */
static int ondisk_ids(const OnDiskInvertedLists *od, int64_t *max, unsigned char *bits, int64_t nbits)
{
    const size_t page = size_t(sysconf(_SC_PAGESIZE)), around = size_t(1) << 16;
    for (size_t l = 0; l < od->nlist && od->ptr; l++) {
        const OnDiskOneList &one = od->lists[l];
        if (one.size == 0)
            continue;
        const uint8_t *raw = od->ptr + one.offset + one.capacity * od->code_size;
        for (size_t i = 0; i < one.size; i++) {
            idx_t id;
            memcpy(&id, raw + i * sizeof id, sizeof id);
            note_id(id, max, bits, nbits);
        }
        size_t lo = one.offset + one.capacity * od->code_size, hi = lo + one.size * sizeof(idx_t);
        lo = lo > around ? (lo - around) / page * page : 0;
        hi = std::min(od->totsize, (hi + around + page - 1) / page * page);
        if (hi > lo)
            madvise(od->ptr + lo, hi - lo, MADV_DONTNEED);
    }
    return VK_OK;
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
        if (auto od = dynamic_cast<const OnDiskInvertedLists *>(il))
            if (!od->filename.empty())
                return ondisk_ids(od, max, bits, nbits);
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
        /* the pages just read are in the page cache: they need not stay
         * resident in this process (a searcher of on-disk lists keeps only
         * what its queries touch) */
        release_pages(il);
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

/* ---------- reading index files; IVF lists on disk ----------
 *
 * An on-disk IVF index keeps its lists in FAISS's OnDiskInvertedLists:
 * a lists file laid out as FAISS's compact form (list after list, codes
 * then ids), which the index file names ("ilod" record: the file name,
 * every list's offset and size, the file's size).  We read every index
 * file through one FAISS reader with these flags:
 *
 *  - IO_FLAG_SKIP_IVF_DATA, so that FAISS's "ilod" reader leaves the
 *    mapping to us: the lists file is looked up beside the index file
 *    (what IO_FLAG_ONDISK_SAME_DIR does, without its line on stdout),
 *    checked to hold the bytes the index file states (a short file would
 *    fault on access) and mapped read-only;
 *  - in the high 16 bits, the key of our own hook ("ilvk"), which FAISS
 *    1.7.3 then asks to read ordinary in-memory lists ("ilar"): into
 *    memory, or mapped from the index file when the mmap flag is asked
 *    for (what FAISS's own IO_FLAG_MMAP does);
 *  - IO_FLAG_READ_ONLY: "ilod" lists are never mapped writable.
 */

namespace {

thread_local bool reading_mapped;   /* the read in progress maps "ilar" lists */

struct ReadHook : InvertedListsIOHook {
    ReadHook() : InvertedListsIOHook("ilvk", "vekterdb-read-hook") {}

    void write(const InvertedLists *, IOWriter *) const override
    {
        FAISS_THROW_MSG("the read hook writes nothing");
    }

    InvertedLists *read(IOReader *, int) const override
    {
        FAISS_THROW_MSG("no inverted lists are stored as ilvk");
    }

    InvertedLists *read_ArrayInvertedLists(IOReader *f, int io_flags, size_t nlist, size_t code_size,
                                           const std::vector<size_t> &sizes) const override
    {
        if (reading_mapped)
            return OnDiskInvertedListsIOHook().read_ArrayInvertedLists(f, io_flags, nlist, code_size,
                                                                      sizes);
        auto ails = std::make_unique<ArrayInvertedLists>(nlist, code_size);
        for (size_t i = 0; i < nlist; i++) {
            ails->ids[i].resize(sizes[i]);
            ails->codes[i].resize(sizes[i] * code_size);
        }
        for (size_t i = 0; i < nlist; i++) {
            size_t n = sizes[i];
            if (n > 0) {
                READANDCHECK(ails->codes[i].data(), n * code_size);
                READANDCHECK(ails->ids[i].data(), n);
            }
        }
        return ails.release();
    }
};

void add_read_hook()
{
    static std::once_flag once;
    std::call_once(once, [] { InvertedListsIOHook::add_callback(new ReadHook()); });
}

IndexIVF *ivf_of(Index *index) { return dynamic_cast<IndexIVF *>(const_cast<Index *>(unwrap(index))); }

/* lists in a lists file of their own (not an index file mapped with the
 * mmap flag, whose lists have no file name) */
OnDiskInvertedLists *ondisk_lists(const Index *index)
{
    auto ivf = dynamic_cast<const IndexIVF *>(unwrap(index));
    auto od = ivf ? dynamic_cast<OnDiskInvertedLists *>(ivf->invlists) : nullptr;
    return od && !od->filename.empty() ? od : nullptr;
}

std::string dir_of(const std::string &path)
{
    size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
}

std::string base_of(const std::string &path)
{
    size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

/* maps the lists file of od, looked up beside the index file path */
int map_lists(OnDiskInvertedLists *od, const char *path)
{
    if (od->lists.size() != od->nlist)
        return vk_fail(VK_EINVAL, "index file %s states %zu inverted lists but describes %zu", path,
                       od->nlist, od->lists.size());
    od->filename = dir_of(path) + base_of(od->filename);
    struct stat st;
    if (stat(od->filename.c_str(), &st) != 0)
        return vk_fail(errno == ENOENT ? VK_ENOTFOUND : VK_EIO, "cannot read the inverted lists file "
                       "%s of index file %s: %s", od->filename.c_str(), path, strerror(errno));
    if (!S_ISREG(st.st_mode) || size_t(st.st_size) < od->totsize)
        return vk_fail(VK_EINVAL, "the inverted lists file %s of index file %s holds %lld bytes, not "
                       "the %zu the index file states: it is not the one saved with it",
                       od->filename.c_str(), path, (long long)st.st_size, od->totsize);
    for (size_t l = 0; l < od->lists.size(); l++) {
        const OnDiskOneList &one = od->lists[l];
        if (one.offset != size_t(-1) &&
            (one.size > one.capacity || one.offset > od->totsize ||
             one.capacity > (od->totsize - one.offset) / (sizeof(idx_t) + od->code_size)))
            return vk_fail(VK_EINVAL, "index file %s states inverted list %zu beyond its lists file",
                           path, l);
    }
    od->read_only = true;
    if (od->totsize > 0)
        od->do_mmap();
    return VK_OK;
}

} // namespace

extern "C" int vk_faiss_read(int fd, const char *path, int mmap, FaissIndex **out)
{
    *out = nullptr;
    /* a description of its own: the caller's offset is wherever hashing
     * left it; /proc/self/fd/N names the open file even if another has
     * been renamed over path meanwhile */
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    int own = open(self, O_RDONLY | O_CLOEXEC);
    if (own < 0 && (own = dup(fd)) >= 0)
        lseek(own, 0, SEEK_SET);
    FILE *f = own >= 0 ? fdopen(own, "rb") : nullptr;
    if (!f) {
        int rc = vk_fail(VK_EIO, "cannot read index file %s: %s", path, strerror(errno));
        if (own >= 0)
            close(own);
        return rc;
    }
    int rc = VK_OK;
    try {
        add_read_hook();
        FileIOReader reader(f);
        reader.name = path;
        reading_mapped = mmap != 0;
        int flags = IO_FLAG_SKIP_IVF_DATA | IO_FLAG_READ_ONLY | int(fourcc("ilvk") & 0xffff0000u);
        std::unique_ptr<Index> index(read_index(&reader, flags));
        reading_mapped = false;
        OnDiskInvertedLists *od = ondisk_lists(index.get());
        if (od && (rc = map_lists(od, path)) != VK_OK) {
            fclose(f);
            return rc;
        }
        if (od)
            od->prefetch_nthread = 0;
        *out = reinterpret_cast<FaissIndex *>(index.release());
    } catch (const std::exception &e) {
        reading_mapped = false;
        char what[600];
        snprintf(what, sizeof what, "unreadable index file %s", path);
        rc = fail(what, e.what());
    }
    fclose(f);
    return rc;
}

extern "C" int vk_faiss_ondisk(const FaissIndex *fi)
{
    return ondisk_lists(reinterpret_cast<const Index *>(fi)) != nullptr;
}

extern "C" const char *vk_faiss_ondisk_file(const FaissIndex *fi)
{
    OnDiskInvertedLists *od = ondisk_lists(reinterpret_cast<const Index *>(fi));
    return od ? od->filename.c_str() : nullptr;
}

extern "C" int vk_faiss_ondisk_check(const FaissIndex *fi)
{
    const Index *in = unwrap(reinterpret_cast<const Index *>(fi));
    auto ivf = dynamic_cast<const IndexIVF *>(in);
    if (!ivf)
        return vk_fail(VK_EINVAL, "on_disk needs an IVF index (\"IVF4096,SQ8\", \"IVF1024,PQ32\", "
                       "...): only inverted lists can live on disk");
    if (dynamic_cast<const IndexIVFFastScan *>(in) || dynamic_cast<const IndexIVFPQR *>(in))
        return vk_fail(VK_EINVAL, "on_disk: the lists of a fast-scan or refined IVF index (IVF...fs, "
                       "IVF...PQ...+...) cannot live on disk; use a plain IVF codec such as SQ8 or PQ32");
    return VK_OK;
}

/* A lists file being built: new vectors are encoded as they come and
 * spilled (list, id, code) to an unlinked temporary file; finish lays out
 * every list once its size is known (the index's current lists, less the
 * dropped ids, then the new ones), writes it with pwrite (nothing of it
 * stays resident) and maps it read-only in place of the index's lists. */
struct vk_ondisk_build {
    IndexIVF *ivf = nullptr;
    Index *top = nullptr;
    std::string path;
    int fd = -1;
    FILE *spill = nullptr;
    std::vector<int64_t> count;   /* new entries per list */
    bool swapped = false;
};

extern "C" int vk_faiss_ondisk_begin(FaissIndex *fi, const char *path, vk_ondisk_build **out)
{
    *out = nullptr;
    int rc = vk_faiss_ondisk_check(fi);
    if (rc)
        return rc;
    Index *top = reinterpret_cast<Index *>(fi);
    if (!top->is_trained)
        return vk_fail(VK_ESTATE, "the index is not trained: train it before adding vectors");
    try {
        auto b = std::make_unique<vk_ondisk_build>();
        b->top = top;
        b->ivf = ivf_of(top);
        b->path = path;
        b->count.assign(b->ivf->nlist, 0);
        b->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        /* locked while it is built: nobody cleaning old lists files takes it */
        if (b->fd < 0 || flock(b->fd, LOCK_EX) != 0) {
            rc = vk_fail(VK_EIO, "cannot create inverted lists file %s: %s", path, strerror(errno));
            if (b->fd >= 0) {
                close(b->fd);
                unlink(path);
            }
            return rc;
        }
        std::string sp = b->path + ".spill";
        int sfd = open(sp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (sfd >= 0)
            unlink(sp.c_str());
        b->spill = sfd >= 0 ? fdopen(sfd, "w+b") : nullptr;
        if (!b->spill) {
            rc = vk_fail(VK_EIO, "cannot create temporary file %s: %s", sp.c_str(), strerror(errno));
            if (sfd >= 0)
                close(sfd);
            close(b->fd);
            unlink(path);
            return rc;
        }
        *out = b.release();
        return VK_OK;
    } catch (const std::exception &e) {
        return fail("cannot build on-disk inverted lists", e.what());
    }
}

extern "C" int vk_faiss_ondisk_put(vk_ondisk_build *b, int64_t n, const float *x, const int64_t *ids)
{
    if (n <= 0)
        return VK_OK;
    try {
        const float *xt = x;
        std::unique_ptr<const float[]> owned;
        if (auto pt = dynamic_cast<const IndexPreTransform *>(b->top)) {
            xt = pt->apply_chain(n, x);
            if (xt != x)
                owned.reset(xt);
        }
        IndexIVF *ivf = b->ivf;
        size_t cs = ivf->code_size;
        std::vector<idx_t> lists(static_cast<size_t>(n));
        ivf->quantizer->assign(n, xt, lists.data());
        std::vector<uint8_t> codes(size_t(n) * cs);
        ivf->encode_vectors(n, xt, lists.data(), codes.data());
        for (int64_t i = 0; i < n; i++) {
            int64_t rec[2] = {lists[i], ids[i]};
            if (lists[i] < 0 || size_t(lists[i]) >= ivf->nlist)
                return vk_fail(VK_EFAISS, "the quantizer assigned idx %lld to no list", (long long)ids[i]);
            if (fwrite(rec, sizeof rec, 1, b->spill) != 1 ||
                (cs && fwrite(codes.data() + size_t(i) * cs, cs, 1, b->spill) != 1))
                return vk_fail(VK_EIO, "cannot write a temporary file beside %s: %s", b->path.c_str(),
                               strerror(errno));
            b->count[size_t(lists[i])]++;
        }
        return VK_OK;
    } catch (const std::exception &e) {
        return fail("adding vectors to the on-disk lists failed", e.what());
    }
}

namespace {

int pwrite_all(int fd, const void *p, size_t n, size_t off, const std::string &path)
{
    const char *c = static_cast<const char *>(p);
    while (n > 0) {
        ssize_t w = pwrite(fd, c, n, off_t(off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return vk_fail(VK_EIO, "cannot write inverted lists file %s: %s", path.c_str(),
                           w < 0 ? strerror(errno) : "short write");
        c += w;
        n -= size_t(w);
        off += size_t(w);
    }
    return VK_OK;
}

} // namespace

extern "C" int vk_faiss_ondisk_finish(vk_ondisk_build *b, const uint8_t *drop, int64_t ndrop,
                                      int64_t *removed)
{
    *removed = 0;
    try {
        IndexIVF *ivf = b->ivf;
        const InvertedLists *old = ivf->invlists;
        size_t nlist = ivf->nlist, cs = ivf->code_size, entry = cs + sizeof(idx_t);
        auto dropped = [&](idx_t id) {
            return drop && id >= 0 && id < ndrop && ((drop[id >> 3] >> (id & 7)) & 1);
        };
        /* the layout: FAISS's compact form, every list's capacity its size */
        std::vector<OnDiskOneList> lists(nlist);
        std::vector<size_t> kept(nlist, 0);
        size_t off = 0, total = 0;
        for (size_t l = 0; l < nlist; l++) {
            size_t n = old ? old->list_size(l) : 0;
            if (n > 0 && drop) {
                InvertedLists::ScopedIds oids(old, l);
                const unsigned char *raw = reinterpret_cast<const unsigned char *>(oids.get());
                for (size_t i = 0; i < n; i++) {
                    idx_t id;
                    memcpy(&id, raw + i * sizeof id, sizeof id);
                    kept[l] += !dropped(id);
                }
            } else {
                kept[l] = n;
            }
            *removed += int64_t(n - kept[l]);
            lists[l].offset = off;
            lists[l].capacity = kept[l] + size_t(b->count[l]);
            lists[l].size = 0;
            off += lists[l].capacity * entry;
            total += lists[l].capacity;
        }
        release_pages(old);
        size_t totsize = off > 0 ? off : 8;
        if (ftruncate(b->fd, off_t(totsize)) != 0)
            return vk_fail(VK_EIO, "cannot size inverted lists file %s: %s", b->path.c_str(),
                           strerror(errno));
        int rc = VK_OK;
        /* the current lists, less what is dropped */
        std::vector<uint8_t> codes;
        std::vector<idx_t> ids;
        for (size_t l = 0; l < nlist && rc == VK_OK; l++) {
            size_t n = old ? old->list_size(l) : 0;
            if (kept[l] == 0)
                continue;
            InvertedLists::ScopedIds oids(old, l);
            InvertedLists::ScopedCodes ocodes(old, l);
            const unsigned char *raw = reinterpret_cast<const unsigned char *>(oids.get());
            codes.resize(kept[l] * cs);
            ids.resize(kept[l]);
            size_t k = 0;
            for (size_t i = 0; i < n; i++) {
                idx_t id;
                memcpy(&id, raw + i * sizeof id, sizeof id);
                if (dropped(id))
                    continue;
                memcpy(codes.data() + k * cs, ocodes.get() + i * cs, cs);
                ids[k++] = id;
            }
            OnDiskOneList &one = lists[l];
            rc = pwrite_all(b->fd, codes.data(), k * cs, one.offset, b->path);
            if (rc == VK_OK)
                rc = pwrite_all(b->fd, ids.data(), k * sizeof(idx_t), one.offset + one.capacity * cs,
                                b->path);
            one.size = k;
            if ((l & 63) == 63)
                release_pages(old);
        }
        release_pages(old);
        /* the new entries, a chunk of the spill at a time, grouped by list */
        const size_t rec = 2 * sizeof(int64_t) + cs;
        size_t chunk = std::max<size_t>(1024, (size_t(8) << 20) / rec), nnew = 0;
        for (int64_t c : b->count)
            nnew += size_t(c);
        chunk = std::max<size_t>(1, std::min(chunk, nnew));
        std::vector<uint8_t> buf(chunk * rec);
        std::vector<size_t> order(chunk), start(nlist + 1);
        if (rc == VK_OK && (fflush(b->spill) != 0 || fseek(b->spill, 0, SEEK_SET) != 0))
            rc = vk_fail(VK_EIO, "cannot read back a temporary file beside %s: %s", b->path.c_str(),
                         strerror(errno));
        while (rc == VK_OK) {
            size_t m = fread(buf.data(), rec, chunk, b->spill);
            if (m == 0)
                break;
            std::fill(start.begin(), start.end(), 0);
            auto list_of = [&](size_t i) {
                int64_t l;
                memcpy(&l, buf.data() + i * rec, sizeof l);
                return size_t(l);
            };
            for (size_t i = 0; i < m; i++)
                start[list_of(i) + 1]++;
            for (size_t l = 0; l < nlist; l++)
                start[l + 1] += start[l];
            std::vector<size_t> pos(start.begin(), start.end() - 1);
            for (size_t i = 0; i < m; i++)
                order[pos[list_of(i)]++] = i;
            for (size_t l = 0; l < nlist && rc == VK_OK; l++) {
                size_t a = start[l], e = start[l + 1];
                if (a == e)
                    continue;
                codes.resize((e - a) * cs);
                ids.resize(e - a);
                for (size_t j = a; j < e; j++) {
                    const uint8_t *r = buf.data() + order[j] * rec;
                    memcpy(&ids[j - a], r + sizeof(int64_t), sizeof(idx_t));
                    memcpy(codes.data() + (j - a) * cs, r + 2 * sizeof(int64_t), cs);
                }
                OnDiskOneList &one = lists[l];
                if (one.size + (e - a) > one.capacity)
                    rc = vk_fail(VK_ESTATE, "inverted list %zu of %s overflows its room", l,
                                 b->path.c_str());
                if (rc == VK_OK)
                    rc = pwrite_all(b->fd, codes.data(), (e - a) * cs, one.offset + one.size * cs,
                                    b->path);
                if (rc == VK_OK)
                    rc = pwrite_all(b->fd, ids.data(), (e - a) * sizeof(idx_t),
                                    one.offset + one.capacity * cs + one.size * sizeof(idx_t), b->path);
                one.size += e - a;
            }
            if (m < chunk)
                break;
        }
        if (rc == VK_OK && ferror(b->spill))
            rc = vk_fail(VK_EIO, "cannot read back a temporary file beside %s", b->path.c_str());
        if (rc == VK_OK && fsync(b->fd) != 0)
            rc = vk_fail(VK_EIO, "cannot write inverted lists file %s: %s", b->path.c_str(),
                         strerror(errno));
        if (rc)
            return rc;
        /* mapped read-only in place of the index's lists */
        auto od = std::make_unique<OnDiskInvertedLists>(nlist, cs, b->path.c_str());
        od->lists = lists;
        od->totsize = totsize;
        od->read_only = true;
        od->prefetch_nthread = 0;
        od->do_mmap();
        ivf->replace_invlists(od.release(), true);
        b->swapped = true;
        int64_t ntotal = int64_t(total);
        for (Index *ix = b->top;;) {
            ix->ntotal = ntotal;
            auto pt = dynamic_cast<IndexPreTransform *>(ix);
            if (!pt)
                break;
            ix = pt->index;
        }
        return VK_OK;
    } catch (const std::exception &e) {
        return fail("building the on-disk inverted lists failed", e.what());
    }
}

extern "C" void vk_faiss_ondisk_end(vk_ondisk_build *b)
{
    if (!b)
        return;
    if (b->spill)
        fclose(b->spill);
    /* a file never swapped in is nobody's */
    if (!b->swapped)
        unlink(b->path.c_str());
    if (b->fd >= 0)
        close(b->fd);
    delete b;
}
