// The one C++ file of storage/: filtered search, which Debian's FAISS 1.7.3 C API lacks (it has
// no search parameters; DECISIONS.md §5). Exposed to C through st_internal.h. Every list is
// probed and non-members are skipped by the selector, so the result is exactly the best k
// among the filter's ids (for Flat codes), however narrow the filter.
// Thread safety: the index is only read (IndexIVF::search is const; nprobe comes from the
// parameters, not the index) and the selector and parameters live on this call's stack, so
// any number of threads may run this on one index at once (the shared index cache, st_cache.c).
#include <faiss/IndexIVF.h>
#include <faiss/impl/IDSelector.h>

#include <cstdio>
#include <exception>

extern "C" {
#include "st_internal.h"
}

extern "C" int st__faiss_search_filtered(FaissIndex *index, const float *query, int64_t k,
                                         const int64_t *ids, size_t n_ids, float *distances,
                                         int64_t *labels, char *msg, size_t msg_size)
{
    try {
        const auto *ivf =
            dynamic_cast<const faiss::IndexIVF *>(reinterpret_cast<const faiss::Index *>(index));
        if (!ivf) {
            std::snprintf(msg, msg_size, "filtered search needs an IVF index");
            return -1;
        }
        faiss::IDSelectorBatch selector(n_ids, reinterpret_cast<const faiss::Index::idx_t *>(ids));
        faiss::SearchParametersIVF params;
        params.sel = &selector;
        params.nprobe = ivf->nlist;
        ivf->search(1, query, k, distances, reinterpret_cast<faiss::Index::idx_t *>(labels),
                    &params);
        return 0;
    } catch (const std::exception &e) {
        std::snprintf(msg, msg_size, "%s", e.what());
    } catch (...) {
        std::snprintf(msg, msg_size, "unknown FAISS exception");
    }
    return -1;
}
