/* lvk.h: declarations shared by the files of the Lua module vekterdb.core */
#ifndef LVK_H
#define LVK_H

#include "compat.h"
#include "vekterdb.h"

/* Metatable names.  Users hold Vector, Matrix and Index values themselves;
 * the database handle and its cursors sit behind the Lua module's
 * vekterdb.DB, so theirs say "core" and a type error never reads
 * "vekterdb.DB expected, got vekterdb.DB". */
#define LVK_VECTOR "vekterdb.Vector"
#define LVK_MATRIX "vekterdb.Matrix"
#define LVK_INDEX "vekterdb.Index"
#define LVK_DB "vekterdb.core.DB"
#define LVK_CURSOR "vekterdb.core.Cursor"
#define LVK_BOX "vekterdb.core.Box"
/* the metatable of every error value the module raises (lvk_core.c) */
#define LVK_ERROR "vekterdb.Error"
#define LVK_BLOB "vekterdb.Blob"

/* the field of every class's metatable that holds its methods */
#define LVK_METHODS "__methods"

/* float32 storage behind both Vector (n == 1) and Matrix */
typedef struct lvk_mat {
    int64_t n, d;
    float data[];
} lvk_mat;

/* lvk_vector.c */
lvk_mat *lvk_newmat(lua_State *L, int64_t n, int64_t d, int is_vector);
lvk_mat *lvk_tomat(lua_State *L, int idx);   /* Vector or Matrix, else NULL */
/* Reads a query argument: a Vector, a Matrix, an array of numbers, or an
 * array of vectors/arrays.  Pushes a Matrix and returns it. */
lvk_mat *lvk_checkmatrix(lua_State *L, int idx, int64_t d_expected);
/* a single vector (Vector, 1-row Matrix, array of numbers) into a pushed Vector */
lvk_mat *lvk_checkvector(lua_State *L, int idx, int64_t d_expected);
void lvk_open_vector(lua_State *L);
extern const luaL_Reg lvk_vector_funcs[];

/* lvk_index.c */
typedef struct lvk_index {
    vk_index *ix;
} lvk_index;
vk_index *lvk_checkindex(lua_State *L, int idx);
void lvk_pushindex(lua_State *L, vk_index *ix);   /* takes the reference */
/* a metric name argument (default "inner_product"); raises on an unknown one */
vk_metric lvk_optmetric(lua_State *L, int idx);
/* the Index object already made for ix, or a new one holding a reference */
void lvk_pushindex_of(lua_State *L, vk_index *ix);
/* pushes an index read from path (takes the reference); raises an error for
 * a metric VekterDB cannot rerank */
int lvk_push_read_index(lua_State *L, vk_index *ix, const char *path);
void lvk_open_index(lua_State *L);
extern const luaL_Reg lvk_index_funcs[];

/* lvk_db.c */
void lvk_open_db(lua_State *L);
extern const luaL_Reg lvk_db_funcs[];

/* lvk_io.c: vector files (engine/vk_io.h) */
void lvk_open_io(lua_State *L);
extern const luaL_Reg lvk_io_funcs[];

/* lvk_core.c: errors.  Every error the module raises is a table
 * { code = ..., message = ..., call = ... } with the metatable LVK_ERROR;
 * message names the call ("search: ...") when the running C function was
 * called by name from Lua (a method run by a wrapper's lua_pcall is named by
 * its wrapper or by the Lua module). */
const char *lvk_code_name(int vk_code);       /* VK_E* -> "invalid", "io", ... */
int lvk_error(lua_State *L);                  /* raises vk_errmsg() with vk_errcode()'s name */
/* raises a message formatted by the C library's printf rules, code "invalid" */
int lvk_errorf(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* the same with a code name ("nomem", "corrupt", "state", ...) */
int lvk_errorc(lua_State *L, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* luaL_argerror's wording, raised as an "invalid" error */
int lvk_argerror(lua_State *L, int arg, const char *msg);
/* pushes an error value; call may be NULL */
void lvk_pusherror(lua_State *L, const char *code, const char *call, const char *msg);
/* names the error value at the top of the stack after call when it is one
 * of ours without a name (leaves other values alone) */
void lvk_name_error(lua_State *L, const char *call);
/* a warning through the Lua module's log (vekterdb.log) when it is loaded,
 * else on stderr */
void lvk_warn(lua_State *L, const char *msg);
/* a userdata that frees p with fn when collected; keeps it safe across errors */
void **lvk_box(lua_State *L, void (*fn)(void *));
void lvk_box_release(lua_State *L, int idx);  /* frees now */
void lvk_setfuncs(lua_State *L, const luaL_Reg *l);
/* Registers a userdata class, as liolib's createmeta does: the metatable
 * `name` (its __name too) with the metamethods `meta`, and the methods in a
 * table under LVK_METHODS, which is also __index unless meta has one (an
 * __index function then looks methods up there).  With wrap, each method is
 * a closure of wrap whose upvalues are the method and its luaL_Reg entry
 * (a light userdata).  Leaves the stack as it was. */
void lvk_newclass(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods,
                  lua_CFunction wrap);

#endif
