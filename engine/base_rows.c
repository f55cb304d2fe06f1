/* base_rows.c: a block of result rows that owns its text and blob bytes */
#include "vk_base.h"

#include <stdlib.h>
#include <string.h>

vk_rows *vk_rows_new(int ncols)
{
    vk_rows *r = vk_calloc(1, sizeof *r);
    if (r)
        r->ncols = ncols;
    return r;
}

int vk_rows_append(vk_rows *r, const vk_value *row)
{
    if (r->nrows == r->cap) {
        i64 cap = r->cap ? r->cap * 2 : 16;
        vk_value *c = vk_realloc(r->cells, sizeof(vk_value) * (size_t)(cap * r->ncols));
        if (!c)
            return VK_ENOMEM;
        r->cells = c;
        r->cap = cap;
    }
    vk_value *dst = r->cells + r->nrows * r->ncols;
    for (int i = 0; i < r->ncols; i++) {
        dst[i] = row[i];
        if (row[i].type == VK_TEXT || row[i].type == VK_BLOB) {
            /* offsets into the heap until the block is sealed */
            dst[i].s = (const char *)(uintptr_t)r->heap.len;
            if (vk_buf_add(&r->heap, row[i].s ? row[i].s : "", row[i].len) ||
                vk_buf_add(&r->heap, "", 1))
                return VK_ENOMEM;
        }
    }
    r->nrows++;
    return VK_OK;
}

void vk_rows_seal(vk_rows *r)
{
    for (i64 i = 0; i < r->nrows * r->ncols; i++) {
        vk_value *v = &r->cells[i];
        if (v->type == VK_TEXT || v->type == VK_BLOB)
            v->s = r->heap.p + (uintptr_t)v->s;
    }
}

int64_t vk_rows_count(const vk_rows *r) { return r ? r->nrows : 0; }
int vk_rows_ncols(const vk_rows *r) { return r ? r->ncols : 0; }

const vk_value *vk_rows_get(const vk_rows *r, int64_t row, int col)
{
    return &r->cells[row * r->ncols + col];
}

int vk_rows_vectors(const vk_rows *r, int col, int64_t d, float *out)
{
    for (i64 i = 0; i < r->nrows; i++) {
        const vk_value *v = vk_rows_get(r, i, col);
        if (v->type != VK_BLOB && v->type != VK_TEXT)
            return vk_fail(VK_ECODEC, "corrupted vector: row %lld holds no blob", (long long)i);
        int rc = vk_decode(v->s, v->len, out + i * d, d);
        if (rc)
            return rc;
    }
    return VK_OK;
}

void vk_rows_free(vk_rows *r)
{
    if (!r)
        return;
    free(r->cells);
    vk_buf_free(&r->heap);
    free(r);
}
