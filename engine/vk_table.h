/*
 * vk_table.h: the table layer: the handle bound to a table (table_handle.c),
 * reading its records (table_read.c) and the deleted idx values every
 * handle sees (table_tomb.c).  Uses base, faiss and store.
 */
#ifndef VK_TABLE_H
#define VK_TABLE_H

#include "vk_faiss.h"
#include "vk_store.h"

/* VK_ESTATE "no table ..." unless the handle is bound to a table: the one
 * place that check and its message live */
int vk_db_need_table(const vk_db *db);

/* ---------- reading (table_read.c) ---------- */
/* as vk_db_fetch_vectors; with found, a missing row gives found[i] = 0
 * (and zeros) instead of an error */
int vk_db_fetch_vectors_found(vk_db *db, const i64 *ids, i64 n, float *out, unsigned char *found);
/* the stored vectors (rows of idx, vector: blobs as stored, not decoded) of
 * ids (sorted, unique); row_of[i]: the row of ids[i], -1 when it is missing */
int vk_db_fetch_stored(vk_db *db, const i64 *ids, i64 n, vk_rows **rows, i64 *row_of);
/* live idx values >= from, in order */
int vk_db_live_ids_from(vk_db *db, i64 from, i64 **out, i64 *n);

/* ---------- deleted records (table_tomb.c) ---------- */
#define VK_TOMB_SUFFIX "__vekterdb_deleted"
/* reads what this and other handles (processes) deleted since the last call */
int vk_tomb_refresh(vk_db *db);
/* forgets the cache: the next refresh reads every tombstone again */
void vk_tomb_reset(vk_db *db);
void vk_tomb_free(vk_db *db);
/* after a refresh: every deleted idx, or (active_only) those the attached
 * index may still hold */
void vk_tomb_set(const vk_db *db, int active_only, vk_idset *out);
/* largest deleted idx, -1 when none (after a refresh) */
i64 vk_tomb_max(const vk_db *db);
/* the attached index no longer holds these ids */
int vk_tomb_purge(vk_db *db, const i64 *ids, i64 n);
/* a new index was attached: reads which deleted ids it holds (explicit-id
 * indexes) or takes them all as held (the others) */
int vk_tomb_attach(vk_db *db);

#endif
