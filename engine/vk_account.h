/*
 * vk_account.h: the account layer: the index attached to the table, what
 * it accounts for against what other handles committed, catching up, its
 * runtime parameters and file (account_index.c); the index files a table
 * trusts, with their generations (account_trust.c).  Uses base, faiss,
 * store and table.
 */
#ifndef VK_ACCOUNT_H
#define VK_ACCOUNT_H

#include "vk_table.h"

/* VK_ESTATE "no FAISS index ..." unless an index is attached */
int vk_db_need_index(const vk_db *db);
/* Brings the attached index up to what other handles committed: adds the
 * records from db->covered to the table's next idx (live ones for
 * explicit-id indexes; a zero vector in a deleted record's place for the
 * others, its tombstone keeps it out of searches).  A mapped index cannot
 * take vectors: with reload it is replaced by a newer generation of its
 * file when one is recorded, and otherwise left as it is; searches then
 * scan the records above db->covered exactly. */
int vk_db_catch_up(vk_db *db, i64 batch_size, vk_progress_fn fn, void *ud, int reload,
                   i64 *added);

/* the attached index's lists were moved to disk (a new generation of its
 * lists file): it is read-only from now on and accounts for 0..covered-1 */
void vk_db_index_moved(vk_db *db, i64 covered);

/* vk_db_read_index, also giving the generation (seq) the file's digest
 * was recorded with */
int vk_db_read_index_gen(vk_db *db, const char *path, int mmap, int trust, vk_index **out, i64 *gen);
/* the newest generation recorded for a file name, 0 when none */
int vk_db_index_file_gen(vk_db *db, const char *path, i64 *gen);

/* ---------- search nodes (account_follow.c) ---------- */
/* inside the write transaction that records a save's digest: when the
 * table keeps its index files in the database, stores fd's bytes as that
 * generation's object and removes the objects beyond the newest kept */
int vk_db_store_index_object(vk_db *db, int fd, i64 seq, const char *hex, i64 bytes, i64 ntotal);
/* before a search: catches up with what others committed, unless the
 * handle follows the table and no notice arrived since it last did */
int vk_db_refresh(vk_db *db);

#endif
