/* lvk_db.c: the database handle and its cursors */
#include "lvk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lvk_cursor lvk_cursor;

typedef struct lvk_db {
    vk_db *db;
    lvk_cursor *cursors;   /* open cursors, closed with the handle */
    int busy;              /* its methods running now, nested ones included */
    const char *running;   /* the outermost one's name while busy */
    char *warning;         /* a failed index save after committed rows, until read */
} lvk_db;

struct lvk_cursor {
    lvk_db *owner;
    vk_cursor *c;
    vk_rows *rows;         /* current block */
    int64_t pos;
    int *cols;             /* db column numbers */
    int ncols;
    int orphaned;          /* its database was closed under it */
    int busy;              /* next() is running */
    lvk_cursor *next;
};

#define CURSOR_BLOCK 256

/* ---------- strings handed to C: no embedded NUL ---------- */

static const char *cstr(lua_State *L, int idx, const char *what)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (!s)
        lvk_errorf(L, "%s must be a string, got %s", what, luaL_typename(L, idx));
    if (strlen(s) != len)
        lvk_errorf(L, "%s contains a NUL byte", what);
    return s;
}

static const char *optcstr(lua_State *L, int idx, const char *what)
{
    return lua_isnoneornil(L, idx) ? NULL : cstr(L, idx, what);
}

/* ---------- handle ---------- */

static lvk_db *toh(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, LVK_DB);
}

static vk_db *checkdb(lua_State *L, int idx)
{
    lvk_db *h = toh(L, idx);
    if (!h->db)
        lvk_errorc(L, "state", "attempt to use a closed database");
    return h->db;
}

static void cursor_release(lvk_cursor *c)
{
    vk_rows_free(c->rows);
    c->rows = NULL;
    vk_cursor_close(c->c);
    c->c = NULL;
    if (c->owner) {
        for (lvk_cursor **p = &c->owner->cursors; *p; p = &(*p)->next)
            if (*p == c) {
                *p = c->next;
                break;
            }
        c->owner = NULL;
    }
    free(c->cols);
    c->cols = NULL;
}

/* ---------- the busy guard ----------
 * A method can run Lua code while it holds engine state: a records iterator,
 * a progress function, a record's or an options table's metamethods, a
 * finalizer run by an allocation.  That code may close the handle or call it
 * again.  So every method runs with the handle marked busy, in a protected
 * call that clears the mark however it ends; close refuses a busy handle and
 * the other methods refuse to run inside one (info and columns, which only
 * read what the handle already holds, and a cursor's next may). */

/* the bad argument arg of the running method, worded as luaL_argerror words
 * a method's (Lua cannot name a function run by lua_pcall) */
static int arg_error(lua_State *L, int arg, const char *msg)
{
    lvk_db *h = toh(L, 1);
    return lvk_errorf(L, "bad argument #%d to '%s' (%s)", arg - 1, h->running ? h->running : "?", msg);
}

static void check_table(lua_State *L, int arg)
{
    if (!lua_istable(L, arg)) {
        char msg[64];
        snprintf(msg, sizeof msg, "table expected, got %s", luaL_typename(L, arg));
        arg_error(L, arg, msg);
    }
}

/* calls the function at upvalue fn with this call's arguments, in a
 * protected call, while h is busy with name; returns lua_pcall's status
 * with the results (or the error) above the arguments */
static int call_busy(lua_State *L, lvk_db *h, const char *name, int fn)
{
    int n = lua_gettop(L);
    lua_pushvalue(L, fn);
    for (int i = 1; i <= n; i++)   /* the arguments stay below: h is kept alive */
        lua_pushvalue(L, i);
    if (h->busy++ == 0)
        h->running = name;
    int rc = lua_pcall(L, n, LUA_MULTRET, 0);
    if (--h->busy == 0)
        h->running = NULL;
    return rc;
}

static int h_close(lua_State *L);
static int h_info(lua_State *L);
static int h_columns(lua_State *L);
static int h_index(lua_State *L);
static int h_index_file(lua_State *L);
static int h_params(lua_State *L);
static int h_warning(lua_State *L);
static int h_insert(lua_State *L);
static int h_insert_matrix(lua_State *L);
static int h_update(lua_State *L);

/* methods that only read what the handle holds: callbacks may call them */
static int reads_only(lua_CFunction f)
{
    return f == h_info || f == h_columns || f == h_index || f == h_index_file || f == h_params ||
           f == h_warning;
}

/* After a write that may have added vectors, however it ended: the engine
 * saves the index file when it changed.  The rows are committed, so a
 * failed save is a warning for h:warning(), never the call's error (a
 * caller would insert the rows again). */
static void save_after(lvk_db *h, lua_CFunction f)
{
    if (h->busy || !h->db || (f != h_insert && f != h_insert_matrix && f != h_update))
        return;
    if (vk_db_save_index(h->db) == VK_OK)
        return;
    free(h->warning);
    h->warning = strdup(vk_errmsg());
}

/* every method of the handle: upvalues are the method and its luaL_Reg */
static int db_call(lua_State *L)
{
    const luaL_Reg *m = lua_touserdata(L, lua_upvalueindex(2));
    lvk_db *h = toh(L, 1);
    if (m->func == h_close)
        return h_close(L);
    if (h->busy && !reads_only(m->func)) {
        lua_pushfstring(L, "cannot use the database while %s is running (called from its callback)",
                        h->running);
        lvk_pusherror(L, "state", NULL, lua_tostring(L, -1));
        lvk_name_error(L, m->name);
        return lua_error(L);
    }
    int n = lua_gettop(L);
    int rc = call_busy(L, h, m->name, lua_upvalueindex(1));
    save_after(h, m->func);
    if (rc) {
        lvk_name_error(L, m->name);   /* (the Lua module names it after its public call) */
        return lua_error(L);
    }
    return lua_gettop(L) - n;
}

/* close, __close and __gc (which never meets a busy handle: a running
 * method holds it on the stack) */
static int h_close(lua_State *L)
{
    lvk_db *h = toh(L, 1);
    if (h->busy)
        return lvk_errorc(L, "state", "close: cannot close the database while %s is running", h->running);
    while (h->cursors) {
        h->cursors->orphaned = 1;
        cursor_release(h->cursors);
    }
    vk_db_close(h->db);
    h->db = NULL;
    free(h->warning);
    h->warning = NULL;
    return 0;
}

static int h_tostring(lua_State *L)
{
    lvk_db *h = toh(L, 1);
    if (!h->db)
        lua_pushliteral(L, LVK_DB " (closed)");
    else
        lua_pushfstring(L, LVK_DB "(%s, %s): %p", vk_db_driver(h->db),
                        vk_db_table(h->db) ? vk_db_table(h->db) : "-", (void *)h);
    return 1;
}

/* open(url, { "key=value", ... }) */
static int h_open(lua_State *L)
{
    const char *url = cstr(L, 1, "the database URL");
    int nopts = lua_istable(L, 2) ? (int)lua_rawlen(L, 2) : 0;
    const char **opts = lua_newuserdatauv(L, sizeof(char *) * (size_t)(nopts + 1), 0);
    for (int i = 0; i < nopts; i++) {
        lua_rawgeti(L, 2, i + 1);
        opts[i] = cstr(L, -1, "a connection option");
        lua_pop(L, 1);   /* the string stays alive in the table */
    }
    lvk_db *h = lua_newuserdatauv(L, sizeof *h, 0);
    memset(h, 0, sizeof *h);   /* closed until connected */
    luaL_getmetatable(L, LVK_DB);
    lua_setmetatable(L, -2);
    /* the database refusing to open is a connection error: an unreachable
     * server, a refused login, an SQLite file that cannot be opened */
    int rc = vk_db_open(&h->db, url, opts, nopts);
    if (rc == VK_ESQL)
        return lvk_errorc(L, "connection", "%s", vk_errmsg());
    if (rc)
        return lvk_error(L);
    return 1;
}

static int opt_bool(lua_State *L, int t, const char *k, int dflt)
{
    lua_getfield(L, t, k);
    int v = lua_isnil(L, -1) ? dflt : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* use_table(schema|nil, table, idx_name, vector_name, { {name=, type=, ...}, ... }) */
/* table_exists(schema, table): asked before use_table, which creates */
static int h_table_exists(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    int exists = 0;
    if (vk_db_table_exists(db, optcstr(L, 2, "the schema name"), cstr(L, 3, "the table name"), &exists))
        return lvk_error(L);
    lua_pushboolean(L, exists);
    return 1;
}

static int h_use_table(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    const char *schema = optcstr(L, 2, "the schema name");
    const char *table = cstr(L, 3, "the table name");
    const char *idx_name = cstr(L, 4, "idx_name");
    const char *vector_name = cstr(L, 5, "vector_name");
    int n = lua_istable(L, 6) ? (int)lua_rawlen(L, 6) : 0;
    vk_column *cols = lua_newuserdatauv(L, sizeof(vk_column) * (size_t)(n + 1), 0);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 6, i + 1);
        int t = lua_gettop(L);
        if (!lua_istable(L, t))
            return lvk_errorf(L, "column %d must be a table", i + 1);
        lua_getfield(L, t, "name");
        if (lua_isnil(L, -1))
            return lvk_errorf(L, "column %d has no name", i + 1);
        cols[i].name = cstr(L, -1, "a column name");
        lua_getfield(L, t, "type");
        const char *ty = lua_tostring(L, -1);
        if (vk_column_parse_type(&cols[i], ty ? ty : "text"))
            return lvk_error(L);
        lua_pop(L, 1);
        lua_getfield(L, t, "length");   /* { type = "varchar", length = n }, as columns() reads */
        if (!lua_isnil(L, -1)) {
            int64_t len = 0;
            if (!lvk_tointeger(L, -1, &len) || len <= 0 || len > 10485760 || cols[i].type != VK_TEXT ||
                cols[i].kind != VK_KIND_PLAIN)
                return lvk_errorf(L, "column '%s': length must be a positive integer, for a text column",
                                  cols[i].name);
            cols[i].length = (int)len;
        }
        lua_pop(L, 1);
        cols[i].unique = opt_bool(L, t, "unique", 0);
        cols[i].nullable = opt_bool(L, t, "nullable", 1);
        cols[i].index = opt_bool(L, t, "index", 0);
        cols[i].primary = cols[i].is_vector = 0;
        lua_settop(L, t);   /* the name string stays referenced by the column table */
        lua_pop(L, 1);
    }
    if (vk_db_use_table(db, schema, table, idx_name, vector_name, cols, n))
        return lvk_error(L);
    return 0;
}

static int h_columns(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    int n = vk_db_ncolumns(db);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        const vk_column *c = vk_db_column(db, i);
        lua_createtable(L, 0, 6);
        lua_pushstring(L, c->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, vk_column_type_name(c));
        lua_setfield(L, -2, "type");
        if (c->length > 0) {
            lua_pushinteger(L, c->length);
            lua_setfield(L, -2, "length");
        }
        lua_pushboolean(L, c->unique || c->primary);
        lua_setfield(L, -2, "unique");
        lua_pushboolean(L, c->nullable);
        lua_setfield(L, -2, "nullable");
        lua_pushboolean(L, c->index || c->primary);
        lua_setfield(L, -2, "index");
        if (c->primary) {
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "primary_key");
        }
        if (c->is_vector) {
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "vector");
        }
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int h_info(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    lua_createtable(L, 0, 5);
    lua_pushstring(L, vk_db_driver(db));
    lua_setfield(L, -2, "driver");
    lua_pushstring(L, vk_db_placeholder(db));
    lua_setfield(L, -2, "placeholder");
    char quote = vk_db_quote(db);
    lua_pushlstring(L, &quote, 1);
    lua_setfield(L, -2, "quote");
    lua_pushboolean(L, vk_db_table_existed(db));
    lua_setfield(L, -2, "existed");
    return 1;
}

static int push_i64_or_error(lua_State *L, int64_t v)
{
    if (v < 0)
        return lvk_error(L);
    lvk_pushint64(L, v);
    return 1;
}

static int h_dim(lua_State *L) { return push_i64_or_error(L, vk_db_dim(checkdb(L, 1))); }
static int h_count(lua_State *L) { return push_i64_or_error(L, vk_db_count(checkdb(L, 1))); }
static int h_next_idx(lua_State *L) { return push_i64_or_error(L, vk_db_next_idx(checkdb(L, 1))); }

static int h_find_gap(lua_State *L)
{
    int64_t gap;
    if (vk_db_find_gap(checkdb(L, 1), &gap))
        return lvk_error(L);
    if (gap < 0)
        lua_pushnil(L);
    else
        lvk_pushint64(L, gap);
    return 1;
}

/* attach(index or nil, path or nil): pairs an index with the table; path
 * is the file it is saved to */
static int h_attach(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    if (!lua_isnoneornil(L, 2) && !luaL_testudata(L, 2, LVK_INDEX)) {
        char msg[64];
        snprintf(msg, sizeof msg, LVK_INDEX " expected, got %s", luaL_typename(L, 2));
        return arg_error(L, 2, msg);
    }
    vk_index *ix = lua_isnoneornil(L, 2) ? NULL : lvk_checkindex(L, 2);
    const char *path = lua_isnoneornil(L, 3) ? NULL : cstr(L, 3, "the index file name");
    if (vk_db_attach(db, ix, path))
        return lvk_error(L);
    return 0;
}

/* warning() -> what the last write left undone (its index file could not
 * be saved after the rows were committed), once; nil when nothing */
static int h_warning(lua_State *L)
{
    lvk_db *h = toh(L, 1);
    if (!h->warning) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushstring(L, h->warning);
    free(h->warning);
    h->warning = NULL;
    return 1;
}

/* open_index(path, mmap, trust) -> index: reads a file the table trusts
 * and attaches it with its path */
static int h_open_index(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    const char *path = cstr(L, 2, "the index file name");
    if (vk_db_open_index(db, path, lua_toboolean(L, 3), lua_toboolean(L, 4)))
        return lvk_error(L);
    if (!vk_index_metric_supported(vk_db_index(db))) {
        vk_db_attach(db, NULL, NULL);
        return lvk_errorf(L, "index file %s uses a metric other than inner product or L2", path);
    }
    lvk_pushindex_of(L, vk_db_index(db));
    return 1;
}

/* index() -> the attached index, or nil */
static int h_index(lua_State *L)
{
    vk_index *ix = vk_db_index(checkdb(L, 1));
    if (ix)
        lvk_pushindex_of(L, ix);
    else
        lua_pushnil(L);
    return 1;
}

/* set_params(s): runtime parameters that stay (see vk_db_set_params) */
static int h_set_params(lua_State *L)
{
    if (vk_db_set_params(checkdb(L, 1), cstr(L, 2, "the parameters")))
        return lvk_error(L);
    return 0;
}

static int h_params(lua_State *L)
{
    lua_pushstring(L, vk_db_params(checkdb(L, 1)));
    return 1;
}

/* index_file() -> the attached index's file, or nil */
static int h_index_file(lua_State *L)
{
    const char *p = vk_db_index_path(checkdb(L, 1));
    if (p)
        lua_pushstring(L, p);
    else
        lua_pushnil(L);
    return 1;
}

/* read_index(path, mmap, trust): an index file this table saved (or trusts) */
static int h_read_index(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    const char *path = cstr(L, 2, "the index file name");
    vk_index *ix;
    if (vk_db_read_index(db, path, lua_toboolean(L, 3), lua_toboolean(L, 4), &ix))
        return lvk_error(L);
    return lvk_push_read_index(L, ix, path);
}

/* write_index(path): saves the attached index, recording its digest */
static int h_write_index(lua_State *L)
{
    if (vk_db_write_index(checkdb(L, 1), cstr(L, 2, "the index file name")))
        return lvk_error(L);
    return 0;
}

/* ---------- search nodes ---------- */

/* keep_index_objects(n): every save keeps the newest n generations in the database */
static int h_keep_index_objects(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    if (vk_db_keep_index_objects(db, (int64_t)n))
        return lvk_error(L);
    return 0;
}

/* follow(cache_dir) -> index: the newest generation kept in the database */
static int h_follow(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    if (vk_db_follow(db, cstr(L, 2, "the cache directory")))
        return lvk_error(L);
    if (!vk_index_metric_supported(vk_db_index(db))) {
        vk_db_attach(db, NULL, NULL);
        return lvk_errorf(L, "the index file kept in the database uses a metric other than inner "
                          "product or L2");
    }
    lvk_pushindex_of(L, vk_db_index(db));
    return 1;
}

/* wait_for_changes(ms) -> whether a change arrived (and was caught up with) */
static int h_wait_for_changes(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    lua_Integer ms = luaL_checkinteger(L, 2);
    int changed = 0;
    if (vk_db_wait_for_changes(db, ms > 0x7fffffff ? 0x7fffffff : (int)ms, &changed))
        return lvk_error(L);
    lua_pushboolean(L, changed);
    return 1;
}

/* generation() -> the generation of the file the attached index came from, 0 */
static int h_generation(lua_State *L)
{
    lvk_pushint64(L, vk_db_index_generation(checkdb(L, 1)));
    return 1;
}

/* ---------- values ---------- */

static int col_of(lua_State *L, vk_db *db, const char *name)
{
    int c = vk_db_column_index(db, name);
    if (c < 0)
        lvk_errorf(L, "unknown column '%s' in table %s", name, vk_db_table(db));
    return c;
}

/* column numbers from an array of names, kept in a box */
static int *checkcols(lua_State *L, vk_db *db, int idx, int *n)
{
    *n = lua_istable(L, idx) ? (int)lua_rawlen(L, idx) : 0;
    int *cols = lua_newuserdatauv(L, sizeof(int) * (size_t)(*n + 1), 0);
    for (int i = 0; i < *n; i++) {
        lua_rawgeti(L, idx, i + 1);
        const char *name = cstr(L, -1, "a column name");
        cols[i] = col_of(L, db, name);
        lua_pop(L, 1);
    }
    return cols;
}

/* ---------- values: blobs, JSON, conversions ---------- */

/* vekterdb.blob(s): bytes a query binds as a BLOB (bytea), never as text */
typedef struct blob {
    size_t len;
    char bytes[];
} blob;

static void push_blob(lua_State *L, const char *s, size_t len)
{
    blob *b = lua_newuserdatauv(L, sizeof(blob) + len, 0);
    b->len = len;
    memcpy(b->bytes, s, len);
    luaL_getmetatable(L, LVK_BLOB);
    lua_setmetatable(L, -2);
}

/* blob(s | blob) -> blob */
static int h_blob(lua_State *L)
{
    blob *b = luaL_testudata(L, 1, LVK_BLOB);
    if (b) {
        lua_settop(L, 1);
        return 1;
    }
    if (lua_type(L, 1) != LUA_TSTRING)
        return lvk_errorf(L, "blob: expected a string, got %s", luaL_typename(L, 1));
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    push_blob(L, s, len);
    return 1;
}

static int blob_bytes(lua_State *L)
{
    blob *b = luaL_checkudata(L, 1, LVK_BLOB);
    lua_pushlstring(L, b->bytes, b->len);
    return 1;
}

static int blob_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)((blob *)luaL_checkudata(L, 1, LVK_BLOB))->len);
    return 1;
}

static int blob_tostring(lua_State *L)
{
    blob *b = luaL_checkudata(L, 1, LVK_BLOB);
    lua_pushfstring(L, LVK_BLOB "(%d bytes)", (int)b->len);
    return 1;
}

/* Replaces the table on top of the stack with its JSON text (lua-cjson's
 * encode, looked up once); returns 0 with a message there instead when it
 * cannot. */
static int json_encode(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "vekterdb.json_encode");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_getglobal(L, "require");
        lua_pushstring(L, "cjson");
        if (lua_pcall(L, 1, 1, 0) != 0 || !lua_istable(L, -1)) {
            lua_pop(L, 1);
            lua_pushstring(L, "a table needs lua-cjson, which is not installed: give JSON text");
            lua_replace(L, -2);
            return 0;
        }
        lua_getfield(L, -1, "encode");
        lua_replace(L, -2);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, "vekterdb.json_encode");
    }
    lua_pushvalue(L, -2);
    int ok = lua_pcall(L, 1, 1, 0) == 0 && lua_type(L, -1) == LUA_TSTRING;
    if (!ok && lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        lua_pushstring(L, "cjson.encode returned no text");
    }
    lua_replace(L, -2);
    return ok;
}

static void push_cell(lua_State *L, vk_db *db, int col, const vk_value *v)
{
    const vk_column *c = vk_db_column(db, col);
    if (c->is_vector && (v->type == VK_BLOB || v->type == VK_TEXT)) {
        int64_t d = vk_decoded_dim(v->s, v->len);
        if (d <= 0)
            lvk_errorc(L, "corrupt", "corrupted vector: the stored bytes are not one zstd frame of float32 values");
        lvk_mat *m = lvk_newmat(L, 1, d, 1);
        if (vk_decode(v->s, v->len, m->data, d))
            lvk_error(L);
        return;
    }
    char buf[VK_VALUE_BUF];
    vk_value read;
    vk_value_read(c, v, &read, buf);   /* times in one form, JSON numbers as JSON text */
    v = &read;
    switch (v->type) {
    case VK_INT:
        if (c->type == VK_BOOL)
            lua_pushboolean(L, v->i != 0);
        else
            lvk_pushint64(L, v->i);
        break;
    case VK_BOOL: lua_pushboolean(L, v->i != 0); break;
    case VK_REAL: lua_pushnumber(L, v->r); break;
    case VK_TEXT:
    case VK_BLOB: lua_pushlstring(L, v->s, v->len); break;
    default: lua_pushnil(L);
    }
}

/* sets t[name] for cols[0..n) of row r, whose cells start at column off */
static void set_record(lua_State *L, vk_db *db, const vk_rows *rows, int64_t r, int off,
                       const int *cols, int n)
{
    for (int i = 0; i < n; i++) {
        push_cell(L, db, cols[i], vk_rows_get(rows, r, off + i));
        lua_setfield(L, -2, vk_db_column(db, cols[i])->name);
    }
}

/* a Lua value as a bound query parameter; strings stay on the stack */
static void to_value(lua_State *L, int idx, vk_value *v, const char *what)
{
    int64_t i;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: *v = (vk_value){.type = VK_NULL}; break;
    case LUA_TBOOLEAN: *v = (vk_value){.type = VK_BOOL, .i = lua_toboolean(L, idx)}; break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx) && lvk_tointeger(L, idx, &i))
            *v = (vk_value){.type = VK_INT, .i = i};
        else
            *v = (vk_value){.type = VK_REAL, .r = lua_tonumber(L, idx)};
        break;
    case LUA_TSTRING:
        v->type = VK_TEXT;
        v->s = lua_tolstring(L, idx, &v->len);
        break;
    case LUA_TUSERDATA: {
        blob *b = luaL_testudata(L, idx, LVK_BLOB);
        if (b) {
            *v = (vk_value){.type = VK_BLOB, .s = b->bytes, .len = b->len};
            break;
        }
    }   /* fall through */
    default:
        lvk_errorf(L, "%s: cannot store a %s", what, luaL_typename(L, idx));
    }
}

/* whether s is UTF-8 text (else it can only be a blob) */
static int is_text(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len == 0 || i + len > n || (len == 2 && c < 0xC2))
            return 0;
        for (size_t k = 1; k < len; k++)
            if ((u[i + k] & 0xC0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

static vk_value *checkparams(lua_State *L, int idx, int *n)
{
    *n = lua_istable(L, idx) ? (int)lua_rawlen(L, idx) : 0;
    vk_value *p = lua_newuserdatauv(L, sizeof(vk_value) * (size_t)(*n + 1), 0);
    for (int i = 0; i < *n; i++) {
        lua_rawgeti(L, idx, i + 1);
        to_value(L, -1, &p[i], "where-clause value");
        lua_pop(L, 1);   /* strings are still held by the params table */
    }
    return p;
}

/* ---------- insert ---------- */

static void free_batch(void *p) { vk_batch_free(p); }

typedef struct floats {
    float *p;
    int64_t cap;
} floats;

static void free_floats(void *p)
{
    floats *f = p;
    free(f->p);
    free(f);
}

/* sets the vector cell of the row from the value at the top of the stack */
static int set_vector(lua_State *L, vk_batch *b, int serialize, floats *buf)
{
    int top = lua_gettop(L);
    lvk_mat *m = lvk_tomat(L, top);
    if (m) {
        if (m->n != 1)
            return vk_set_error(VK_EINVAL, "the vector is a %d x %d matrix", (int)m->n, (int)m->d);
        return vk_batch_set_vector(b, m->data, m->d);
    }
    blob *bl = luaL_testudata(L, top, LVK_BLOB);
    if (bl)   /* serialized bytes, whatever serialize_vectors says */
        return vk_batch_set_vector_blob(b, bl->bytes, bl->len);
    if (lua_type(L, top) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, top, &len);
        if (!serialize)
            return vk_batch_set_vector_blob(b, s, len);
        if (len == 0 || len % 4)
            return vk_set_error(VK_EINVAL, "packed float32 vector of %d bytes is not a multiple of 4", (int)len);
        if ((int64_t)(len / 4) > buf->cap) {
            float *p = realloc(buf->p, len);
            if (!p)
                return vk_set_error(VK_ENOMEM, "out of memory");
            buf->p = p;
            buf->cap = (int64_t)(len / 4);
        }
        memcpy(buf->p, s, len);   /* aligned copy */
        return vk_batch_set_vector(b, buf->p, (int64_t)(len / 4));
    }
    if (lua_type(L, top) != LUA_TTABLE)
        return vk_set_error(VK_EINVAL, "the vector is %s, expected an array of numbers or a vekterdb.vector",
                          luaL_typename(L, top));
    int64_t d = (int64_t)lua_rawlen(L, top);
    if (d > buf->cap) {
        float *p = realloc(buf->p, sizeof(float) * (size_t)d);
        if (!p)
            return vk_set_error(VK_ENOMEM, "out of memory");
        buf->p = p;
        buf->cap = d;
    }
    for (int64_t j = 0; j < d; j++) {
        lua_rawgeti(L, top, (lua_Integer)j + 1);
        if (lua_type(L, -1) != LUA_TNUMBER)
            return vk_set_error(VK_EINVAL, "vector element %d is %s, expected a number", (int)j + 1,
                              luaL_typename(L, -1));
        buf->p[j] = (float)lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    return vk_batch_set_vector(b, buf->p, d);
}

/* names the first key of record t that is not a column */
static const char *unknown_key(lua_State *L, vk_db *db, int t)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return "(a non-string key)";
        const char *k = lua_tostring(L, -1);
        if (vk_db_column_index(db, k) < 0) {
            lua_pop(L, 1);
            return k;   /* still referenced by the record */
        }
    }
    return NULL;
}

/* the value on top of the stack as a cell of column col; raises, after
 * aborting the batch's row (b may be NULL), on a value the column cannot
 * hold, the message starting with who ("record 3", "update") */
static void read_cell(lua_State *L, vk_batch *b, const vk_column *col, const char *who, vk_value *v)
{
    if (lua_type(L, -1) == LUA_TTABLE && col->kind == VK_KIND_JSON && !json_encode(L)) {
        if (b)
            vk_batch_abort_row(b);
        lvk_errorf(L, "%s: column '%s' holds JSON: %s", who, col->name, lua_tostring(L, -1));
    }
    if (lua_type(L, -1) == LUA_TNUMBER && col->type == VK_INT) {
        int64_t i = 0;
        if (!lvk_tointeger(L, -1, &i)) {
            if (b)
                vk_batch_abort_row(b);
            lvk_errorf(L, "%s: column '%s' holds integer values, got %f", who, col->name,
                       lua_tonumber(L, -1));
        }
        *v = (vk_value){.type = VK_INT, .i = i};
    } else if (lua_type(L, -1) == LUA_TTABLE || lua_type(L, -1) == LUA_TFUNCTION ||
               (lua_type(L, -1) == LUA_TUSERDATA && !luaL_testudata(L, -1, LVK_BLOB))) {
        if (b)
            vk_batch_abort_row(b);
        lvk_errorf(L, "%s: column '%s' cannot hold a %s", who, col->name, luaL_typename(L, -1));
    } else {
        to_value(L, -1, v, col->name);
    }
}

/* "record N", for messages */
static const char *record_label(char *buf, size_t len, int64_t recno)
{
    snprintf(buf, len, "record %lld", (long long)recno);
    return buf;
}

/* reads record t into the batch; raises on bad input */
static void read_record(lua_State *L, vk_db *db, vk_batch *b, int t, int64_t recno, int serialize,
                        floats *buf)
{
    if (!lua_istable(L, t))
        lvk_errorf(L, "record %d is %s, expected a table", (int)recno, luaL_typename(L, t));
    int ncols = vk_db_ncolumns(db), found = 0;
    vk_batch_begin_row(b);
    for (int c = 0; c < ncols; c++) {
        const vk_column *col = vk_db_column(db, c);
        lua_getfield(L, t, col->name);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            continue;
        }
        found++;
        int rc;
        if (col->is_vector) {
            rc = set_vector(L, b, serialize, buf);
        } else {
            vk_value v;
            char who[32];
            read_cell(L, b, col, record_label(who, sizeof who, recno), &v);
            rc = vk_batch_set(b, c, &v);
        }
        lua_pop(L, 1);
        if (rc) {
            vk_batch_abort_row(b);
            lvk_errorf(L, "record %d: %s", (int)recno, vk_errmsg());
        }
    }
    /* more keys than matched columns: one of them is unknown */
    int nkeys = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        nkeys++;
        lua_pop(L, 1);
    }
    if (nkeys > found) {
        vk_batch_abort_row(b);
        const char *k = unknown_key(L, db, t);
        lvk_errorf(L, "record %d: unknown column '%s' in table %s", (int)recno, k ? k : "?",
                   vk_db_table(db));
    }
    if (vk_batch_end_row(b))
        lvk_errorf(L, "record %d: %s", (int)recno, vk_errmsg());
}

typedef struct progress {
    lua_State *L;
    int fn;   /* stack index of the Lua function, 0 for none */
} progress;

/* calls the progress function with (done, total or nil when unknown, phase) */
static int call_progress(void *ud, int64_t done, int64_t total, const char *phase)
{
    progress *p = ud;
    if (!p->fn)
        return 0;
    lua_pushvalue(p->L, p->fn);
    lvk_pushint64(p->L, done);
    if (total >= 0)
        lvk_pushint64(p->L, total);
    else
        lua_pushnil(p->L);
    lua_pushstring(p->L, phase);
    if (lua_pcall(p->L, 3, 0, 0)) {
        lua_pop(p->L, 1);   /* a failing progress callback does not stop the work */
    }
    return 0;
}

/* the records of insert(): an array at stack index 2, or an iterator
 * function there; a bad record raises (vk_db_insert_rows holds nothing
 * while it runs) */
typedef struct record_source {
    lua_State *L;
    vk_db *db;
    int is_fn, serialize;
    int64_t recno;
    int done;
    floats *buf;
} record_source;

static int64_t fill_records(void *ud, vk_batch *b, int64_t max)
{
    record_source *s = ud;
    lua_State *L = s->L;
    int64_t n = 0;
    while (n < max && !s->done) {
        if (s->is_fn) {
            lua_pushvalue(L, 2);
            lua_call(L, 0, 1);
        } else {
            lua_rawgeti(L, 2, (lua_Integer)s->recno + 1);
        }
        if (lua_isnil(L, -1)) {
            s->done = 1;
        } else {
            s->recno++;
            read_record(L, s->db, b, lua_gettop(L), s->recno, s->serialize, s->buf);
            n++;
        }
        lua_pop(L, 1);
    }
    return n;
}

/* insert(source, batch_size, level, serialize, progress, params) -> count
 * source: an array of records or a function returning one record per call;
 * progress (optional) is called after each committed batch */
static int h_insert(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    int is_fn = lua_isfunction(L, 2);
    if (!is_fn && !lua_istable(L, 2))
        return arg_error(L, 2, "records must be an array or an iterator function");
    int64_t batch_size, level;
    if (!lvk_tointeger(L, 3, &batch_size) || batch_size <= 0)
        return arg_error(L, 3, "batch_size must be a positive integer");
    if (!lvk_tointeger(L, 4, &level))
        return arg_error(L, 4, "compression_level must be an integer");
    int serialize = lua_toboolean(L, 5);
    lua_settop(L, 7);
    progress p = {L, lua_isfunction(L, 6) ? 6 : 0};
    const char *params = optcstr(L, 7, "the runtime parameters");
    int64_t expected = is_fn ? -1 : (int64_t)lua_rawlen(L, 2);
    void **bslot = lvk_box(L, free_batch);   /* 8 */
    if (!(*bslot = vk_batch_new(db, (int)level)))
        return lvk_error(L);
    void **fslot = lvk_box(L, free_floats);  /* 9 */
    if (!(*fslot = calloc(1, sizeof(floats))))
        return lvk_errorc(L, "nomem", "out of memory");
    record_source src = {L, db, is_fn, serialize, 0, 0, *fslot};
    int64_t total;
    if (vk_db_insert_rows(db, *bslot, batch_size, params, fill_records, &src, call_progress, &p, expected,
                          &total))
        return lvk_error(L);
    lvk_box_release(L, 8);
    lvk_box_release(L, 9);
    lvk_pushint64(L, total);
    return 1;
}

/* the rows of insert_matrix(): the matrix, and the column arrays at stack
 * index 5 */
typedef struct matrix_source {
    lua_State *L;
    vk_db *db;
    const lvk_mat *m;
    const int *cols;
    int ncols, idx_col, has_first;
    int64_t first, row;
} matrix_source;

static int64_t fill_matrix(void *ud, vk_batch *b, int64_t max)
{
    matrix_source *s = ud;
    lua_State *L = s->L;
    int64_t n = 0;
    for (; n < max && s->row < s->m->n; n++, s->row++) {
        int64_t r = s->row;
        char who[32];
        vk_batch_begin_row(b);
        int rc = VK_OK;
        if (s->has_first) {
            vk_value v = {.type = VK_INT, .i = s->first + r};
            rc = vk_batch_set(b, s->idx_col, &v);
        }
        for (int c = 0; rc == VK_OK && c < s->ncols; c++) {
            lua_rawgeti(L, 5, c + 1);
            lua_rawgeti(L, -1, (lua_Integer)r + 1);
            vk_value v = {.type = VK_NULL};
            if (!lua_isnil(L, -1))
                read_cell(L, b, vk_db_column(s->db, s->cols[c]), record_label(who, sizeof who, r + 1), &v);
            rc = vk_batch_set(b, s->cols[c], &v);   /* copies the bytes of a string */
            lua_pop(L, 2);
        }
        if (rc == VK_OK)
            rc = vk_batch_set_vector(b, s->m->data + r * s->m->d, s->m->d);
        if (rc == VK_OK)
            rc = vk_batch_end_row(b);   /* aborts the row itself on failure */
        else
            vk_batch_abort_row(b);
        if (rc)
            lvk_errorf(L, "record %d: %s", (int)r + 1, vk_errmsg());
    }
    return n;
}

/* insert_matrix(matrix, first_idx, names, arrays, batch_size, level, progress, params) -> count
 *   matrix     a vekterdb.matrix (or vector): one record per row
 *   first_idx  idx of the first row, the next ones following; nil for the
 *              table's next idx values
 *   names      column names; arrays: for each name an array with one value
 *              per row (a missing value is NULL)
 * The bulk path: no Lua table per record, batch_size rows per transaction,
 * the vectors into the attached index batch by batch, as insert() does. */
static int h_insert_matrix(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    lvk_mat *m = lvk_tomat(L, 2);
    if (!m)
        return arg_error(L, 2, "expected a vekterdb.matrix");
    int has_first = !lua_isnoneornil(L, 3);
    int64_t first = 0, batch_size, level;
    if (has_first && (!lvk_tointeger(L, 3, &first) || first < 0))
        return arg_error(L, 3, "the first idx must be a non-negative integer");
    check_table(L, 4);
    check_table(L, 5);
    if (!lvk_tointeger(L, 6, &batch_size) || batch_size <= 0)
        return arg_error(L, 6, "batch_size must be a positive integer");
    if (!lvk_tointeger(L, 7, &level))
        return arg_error(L, 7, "compression_level must be an integer");
    int ncols = (int)lua_rawlen(L, 4);
    if ((int)lua_rawlen(L, 5) != ncols)
        return arg_error(L, 5, "one array of values per column name");
    lua_settop(L, 9);
    progress p = {L, lua_isfunction(L, 8) ? 8 : 0};
    const char *params = optcstr(L, 9, "the runtime parameters");
    int *cols = lua_newuserdatauv(L, sizeof(int) * (size_t)(ncols + 1), 0);   /* 10 */
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
            return lvk_errorf(L, "column '%s' comes from the first idx or the matrix, not from an array",
                              name);
        lua_pop(L, 1);
        lua_rawgeti(L, 5, c + 1);
        if (!lua_istable(L, -1))
            return lvk_errorf(L, "the values of column '%s' must be an array", name);
        lua_pop(L, 1);
    }
    void **bslot = lvk_box(L, free_batch);   /* 11 */
    if (!(*bslot = vk_batch_new(db, (int)level)))
        return lvk_error(L);
    matrix_source src = {L, db, m, cols, ncols, idx_col, has_first, first, 0};
    int64_t total;
    if (vk_db_insert_rows(db, *bslot, batch_size, params, fill_matrix, &src, call_progress, &p, m->n,
                          &total))
        return lvk_error(L);
    lvk_box_release(L, 11);
    lvk_pushint64(L, total);
    return 1;
}

/* ---------- search ---------- */

static void free_hits(void *p)
{
    vk_hits_free(p);
    free(p);
}

static void free_rows(void *p) { vk_rows_free(p); }

typedef struct search_args {
    int64_t k;
    vk_search_opts o;
    int64_t batch_size;
    int explain;               /* return the plan's figures too */
    vk_search_stats batch;     /* of the last batch */
    vk_search_stats total;     /* of every batch so far */
    int nbatches;
} search_args;

/* reads {k_extra_neighbors=, rerank=, threshold=, search_parameters=, batch_size=} */
static void read_search_opts(lua_State *L, int t, search_args *a)
{
    memset(&a->o, 0, sizeof a->o);
    a->o.rerank = 1;
    a->batch_size = 10000;
    if (!lua_istable(L, t))
        return;
    lua_getfield(L, t, "k_extra_neighbors");
    if (!lua_isnil(L, -1) && (!lvk_tointeger(L, -1, &a->o.k_extra) || a->o.k_extra < 0))
        lvk_errorf(L, "k_extra_neighbors must be a non-negative integer");
    lua_getfield(L, t, "rerank");
    if (!lua_isnil(L, -1))
        a->o.rerank = lua_toboolean(L, -1);
    lua_getfield(L, t, "threshold");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            lvk_errorf(L, "threshold must be a number");
        a->o.has_threshold = 1;
        a->o.threshold = (float)lua_tonumber(L, -1);
    }
    lua_getfield(L, t, "search_parameters");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
        lvk_errorf(L, "search_parameters must be a string such as \"nprobe=16\"");
    a->o.params = lua_tostring(L, -1);   /* held by the options table */
    lua_getfield(L, t, "batch_size");
    if (!lua_isnil(L, -1) && (!lvk_tointeger(L, -1, &a->batch_size) || a->batch_size <= 0))
        lvk_errorf(L, "batch_size must be a positive integer");
    lua_getfield(L, t, "explain");
    a->explain = lua_toboolean(L, -1);
    lua_getfield(L, t, "filter_plan");
    if (!lua_isnil(L, -1)) {
        static const char *const names[] = {"exact", "selector", "widen", "check", NULL};
        static const int plans[] = {VK_PLAN_EXACT, VK_PLAN_SELECTOR, VK_PLAN_WIDEN, VK_PLAN_CHECK};
        const char *name = lua_tostring(L, -1);
        int i = 0;
        while (name && names[i] && strcmp(names[i], name))
            i++;
        if (!name || !names[i])
            lvk_errorf(L, "filter_plan must be \"exact\", \"selector\", \"widen\" or \"check\"");
        a->o.filter_plan = plans[i];
    }
    lua_pop(L, 7);
}

static void free_filter(void *p) { vk_filter_free(p); }

/* Pushes a box holding the filter of opts.filter_sql / opts.filter_params
 * (compiled by the Lua module), or nil without one. */
static void open_filter(lua_State *L, vk_db *db, int t, search_args *a)
{
    a->o.stats = &a->batch;
    memset(&a->total, 0, sizeof a->total);
    a->nbatches = 0;
    if (!lua_istable(L, t)) {
        lua_pushnil(L);
        return;
    }
    lua_getfield(L, t, "filter_sql");
    if (lua_isnil(L, -1))
        return;   /* the nil stays */
    const char *sql = cstr(L, -1, "the filter");   /* held by the options table */
    lua_pop(L, 1);
    lua_getfield(L, t, "filter_params");
    int top = lua_gettop(L), nparams;
    vk_value *params = checkparams(L, top, &nparams);
    void **slot = lvk_box(L, free_filter);
    vk_filter *f;
    if (vk_filter_new(db, sql, params, nparams, &f))
        lvk_error(L);
    *slot = f;
    a->o.filter = f;
    lua_replace(L, top);   /* the box takes the params' place */
    lua_settop(L, top);
}

static void add_stats(search_args *a)
{
    vk_search_stats *t = &a->total, *b = &a->batch;
    if (a->nbatches++ == 0 || b->plan > t->plan)
        t->plan = b->plan;
    t->matches = b->matches;
    t->excluded = b->excluded;
    t->rounds = b->rounds > t->rounds ? b->rounds : t->rounds;
    t->widened += b->widened;
    t->exact_fallback += b->exact_fallback;
    t->max_k = b->max_k > t->max_k ? b->max_k : t->max_k;
    t->missing += b->missing;
    t->estimated = b->estimated;
}

/* t[name] = v for the table on top of the stack */
static void set_int(lua_State *L, const char *name, int64_t v)
{
    lvk_pushint64(L, v);
    lua_setfield(L, -2, name);
}

static int push_stats(lua_State *L, const search_args *a)
{
    static const char *const plans[] = {"index", "exact", "selector", "widen", "check"};
    const vk_search_stats *t = &a->total;
    lua_createtable(L, 0, 10);
    lua_pushstring(L, plans[t->plan]);
    lua_setfield(L, -2, "plan");
    if (t->matches >= 0)
        set_int(L, "matches", t->matches);
    set_int(L, "excluded", t->excluded);
    set_int(L, "rounds", t->rounds);
    set_int(L, "widened", t->widened);
    set_int(L, "exact_fallback", t->exact_fallback);
    set_int(L, "max_k", t->max_k);
    set_int(L, "missing", t->missing);
    if (t->estimated > 0)
        set_int(L, "estimated_matches", t->estimated);
    set_int(L, "exact_max", VK_FILTER_EXACT_MAX);
    return 1;
}

static void check_k(lua_State *L, int idx, search_args *a)
{
    if (!lvk_tointeger(L, idx, &a->k) || a->k <= 0)
        lvk_errorf(L, "k must be a positive integer");
    if (a->k > 100000)
        lvk_errorf(L, "k = %lld is larger than the limit of 100000", (long long)a->k);
}

static vk_index *search_index(lua_State *L, vk_db *db)
{
    vk_index *ix = vk_db_index(db);
    if (!ix)
        lvk_errorc(L, "state", "no FAISS index: create_index or attach one before searching");
    return ix;
}

/* Runs one batch of queries and appends a result per query to the table at
 * res (starting at position *pos).  When qrows is given, the result for
 * query i is a table holding row i's columns (qcols, cells from column 2 on)
 * and "neighbors"; otherwise a table with "neighbors" only. */
static void search_batch(lua_State *L, vk_db *db, const float *q, int64_t nq, search_args *a,
                         const int *cols, int ncols, int res, int64_t *pos,
                         const vk_rows *qrows, const int *qcols, int nqcols)
{
    int top = lua_gettop(L);
    void **hslot = lvk_box(L, free_hits);
    vk_hits *h = calloc(1, sizeof *h);
    if (!(*hslot = h))
        lvk_errorc(L, "nomem", "out of memory");
    if (vk_db_search(db, q, nq, a->k, &a->o, h))
        lvk_error(L);
    add_stats(a);
    /* neighbor records, fetched once for the whole batch; idx is known
     * from the hits and never fetched */
    int idx_col = vk_db_column_index(db, vk_db_idx_name(db)), want_idx = 0, nf = 0;
    int *fcols = lua_newuserdatauv(L, sizeof(int) * (size_t)(ncols + 1), 0);
    for (int c = 0; c < ncols; c++) {
        if (cols[c] == idx_col)
            want_idx = 1;
        else
            fcols[nf++] = cols[c];
    }
    vk_rows *nb = NULL;
    if (nf > 0) {
        int64_t total = 0;
        for (int64_t i = 0; i < nq; i++)
            total += h->count[i];
        int64_t *ids = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(total + 1), 0);
        total = 0;
        for (int64_t i = 0; i < nq; i++)
            for (int64_t j = 0; j < h->count[i]; j++)
                ids[total++] = h->ids[i * h->k + j];
        void **rslot = lvk_box(L, free_rows);
        if (vk_db_fetch(db, ids, total, fcols, nf, &nb))
            lvk_error(L);
        *rslot = nb;
    }
    int64_t row = 0;
    for (int64_t i = 0; i < nq; i++) {
        lua_createtable(L, 0, nqcols + 1);
        if (qrows)
            set_record(L, db, qrows, i, 2, qcols, nqcols);
        lua_createtable(L, (int)h->count[i], 0);
        for (int64_t j = 0; j < h->count[i]; j++, row++) {
            lua_createtable(L, 0, ncols + 1);
            if (nb)
                set_record(L, db, nb, row, 0, fcols, nf);
            if (want_idx) {
                lvk_pushint64(L, h->ids[i * h->k + j]);
                lua_setfield(L, -2, vk_db_idx_name(db));
            }
            lua_pushnumber(L, h->metric[i * h->k + j]);
            lua_setfield(L, -2, "metric");
            lua_rawseti(L, -2, (lua_Integer)j + 1);
        }
        lua_setfield(L, -2, "neighbors");
        lua_rawseti(L, res, (lua_Integer)++*pos);
    }
    /* free the hits and neighbor rows now rather than at the next collection */
    for (int i = lua_gettop(L); i > top; i--)
        if (luaL_testudata(L, i, LVK_BOX))
            lvk_box_release(L, i);
    lua_settop(L, top);
}

/* search(queries, k, opts, cols) */
static int h_search(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    vk_index *ix = search_index(L, db);
    search_args a;
    check_k(L, 3, &a);
    read_search_opts(L, 4, &a);
    int ncols;
    int *cols = checkcols(L, db, 5, &ncols);   /* 6 */
    lvk_mat *q = lvk_checkmatrix(L, 2, vk_index_d(ix));   /* 7 */
    open_filter(L, db, 4, &a);          /* 8 */
    lua_createtable(L, (int)q->n, 0);   /* 9 */
    int res = lua_gettop(L);
    int64_t pos = 0;
    for (int64_t s = 0; s < q->n; s += a.batch_size) {
        int64_t n = q->n - s < a.batch_size ? q->n - s : a.batch_size;
        search_batch(L, db, q->data + s * q->d, n, &a, cols, ncols, res, &pos, NULL, NULL, 0);
    }
    if (lua_isuserdata(L, 8))
        lvk_box_release(L, 8);
    return a.explain ? 1 + push_stats(L, &a) : 1;
}

static void close_cursor(void *p) { vk_cursor_close(p); }

/* nearest(where_sql, params, k, opts, cols) */
static int h_nearest(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    vk_index *ix = search_index(L, db);
    const char *where = optcstr(L, 2, "the where-clause");
    int nparams;
    vk_value *params = checkparams(L, 3, &nparams);    /* 7 */
    search_args a;
    check_k(L, 4, &a);
    read_search_opts(L, 5, &a);
    int ncols;
    int *cols = checkcols(L, db, 6, &ncols);           /* 8 */
    /* the query records: idx, vector, then the requested columns */
    int *qcols = lua_newuserdatauv(L, sizeof(int) * (size_t)(ncols + 2), 0);   /* 9 */
    int idx_col = col_of(L, db, vk_db_idx_name(db));
    int vec_col = col_of(L, db, vk_db_vector_name(db));
    qcols[0] = idx_col;
    qcols[1] = vec_col;
    memcpy(qcols + 2, cols, sizeof(int) * (size_t)ncols);
    open_filter(L, db, 5, &a);                  /* 10 */
    vk_cursor *cur;
    void **cslot = lvk_box(L, close_cursor);    /* 11 */
    if (vk_db_select(db, qcols, ncols + 2, where, params, nparams, NULL, &cur))
        return lvk_error(L);
    *cslot = cur;
    lua_newtable(L);   /* 12 */
    int res = lua_gettop(L);
    int64_t pos = 0, d = vk_index_d(ix);
    for (;;) {
        vk_rows *rows;
        if (vk_cursor_next(cur, a.batch_size, &rows))
            return lvk_error(L);
        if (!rows)
            break;
        void **rslot = lvk_box(L, free_rows);
        *rslot = rows;
        int64_t n = vk_rows_count(rows);
        lvk_mat *q = lvk_newmat(L, n, d, 0);
        if (vk_rows_vectors(rows, 1, d, q->data))
            return lvk_error(L);
        int64_t *self = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)n, 0);
        for (int64_t i = 0; i < n; i++)
            self[i] = vk_rows_get(rows, i, 0)->i;
        a.o.exclude = self;
        search_batch(L, db, q->data, n, &a, cols, ncols, res, &pos, rows, cols, ncols);
        lvk_box_release(L, res + 1);
        lua_settop(L, res);
    }
    lvk_box_release(L, 11);
    if (lua_isuserdata(L, 10))
        lvk_box_release(L, 10);
    lua_settop(L, res);
    return a.explain ? 1 + push_stats(L, &a) : 1;
}

/* ---------- deletes and updates ---------- */

/* store_value(column, value) -> the value as the column stores it: a
 * where-clause compares DateTime and Date columns with their stored form,
 * and blob columns with blobs */
static int h_store_value(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    const vk_column *col = vk_db_column(db, col_of(L, db, cstr(L, 2, "a column name")));
    lua_settop(L, 3);
    vk_value v, out;
    char buf[VK_VALUE_BUF];
    to_value(L, 3, &v, col->name);
    if (vk_value_store(col, &v, &out, buf))
        return lvk_error(L);
    if (out.type == VK_BLOB)
        push_blob(L, out.s, out.len);
    else if (out.type == VK_TEXT)
        lua_pushlstring(L, out.s, out.len);
    else
        lua_pushvalue(L, 3);
    return 1;
}

/* delete(where_sql, params) -> number of records deleted */
static int h_delete(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    const char *where = optcstr(L, 2, "the where-clause");
    int nparams;
    vk_value *params = checkparams(L, 3, &nparams);
    int64_t n;
    if (vk_db_delete(db, where, params, nparams, &n))
        return lvk_error(L);
    lvk_pushint64(L, n);
    return 1;
}

/* update(where_sql, params, { column = value, ..., [vector column] = v })
 * -> number of records updated, first new idx (nil unless the vector changed) */
static int h_update(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    const char *where = optcstr(L, 2, "the where-clause");
    int nparams;
    vk_value *params = checkparams(L, 3, &nparams);   /* 5 */
    check_table(L, 4);
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, 4)) {
        lua_pop(L, 1);
        n++;
    }
    int *cols = lua_newuserdatauv(L, sizeof(int) * (size_t)(n + 1), 0);           /* 6 */
    vk_value *vals = lua_newuserdatauv(L, sizeof(vk_value) * (size_t)(n + 1), 0);  /* 7 */
    const float *vec = NULL;
    int64_t d = 0;
    lua_getfield(L, 4, vk_db_vector_name(db));   /* 8 */
    if (!lua_isnil(L, 8)) {
        int64_t want = vk_db_dim(db);
        if (want <= 0 && vk_db_index(db))
            want = vk_index_d(vk_db_index(db));
        lvk_mat *v = lvk_checkvector(L, 8, want > 0 ? want : 0);   /* 9 */
        vec = v->data;
        d = v->d;
    }
    int nv = 0;
    lua_newtable(L);   /* the values as converted (JSON text of a table), kept alive */
    int anchor = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, 4)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            return lvk_errorf(L, "update: column names must be strings");
        const char *name = lua_tostring(L, -2);
        int c = col_of(L, db, name);
        if (vk_db_column(db, c)->is_vector) {
            lua_pop(L, 1);
            continue;
        }
        read_cell(L, NULL, vk_db_column(db, c), "update", &vals[nv]);
        cols[nv++] = c;
        lua_rawseti(L, anchor, nv);   /* the value stays alive there */
    }
    int64_t updated, first_new, *replaced = NULL;
    if (vk_db_update(db, where, params, nparams, cols, vals, nv, vec, d, &updated, &first_new,
                     vec ? &replaced : NULL))
        return lvk_error(L);
    void **slot = lvk_box(L, free);
    *slot = replaced;
    lvk_pushint64(L, updated);
    if (!vec)
        return 1;
    /* { [old idx] = new idx } */
    lua_createtable(L, 0, (int)updated);
    for (int64_t i = 0; i < updated; i++) {
        lvk_pushint64(L, replaced[i]);
        lvk_pushint64(L, first_new + i);
        lua_settable(L, -3);
    }
    return 2;
}

static int h_deleted(lua_State *L) { return push_i64_or_error(L, vk_db_deleted_count(checkdb(L, 1))); }

/* rebuild(path) -> tombstones reclaimed, vectors removed from the index */
static int h_rebuild(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    const char *path = optcstr(L, 2, "the index file name");
    int64_t removed, reclaimed;
    if (vk_db_rebuild_index(db, path, &removed, &reclaimed))
        return lvk_error(L);
    lvk_pushint64(L, reclaimed);
    lvk_pushint64(L, removed);
    return 2;
}

/* index_lag() -> records the index lacks, ids it holds beyond the table's */
static int h_index_lag(lua_State *L)
{
    int64_t lag, excess;
    if (vk_db_index_lag(checkdb(L, 1), &lag, &excess))
        return lvk_error(L);
    lvk_pushint64(L, lag);
    lvk_pushint64(L, excess);
    return 2;
}

/* fetch(ids, cols) -> records in the order of ids (nil for a missing id) */
static int h_fetch(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    check_table(L, 2);
    int64_t n = (int64_t)lua_rawlen(L, 2);
    int ncols;
    int *cols = checkcols(L, db, 3, &ncols);   /* 4 */
    int64_t *ids = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(n + 1), 0);
    for (int64_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (lua_Integer)i + 1);
        if (!lvk_tointeger(L, -1, &ids[i]))
            return lvk_errorf(L, "idx values must be integers");
        lua_pop(L, 1);
    }
    int *withidx = lua_newuserdatauv(L, sizeof(int) * (size_t)(ncols + 1), 0);
    withidx[0] = col_of(L, db, vk_db_idx_name(db));
    memcpy(withidx + 1, cols, sizeof(int) * (size_t)ncols);
    void **rslot = lvk_box(L, free_rows);
    vk_rows *rows;
    if (vk_db_fetch(db, ids, n, withidx, ncols + 1, &rows))
        return lvk_error(L);
    *rslot = rows;
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        if (vk_rows_get(rows, i, 0)->type == VK_NULL) {   /* no such record: false keeps a sequence */
            lua_pushboolean(L, 0);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
            continue;
        }
        lua_createtable(L, 0, ncols);
        set_record(L, db, rows, i, 1, cols, ncols);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* execute(sql, params) -> array of rows, each an array of values */
static int h_execute(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    const char *sql = cstr(L, 2, "the SQL statement");
    int nparams;
    vk_value *params = checkparams(L, 3, &nparams);
    /* the statement's columns are unknown: bytes that are no UTF-8 text (a
     * serialized vector) bind as a blob on every backend, as PostgreSQL's
     * text cannot hold them; vekterdb.blob(s) binds any string as one */
    for (int i = 0; i < nparams; i++)
        if (params[i].type == VK_TEXT && !is_text(params[i].s, params[i].len))
            params[i].type = VK_BLOB;
    void **rslot = lvk_box(L, free_rows);
    vk_rows *rows;
    if (vk_db_execute(db, sql, params, nparams, &rows))
        return lvk_error(L);
    *rslot = rows;
    int64_t n = vk_rows_count(rows);
    int nc = vk_rows_ncols(rows);
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        lua_createtable(L, nc, 0);
        for (int c = 0; c < nc; c++) {
            const vk_value *v = vk_rows_get(rows, i, c);
            switch (v->type) {
            case VK_INT: lvk_pushint64(L, v->i); break;
            case VK_BOOL: lua_pushboolean(L, v->i != 0); break;
            case VK_REAL: lua_pushnumber(L, v->r); break;
            case VK_TEXT:
            case VK_BLOB: lua_pushlstring(L, v->s, v->len); break;
            default: lua_pushnil(L);
            }
            lua_rawseti(L, -2, c + 1);
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* ---------- cursors ---------- */

static lvk_cursor *tocursor(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, LVK_CURSOR);
}

/* select(cols, where_sql, params, order_limit) -> cursor */
static int h_select(lua_State *L)
{
    lvk_db *h = toh(L, 1);
    vk_db *db = checkdb(L, 1);
    const char *where = optcstr(L, 3, "the where-clause");
    const char *order = optcstr(L, 5, "the order clause");
    int ncols;
    int *cols = checkcols(L, db, 2, &ncols);
    if (ncols == 0)
        return lvk_errorf(L, "select needs at least one column");
    int nparams;
    vk_value *params = checkparams(L, 4, &nparams);
    (void)params;
    lvk_cursor *c = lua_newuserdatauv(L, sizeof *c, 1);
    memset(c, 0, sizeof *c);
    luaL_getmetatable(L, LVK_CURSOR);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, 1);   /* the cursor pins its database */
    lua_setiuservalue(L, -2, 1);
    if (!(c->cols = malloc(sizeof(int) * (size_t)ncols)))
        return lvk_errorc(L, "nomem", "out of memory");
    memcpy(c->cols, cols, sizeof(int) * (size_t)ncols);
    c->ncols = ncols;
    if (vk_db_select(db, cols, ncols, where, params, nparams, order, &c->c))
        return lvk_error(L);
    c->owner = h;
    c->next = h->cursors;
    h->cursors = c;
    return 1;
}

/* cursor:next() -> record or nil at the end */
static int cur_next(lua_State *L)
{
    lvk_cursor *c = tocursor(L, 1);
    if (c->orphaned)
        return lvk_errorc(L, "state", "attempt to use a cursor of a closed database");
    if (!c->owner)
        return lua_pushnil(L), 1;   /* finished or closed */
    if (!c->rows || c->pos >= vk_rows_count(c->rows)) {
        vk_rows_free(c->rows);
        c->rows = NULL;
        c->pos = 0;
        if (vk_cursor_next(c->c, CURSOR_BLOCK, &c->rows))
            return lvk_error(L);
        if (!c->rows) {
            cursor_release(c);
            return lua_pushnil(L), 1;
        }
    }
    lua_createtable(L, 0, c->ncols);
    set_record(L, c->owner->db, c->rows, c->pos, 0, c->cols, c->ncols);
    c->pos++;
    return 1;
}

/* close, __close and __gc */
static int cur_close(lua_State *L)
{
    lvk_cursor *c = tocursor(L, 1);
    if (c->busy)
        return lvk_errorc(L, "state", "close: cannot close a cursor while its next is running");
    cursor_release(c);
    return 0;
}

/* the methods of a cursor: next runs with the cursor and its database busy
 * (the database may already be: a cursor can be read from a callback) */
static int cur_call(lua_State *L)
{
    const luaL_Reg *m = lua_touserdata(L, lua_upvalueindex(2));
    lvk_cursor *c = tocursor(L, 1);
    if (m->func == cur_close)
        return cur_close(L);
    if (c->busy)
        return lvk_errorc(L, "state", "%s: the cursor is already running", m->name);
    if (!c->owner)
        return m->func(L);   /* finished, closed or orphaned: holds nothing */
    int n = lua_gettop(L);
    c->busy = 1;
    int rc = call_busy(L, c->owner, "select", lua_upvalueindex(1));
    c->busy = 0;
    if (rc) {
        lvk_name_error(L, "select");
        return lua_error(L);
    }
    return lua_gettop(L) - n;
}

/* ---------- sampling and index maintenance ---------- */


static int h_sample(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    int64_t n, seed = 0x5eed;
    if (!lvk_tointeger(L, 2, &n) || n < 0)
        return arg_error(L, 2, "sample size must be a non-negative integer");
    if (!lua_isnoneornil(L, 3) && !lvk_tointeger(L, 3, &seed))
        return arg_error(L, 3, "seed must be an integer");
    float *x;
    int64_t got;
    if (vk_db_sample_vectors(db, n, (uint64_t)seed, &x, &got))
        return lvk_error(L);
    int64_t d = vk_db_dim(db);
    void **slot = lvk_box(L, free);
    *slot = x;
    lvk_mat *m = lvk_newmat(L, got, d, 0);
    memcpy(m->data, x, sizeof(float) * (size_t)(got * d));
    lvk_box_release(L, -2);
    return 1;
}

static int h_train(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    int64_t n;
    if (!lvk_tointeger(L, 2, &n) || n < 0)
        return arg_error(L, 2, "sample_size must be a non-negative integer");
    progress p = {L, lua_isfunction(L, 3) ? 3 : 0};
    if (vk_db_train_index(db, n, call_progress, &p))
        return lvk_error(L);
    return 0;
}

/* sync(batch_size, path, progress, params) -> added */
static int h_sync(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    int64_t bs, added;
    if (!lvk_tointeger(L, 2, &bs) || bs <= 0)
        return arg_error(L, 2, "batch_size must be a positive integer");
    const char *path = optcstr(L, 3, "the index file name");
    progress p = {L, lua_isfunction(L, 4) ? 4 : 0};
    const char *params = optcstr(L, 5, "the runtime parameters");
    if (vk_db_sync_index(db, bs, path, params, call_progress, &p, &added))
        return lvk_error(L);
    lvk_pushint64(L, added);
    return 1;
}

/* ondisk(batch_size, path, progress, params): the index's lists to disk,
 * or a new generation of them */
static int h_ondisk(lua_State *L)
{
    vk_db *db = checkdb(L, 1);
    int64_t bs, added, removed;
    if (!lvk_tointeger(L, 2, &bs) || bs <= 0)
        return arg_error(L, 2, "batch_size must be a positive integer");
    const char *path = optcstr(L, 3, "the index file name");
    progress p = {L, lua_isfunction(L, 4) ? 4 : 0};
    const char *params = optcstr(L, 5, "the runtime parameters");
    if (vk_db_ondisk_build(db, bs, path, params, call_progress, &p, &added, &removed))
        return lvk_error(L);
    lvk_pushint64(L, added);
    lvk_pushint64(L, removed);
    return 2;
}

static const luaL_Reg db_methods[] = {
    {"close", h_close},       {"use_table", h_use_table}, {"table_exists", h_table_exists}, {"columns", h_columns},
    {"info", h_info},         {"dim", h_dim},             {"count", h_count},
    {"next_idx", h_next_idx}, {"find_gap", h_find_gap},   {"attach", h_attach},
    {"insert", h_insert},     {"insert_matrix", h_insert_matrix},     {"search", h_search},       {"nearest", h_nearest},
    {"fetch", h_fetch},       {"select", h_select},       {"execute", h_execute},       {"sample", h_sample},
    {"train", h_train},       {"sync", h_sync},           {"delete", h_delete},
    {"update", h_update},     {"deleted", h_deleted},     {"rebuild", h_rebuild},
    {"index_lag", h_index_lag}, {"read_index", h_read_index}, {"write_index", h_write_index},
    {"warning", h_warning}, {"index_file", h_index_file}, {"open_index", h_open_index},
    {"index", h_index}, {"set_params", h_set_params}, {"params", h_params},
    {"store_value", h_store_value}, {"ondisk", h_ondisk},
    {"keep_index_objects", h_keep_index_objects}, {"follow", h_follow},
    {"wait_for_changes", h_wait_for_changes}, {"generation", h_generation},
    {NULL, NULL}};

static const luaL_Reg cursor_methods[] = {{"next", cur_next}, {"close", cur_close}, {NULL, NULL}};

const luaL_Reg lvk_db_funcs[] = {{"open", h_open}, {"blob", h_blob}, {NULL, NULL}};

static const luaL_Reg db_meta[] = {{"__gc", h_close}, {"__close", h_close},
                                   {"__tostring", h_tostring}, {NULL, NULL}};

static const luaL_Reg cursor_meta[] = {{"__gc", cur_close}, {"__close", cur_close}, {NULL, NULL}};

static const luaL_Reg blob_meta[] = {{"__len", blob_len}, {"__tostring", blob_tostring}, {NULL, NULL}};
static const luaL_Reg blob_methods[] = {{"bytes", blob_bytes}, {NULL, NULL}};

void lvk_open_db(lua_State *L)
{
    lvk_newclass(L, LVK_BLOB, blob_meta, blob_methods, NULL);
    lvk_newclass(L, LVK_DB, db_meta, db_methods, db_call);
    lvk_newclass(L, LVK_CURSOR, cursor_meta, cursor_methods, cur_call);
}
