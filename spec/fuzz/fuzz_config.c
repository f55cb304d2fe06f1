/* fuzz_config.c: arbitrary bytes as the JSON configuration vekterdb.load reads.
 * A Lua 5.4 interpreter hosts the module once; each input is written to one
 * file and loaded. A table named "items" is opened read-only in a fixture
 * SQLite file that holds it (8 records, Flat index files "items.index" and
 * "items_l2.index" beside it), so valid-looking configurations go deep; any
 * other table is looked for in a fresh in-memory database (and not found:
 * loading never creates a table).
 * Property: load returns a database (which must then work) or raises one of
 * our error values (vekterdb.Error: a code and a message), never a Lua
 * internal error nor a message carrying the library's source position.
 * Seed 6 is the input that found such a position (an unknown key and a
 * missing index file: "lua/vekterdb.lua:856: cannot read index file"). */
#include "lua_host.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* (dir) -> function(path) returning nil or what went wrong */
static const char DRIVER[] =
    "local dir = ...\n"
    "local vekterdb = require 'vekterdb'\n"
    "local cjson = require 'cjson'\n"
    "vekterdb.log.level = 'off'\n"
    "local file = 'sqlite:///' .. dir .. '/fixture.sqlite'\n"
    "local db = vekterdb.new('items', { url = file, columns = {\n"
    "  { name = 'name', type = 'text' }, { name = 'n', type = 'integer' } } })\n"
    "local recs = {}\n"
    "for i = 1, 8 do recs[i] = { vector = { i, 1, 0, -i }, name = 'r' .. i, n = i } end\n"
    "db:insert(recs)\n"
    "db:create_index(dir .. '/items_l2.index', 'Flat', { metric = 'l2' })\n"
    "db:close()\n"
    "db = vekterdb.new('items', { url = file })\n"
    "db:create_index(dir .. '/items.index', 'Flat')\n"
    "db:execute('PRAGMA journal_mode=DELETE')\n"
    "db:close()\n"
    "local fixture = file .. '?mode=ro'\n"
    /* Lua's own messages for a bug in the Lua code, and the C module's for
     * an argument the Lua layer should have checked */
    "local INTERNAL = { 'attempt to index', 'attempt to call', 'attempt to compare',\n"
    "  'attempt to perform arithmetic', 'attempt to concatenate', 'attempt to get length',\n"
    "  'attempt to perform bitwise', 'bad argument #', 'stack overflow', 'table index is',\n"
    "  'has no integer representation', 'invalid value (at index', 'string length overflow',\n"
    "  'invalid option', 'invalid conversion' }\n"
    "return function(path, text)\n"
    "  local url = 'sqlite:///:memory:'\n"
    "  local ok, cfg = pcall(cjson.decode, text)\n"
    "  if ok and type(cfg) == 'table' then\n"
    "    if cfg.table_name == 'items' then url = fixture end\n"
    /* index files are trusted input (see fuzz_index) and /dev/zero or a
     * pipe would hang: outside our folder only missing files are tried */
    "    local fi = cfg.faiss_index\n"
    "    if type(fi) == 'string' and fi:find('/', 1, true) then\n"
    "      local f = io.open(fi, 'rb')\n"
    "      if f then f:close() return nil end\n"
    "    end\n"
    "  end\n"
    "  local lok, res = pcall(vekterdb.load, path, url)\n"
    "  if lok then\n"
    "    local cok, err = pcall(function()\n"
    "      assert(type(res.table_name) == 'string', 'no table_name')\n"
    "      res:count()\n"
    "      if res.index then res:search({ 1, 1, 0, -1 }, 2) end\n"
    "    end)\n"
    "    res:close()\n"
    "    if not cok then return 'loaded database fails: ' .. tostring(err) end\n"
    "    return nil\n"
    "  end\n"
    /* an error value of ours, with a code and the message; never our own
     * source position (an error of the library raised at the wrong level) */
    "  if getmetatable(res) ~= vekterdb.Error then return 'error is a ' .. type(res) .. ': ' .. tostring(res) end\n"
    "  if type(res.code) ~= 'string' or type(res.message) ~= 'string' then\n"
    "    return 'error value without code or message: ' .. tostring(res)\n"
    "  end\n"
    "  if res.code == 'internal' then return 'internal error: ' .. res.message end\n"
    "  res = res.message\n"
    "  if res:find('vekterdb[%w_/]*%.lua:%d+:') then return 'error carries our source position: ' .. res end\n"
    /* text from the configuration is taken out first: a table name may
     * well say "attempt to index" */
    "  local msg = res\n"
    "  if ok and type(cfg) == 'table' then\n"
    "    for k, v in pairs(cfg) do\n"
    "      for _, s in ipairs({ k, v }) do\n"
    "        if type(s) == 'string' and #s > 0 then\n"
    "          msg = msg:gsub(s:gsub('%W', '%%%0'), '<config text>')\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  for _, p in ipairs(INTERNAL) do\n"
    "    if msg:find(p, 1, true) then return 'internal error: ' .. res end\n"
    "  end\n"
    "  return nil\n"
    "end\n";

static lua_State *L;
static int run_ref;
static char cfg_path[256];
static char dir[128];
static char home[4096];   /* libFuzzer's folder: corpus and artifacts are relative to it */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof dir, "/tmp/vk-fuzz-config-%d", (int)getpid());
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0 || !getcwd(home, sizeof home)) {
        fprintf(stderr, "fuzz_config: cannot set up %s\n", dir);
        abort();
    }
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    const char *args[] = {dir};
    run_ref = lua_host_start(&L, "=fuzz_config", DRIVER, sizeof DRIVER - 1, args, 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(cfg_path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    /* relative index paths in a configuration resolve in our folder */
    if (chdir(dir) != 0)
        abort();
    lua_rawgeti(L, LUA_REGISTRYINDEX, run_ref);
    lua_pushstring(L, cfg_path);
    lua_pushlstring(L, (const char *)data, size);
    int rc = lua_pcall(L, 2, 1, 0);
    if (chdir(home) != 0)
        abort();
    if (rc != LUA_OK) {
        fprintf(stderr, "fuzz_config: the driver failed: %s\n", lua_tostring(L, -1));
        abort();
    }
    if (!lua_isnil(L, -1)) {
        fprintf(stderr, "fuzz_config: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_pop(L, 1);
    return 0;
}
