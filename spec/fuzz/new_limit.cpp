// new_limit.cpp: operator new for fuzz_index that refuses (std::bad_alloc)
// any single allocation over 16 MiB (the seeds' index files are a few kB).
// FAISS's reader trusts the sizes an index file states and sizes its vectors
// from them before reading; a mutated size would otherwise have the process
// allocate (and zero) gigabytes, and FAISS 1.7.3 leaks what it had read when
// a later read fails (read_InvertedLists), so the memory piles up over the
// run.  With this, such a file fails to load with an error, as it does in a
// process whose allocation fails; libFuzzer's -malloc_limit_mb and
// -rss_limit_mb stay as the net below it.
// Every form of new and delete that FAISS's non-aligned allocations use is
// replaced, so the pairs stay matched for AddressSanitizer.
#include <cstdlib>
#include <new>

namespace {
const std::size_t limit = std::size_t(16) << 20;
bool limited = false;   // only while the harness reads an index: libFuzzer allocates more

void *allocate(std::size_t n)
{
    if (limited && n > limit)
        return nullptr;
    return std::malloc(n ? n : 1);
}
} // namespace

extern "C" void fuzz_limit_new(int on) { limited = on != 0; }

void *operator new(std::size_t n)
{
    void *p = allocate(n);
    if (!p)
        throw std::bad_alloc();
    return p;
}

void *operator new[](std::size_t n)
{
    void *p = allocate(n);
    if (!p)
        throw std::bad_alloc();
    return p;
}

void *operator new(std::size_t n, const std::nothrow_t &) noexcept { return allocate(n); }
void *operator new[](std::size_t n, const std::nothrow_t &) noexcept { return allocate(n); }
void operator delete(void *p) noexcept { std::free(p); }
void operator delete[](void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }
void operator delete[](void *p, std::size_t) noexcept { std::free(p); }
void operator delete(void *p, const std::nothrow_t &) noexcept { std::free(p); }
void operator delete[](void *p, const std::nothrow_t &) noexcept { std::free(p); }
