/*
 * lvk_bulk.c (proposed for bindings/): the database handle's insert_matrix,
 * records from a matrix and column arrays with no Lua table per record.
 *
 * Not compiled by the Makefile from here (bench/proposed/): it needs two
 * lines in bindings/ first, see bench/README.md ("A bulk insert path"):
 *   lvk.h:      vk_db *lvk_checkdb(lua_State *L, int idx);
 *               int lvk_db_insert_matrix(lua_State *L);
 *   lvk_db.c:   checkdb made public as lvk_checkdb, and
 *               {"insert_matrix", lvk_db_insert_matrix} in db_methods.
 * The bench measures the engine path this runs (vkbench.engine_bulk); the
 * binding adds one lua_rawgeti per cell.
 */
#include "lvk.h"

#include <stdlib.h>
#include <string.h>

static void free_batch(void *p) { vk_batch_free(p); }

/* the value at the top of the stack as a cell of column col; raises on a
 * type no column can hold */
static void cell_value(lua_State *L, const vk_column *col, int64_t recno, vk_value *v)
{
    int64_t i;
    switch (lua_type(L, -1)) {
    case LUA_TNIL: *v = (vk_value){.type = VK_NULL}; break;
    case LUA_TBOOLEAN: *v = (vk_value){.type = VK_BOOL, .i = lua_toboolean(L, -1)}; break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, -1) && lvk_tointeger(L, -1, &i))
            *v = (vk_value){.type = VK_INT, .i = i};
        else if (col->type == VK_INT)
            lvk_errorf(L, "record %lld: column '%s' holds integer values, got %f", (long long)recno,
                       col->name, lua_tonumber(L, -1));
        else
            *v = (vk_value){.type = VK_REAL, .r = lua_tonumber(L, -1)};
        break;
    case LUA_TSTRING:
        v->type = VK_TEXT;
        v->s = lua_tolstring(L, -1, &v->len);   /* held by the column's array */
        break;
    default:
        lvk_errorf(L, "record %lld: column '%s' cannot hold a %s", (long long)recno, col->name,
                   luaL_typename(L, -1));
    }
}

/* h:insert_matrix(matrix, first_idx, names, arrays, batch_size, level) -> count
 *   matrix     a vekterdb.Matrix (or Vector): one record per row
 *   first_idx  idx of the first row, or nil for the table's next idx
 *   names      column names; arrays: for each name an array of one value
 *              per row (a hole is NULL)
 * batch_size rows per transaction, as insert(); with an index attached the
 * vectors go into it batch by batch, as insert() does. */
int lvk_db_insert_matrix(lua_State *L)
{
    vk_db *db = lvk_checkdb(L, 1);
    lvk_mat *m = lvk_tomat(L, 2);
    luaL_argexpected(L, m != NULL, 2, "vekterdb.matrix");
    int has_first = !lua_isnoneornil(L, 3);
    int64_t first = 0, batch_size, level;
    if (has_first && (!lvk_tointeger(L, 3, &first) || first < 0))
        return luaL_argerror(L, 3, "first_idx must be a non-negative integer");
    luaL_checktype(L, 4, LUA_TTABLE);
    luaL_checktype(L, 5, LUA_TTABLE);
    if (!lvk_tointeger(L, 6, &batch_size) || batch_size <= 0)
        return luaL_argerror(L, 6, "batch_size must be a positive integer");
    if (!lvk_tointeger(L, 7, &level))
        return luaL_argerror(L, 7, "compression_level must be an integer");
    int ncols = (int)lua_rawlen(L, 4);
    if ((int)lua_rawlen(L, 5) != ncols)
        return luaL_argerror(L, 5, "one array of values per column name");
    lua_settop(L, 7);
    int *cols = lua_newuserdatauv(L, sizeof(int) * (size_t)(ncols + 1), 0);   /* 8 */
    int idx_col = vk_db_column_index(db, vk_db_idx_name(db));
    for (int c = 0; c < ncols; c++) {
        lua_rawgeti(L, 4, c + 1);
        const char *name = lua_tostring(L, -1);
        if (!name)
            return lvk_errorf(L, "column name %d is not a string", c + 1);
        cols[c] = vk_db_column_index(db, name);
        if (cols[c] < 0)
            return lvk_errorf(L, "unknown column '%s' in table %s", name, vk_db_table(db));
        if (cols[c] == idx_col || vk_db_column(db, cols[c])->is_vector)
            return lvk_errorf(L, "column '%s' comes from first_idx or the matrix, not an array", name);
        lua_pop(L, 1);
        lua_rawgeti(L, 5, c + 1);
        if (!lua_istable(L, -1))
            return lvk_errorf(L, "the values of column '%s' must be an array", name);
        lua_pop(L, 1);
    }
    void **bslot = lvk_box(L, free_batch);   /* 9 */
    if (!(*bslot = vk_batch_new(db, (int)level)))
        return lvk_error(L);
    vk_batch *b = *bslot;
    int64_t total = 0;
    for (int64_t r = 0; r < m->n; r++) {
        vk_batch_begin_row(b);
        int rc = VK_OK;
        if (has_first) {
            vk_value v = {.type = VK_INT, .i = first + r};
            rc = vk_batch_set(b, idx_col, &v);
        }
        for (int c = 0; rc == VK_OK && c < ncols; c++) {
            lua_rawgeti(L, 5, c + 1);
            lua_rawgeti(L, -1, (lua_Integer)r + 1);
            vk_value v;
            cell_value(L, vk_db_column(db, cols[c]), r + 1, &v);
            rc = vk_batch_set(b, cols[c], &v);   /* bytes are copied */
            lua_pop(L, 2);
        }
        if (rc == VK_OK)
            rc = vk_batch_set_vector(b, m->data + r * m->d, m->d);
        if (rc == VK_OK)
            rc = vk_batch_end_row(b);   /* aborts the row itself on failure */
        else
            vk_batch_abort_row(b);
        if (rc)
            return lvk_errorf(L, "record %lld: %s", (long long)r + 1, vk_errmsg());
        if (vk_batch_rows(b) >= batch_size || r == m->n - 1) {
            int64_t n = vk_batch_rows(b);
            rc = vk_db_insert(db, b);
            vk_batch_clear(b);
            if (rc)
                return lvk_error(L);
            total += n;
        }
    }
    lvk_box_release(L, 9);
    lvk_pushint64(L, total);
    return 1;
}
