/*
 * vk_search.h: the search layer: the filtered-search planner
 * (search_plan.c) and the searches with their exact rerank
 * (search_rerank.c).  Uses every layer up to account.
 */
#ifndef VK_SEARCH_H
#define VK_SEARCH_H

#include "vk_account.h"

/* nq x kk FAISS candidates (-1 padded) that the chosen plan proposes;
 * dead: ids to leave out on top of the plan's set (sorted, may be NULL) */
int vk_plan_candidates(vk_db *db, const float *q, i64 nq, i64 kk, const vk_search_opts *o,
                       const i64 *dead, i64 ndead, vk_metric metric, i64 *labels,
                       vk_search_stats *st);
/* the ids (sorted, unique) that match the filter, into ok (room for n) */
int vk_filter_keep(vk_filter *f, const i64 *ids, i64 n, i64 *ok, i64 *nok);

#endif
