/* lvk_index.c: FAISS index userdata */
#include "lvk.h"

#include <string.h>

static lvk_index *toindex(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, LVK_INDEX);
}

vk_index *lvk_checkindex(lua_State *L, int idx)
{
    lvk_index *p = toindex(L, idx);
    if (!p->ix)
        lvk_errorf(L, "attempt to use a freed index");
    return p->ix;
}

/* the Index object of each engine index, weakly: db.index stays the same
 * object as long as the engine keeps the same index */
#define LVK_INDEX_OBJECTS "vekterdb.index_objects"

static void push_objects(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, LVK_INDEX_OBJECTS);
    if (!lua_isnil(L, -1))
        return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_newtable(L);
    lua_pushstring(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, LVK_INDEX_OBJECTS);
}

void lvk_pushindex(lua_State *L, vk_index *ix)
{
    lvk_index *p = lua_newuserdatauv(L, sizeof *p, 0);
    p->ix = ix;
    luaL_getmetatable(L, LVK_INDEX);
    lua_setmetatable(L, -2);
    push_objects(L);
    lua_pushlightuserdata(L, ix);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

void lvk_pushindex_of(lua_State *L, vk_index *ix)
{
    push_objects(L);
    lua_pushlightuserdata(L, ix);
    lua_rawget(L, -2);
    lvk_index *p = lua_isuserdata(L, -1) ? lua_touserdata(L, -1) : NULL;
    if (p && p->ix == ix) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 2);
    vk_index_retain(ix);
    lvk_pushindex(L, ix);
}

static int ix_gc(lua_State *L)
{
    lvk_index *p = toindex(L, 1);
    vk_index_release(p->ix);
    p->ix = NULL;
    return 0;
}

vk_metric lvk_optmetric(lua_State *L, int idx)
{
    vk_metric m;
    if (vk_metric_parse(luaL_optstring(L, idx, "inner_product"), &m))
        lvk_error(L);
    return m;
}

/* index_factory(d, description, metric) */
static int ix_factory(lua_State *L)
{
    int64_t d;
    if (!lvk_tointeger(L, 1, &d) || d <= 0 || d > (1 << 20))
        return lvk_argerror(L, 1, "dimension must be a positive integer");
    const char *desc = luaL_checkstring(L, 2);
    if (strlen(desc) != lua_rawlen(L, 2))
        return lvk_errorf(L, "the factory string contains a NUL byte");
    int metric = lvk_optmetric(L, 3);
    vk_index *ix;
    if (vk_index_factory(&ix, (int)d, desc, metric))
        return lvk_error(L);
    lvk_pushindex(L, ix);
    return 1;
}

int lvk_push_read_index(lua_State *L, vk_index *ix, const char *path)
{
    if (!vk_index_metric_supported(ix)) {
        vk_index_release(ix);
        return lvk_errorf(L, "index file %s uses a metric other than inner product or L2", path);
    }
    lvk_pushindex(L, ix);
    return 1;
}

/* read_index(path, mmap): any FAISS file, trusted as FAISS trusts it */
static int ix_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (strlen(path) != lua_rawlen(L, 1))
        return lvk_errorf(L, "the index file name contains a NUL byte");
    vk_index *ix;
    if (vk_index_read(&ix, path, lua_toboolean(L, 2)))
        return lvk_error(L);
    return lvk_push_read_index(L, ix, path);
}

static int ix_write(lua_State *L)
{
    vk_index *ix = lvk_checkindex(L, 1);
    if (vk_index_write(ix, luaL_checkstring(L, 2)))
        return lvk_error(L);
    return 0;
}

static int ix_set_params(lua_State *L)
{
    if (vk_index_set_params(lvk_checkindex(L, 1), luaL_checkstring(L, 2)))
        return lvk_error(L);
    return 0;
}

static int ix_get_param(lua_State *L)
{
    double v;
    if (vk_index_get_param(lvk_checkindex(L, 1), luaL_checkstring(L, 2), &v))
        return lvk_error(L);
    lua_pushnumber(L, v);
    return 1;
}

static int ix_train(lua_State *L)
{
    vk_index *ix = lvk_checkindex(L, 1);
    lvk_mat *m = lvk_checkmatrix(L, 2, vk_index_d(ix));
    if (vk_index_train(ix, m->n, m->data))
        return lvk_error(L);
    return 0;
}

/* add(matrix): ids continue from ntotal */
static int ix_add(lua_State *L)
{
    vk_index *ix = lvk_checkindex(L, 1);
    lvk_mat *m = lvk_checkmatrix(L, 2, vk_index_d(ix));
    if (vk_index_add(ix, m->n, m->data, vk_index_ntotal(ix)))
        return lvk_error(L);
    return 0;
}

static int ix_index(lua_State *L)
{
    vk_index *ix = lvk_checkindex(L, 1);
    const char *k = luaL_checkstring(L, 2);
    if (!strcmp(k, "ntotal"))
        lvk_pushint64(L, vk_index_ntotal(ix));
    else if (!strcmp(k, "d"))
        lvk_pushint64(L, vk_index_d(ix));
    else if (!strcmp(k, "is_trained"))
        lua_pushboolean(L, vk_index_is_trained(ix));
    else if (!strcmp(k, "metric"))
        lua_pushstring(L, vk_metric_name(vk_index_metric(ix)));
    else if (!strcmp(k, "on_disk"))
        lua_pushboolean(L, vk_index_is_ondisk(ix));
    else {
        luaL_getmetatable(L, LVK_INDEX);
        lua_getfield(L, -1, LVK_METHODS);
        lua_getfield(L, -1, k);
    }
    return 1;
}

static int ix_tostring(lua_State *L)
{
    lvk_index *p = toindex(L, 1);
    if (!p->ix)
        lua_pushliteral(L, "vekterdb.Index (freed)");
    else
        lua_pushfstring(L, "vekterdb.Index(d=%d, ntotal=%d): %p", vk_index_d(p->ix),
                        (int)vk_index_ntotal(p->ix), (void *)p);
    return 1;
}

/* _check_on_disk(): raises (code "invalid") unless its lists can live on disk */
static int ix_check_on_disk(lua_State *L)
{
    if (vk_db_ondisk_check(lvk_checkindex(L, 1)))
        return lvk_error(L);
    return 0;
}

static const luaL_Reg ix_methods[] = {{"write", ix_write}, {"set_parameters", ix_set_params},
                                      {"get_parameter", ix_get_param}, {"train", ix_train},
                                      {"add", ix_add},
                                      {"_check_on_disk", ix_check_on_disk}, {NULL, NULL}};

const luaL_Reg lvk_index_funcs[] = {{"index_factory", ix_factory}, {"read_index", ix_read},
                                    {NULL, NULL}};

static const luaL_Reg ix_meta[] = {{"__index", ix_index}, {"__gc", ix_gc}, {"__close", ix_gc},
                                   {"__tostring", ix_tostring}, {NULL, NULL}};

void lvk_open_index(lua_State *L)
{
    lvk_newclass(L, LVK_INDEX, ix_meta, ix_methods, NULL);
}
