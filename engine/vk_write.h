/*
 * vk_write.h: the write layer: batches of records and inserting them
 * (write_insert.c), deleting and updating (write_change.c).  Uses every
 * layer up to account.
 */
#ifndef VK_WRITE_H
#define VK_WRITE_H

#include "vk_account.h"

struct vk_batch {
    vk_db *db;
    int level;
    int ncols;
    i64 nrows;
    vk_rows *rows;        /* one row per record, db column order */
    vk_value *cur;        /* row being built */
    unsigned char *set;   /* which cells of cur were set */
    vk_buf scratch;       /* bytes of the row being built */
    vk_buf vecs;          /* decoded vectors (nrows x d floats) for the index */
    i64 d;
    i64 first_idx;        /* idx of the first row */
    i64 next_idx;         /* idx the next row must carry */
    int given_idx;        /* a row carried its idx (it cannot be numbered again) */
    char *blob;           /* the encoded vectors of the batch, one slot per row */
    size_t blob_cap;
};

/* sets a cell to a value as the table already stores it (a record
 * written again by an update), unchecked */
int vk_batch_set_stored(vk_batch *b, int col, const vk_value *v);
/* inside the caller's write transaction: numbers the rows, catches the
 * index up, writes the rows and adds the vectors to the attached index */
int vk_batch_write(vk_db *db, vk_batch *b);
/* after the transaction failed: takes the batch's vectors back out of the
 * index; keeps the failure's message (and code rc) */
void vk_batch_unwrite(vk_db *db, vk_batch *b, int rc);

#endif
