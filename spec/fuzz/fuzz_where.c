/* fuzz_where.c: arbitrary bytes as a small stack program that builds
 * where-clauses (db.Record.<column>:<op>(...), &, |, ~, and_, or_) and runs
 * them with db:select against an in-memory SQLite table of six rows and a
 * column of every type (one named with a quote, a semicolon and "--").
 * The C side decodes the bytes into Lua values (column names, operators,
 * integers, floats with NaN and infinities, strings taken from the input,
 * nil, booleans, tables) and calls the builder through the Lua API; the Lua
 * driver keeps the expressions and an oracle.
 * Properties, abort() when broken:
 *  - a refusal is a string and one of our messages: never a Lua internal
 *    error, an SQL syntax error or "no such column"; a valid clause is
 *    refused only for SQLite's nesting limits ("parser stack overflow");
 *  - compiled SQL numbers its placeholders ?1..?n, n being the number of
 *    bound values; a name the table lacks never reaches the database;
 *  - the rows selected are the rows the oracle expects: each comparison is
 *    evaluated in Lua over the six rows (three-valued, as SQL does) where
 *    SQLite's type rules are plain (a number against a numeric column, a
 *    string against a text column, LIKE on ASCII); elsewhere a & b must
 *    select the rows both select, a | b the rows either selects, ~a none
 *    of the rows a selects;
 *  - the table still holds its six rows afterwards. */
#include "lua_host.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char DRIVER[] =
    "local vekterdb = require 'vekterdb'\n"
    "local where = require 'vekterdb.where'\n"
    "vekterdb.log.level = 'off'\n"
    "local Q = 'q\"; --'\n"
    "local db = vekterdb.new('t', { url = 'sqlite:///:memory:', columns = {\n"
    "  { name = 's', type = 'text' }, { name = 'n', type = 'integer' }, { name = 'x', type = 'real' },\n"
    "  { name = 'b', type = 'blob' }, { name = 'f', type = 'boolean' }, { name = Q, type = 'text' } } })\n"
    "local ROWS = {\n"
    "  { idx = 0, s = 'apple', n = 1, x = 0.5, b = '\\0\\1', f = true, [Q] = \"it's\" },\n"
    "  { idx = 1, s = 'Banana', n = -3, x = -2.25, b = 'ab', f = false, [Q] = '; DROP TABLE t; --' },\n"
    "  { idx = 2, s = '', n = 0, x = 0.0, b = '', f = true, [Q] = 'a\"b' },\n"
    "  { idx = 3 },\n"
    "  { idx = 4, s = '50%_x', n = 9007199254740993, x = 1e300, b = '\\255', f = false, [Q] = '%' },\n"
    "  { idx = 5, s = \"it's\", n = 7, x = 7.0, b = 'zz', f = true, [Q] = '' },\n"
    "}\n"
    "local recs = {}\n"
    "for i, r in ipairs(ROWS) do\n"
    "  local rec = { vector = { i, 1 } }\n"
    "  for k, v in pairs(r) do rec[k] = v end\n"
    "  recs[i] = rec\n"
    "end\n"
    "db:insert(recs)\n"
    "local NROWS = #ROWS\n"
    "local KIND = { idx = 'num', n = 'num', x = 'num', f = 'num', s = 'text', [Q] = 'text', b = 'blob',\n"
    "  vector = 'blob' }\n"
    "local INTERNAL = { 'attempt to index', 'attempt to call', 'attempt to compare',\n"
    "  'attempt to perform arithmetic', 'attempt to concatenate', 'attempt to get length',\n"
    "  'attempt to perform bitwise', 'bad argument #', 'stack overflow', 'table index is',\n"
    "  'has no integer representation', 'invalid value (at index', 'string length overflow',\n"
    "  'invalid option', 'syntax error', 'no such column', 'unrecognized token', 'near \"',\n"
    "  'incomplete input' }\n"
    "local texts, stack = {}, {}\n"
    /* a refusal, input text taken out (a value may well say "syntax error") */
    "local function clean(err)\n"
    /* our error values (vekterdb.Error) carry the message */
    "  if getmetatable(err) == vekterdb.Error then err = err.message end\n"
    "  if type(err) ~= 'string' then return 'error is a ' .. type(err) .. ': ' .. tostring(err) end\n"
    "  local msg = err\n"
    "  for s in pairs(texts) do msg = msg:gsub(s:gsub('%W', '%%%0'), '<input>') end\n"    "  msg = msg:gsub('parser stack overflow', '<SQLite limit>')\n"
    "  for _, p in ipairs(INTERNAL) do\n"
    "    if msg:find(p, 1, true) then return 'internal error: ' .. err end\n"
    "  end\n"
    "  return nil\n"
    "end\n"
    "local function note(v)\n"
    "  if type(v) == 'string' and #v > 0 then texts[v] = true\n"
    "  elseif type(v) == 'table' then for _, x in pairs(v) do note(x) end end\n"
    "end\n"
    "local M = {}\n"
    "function M.reset() texts, stack = {}, {} end\n"
    /* ---- the oracle: 1 true, 0 false, -1 NULL per row; nil: cannot tell ---- */
    "local function num(v)\n"
    "  if type(v) == 'boolean' then return v and 1 or 0 end\n"
    "  return v\n"
    "end\n"
    "local function plain(kind, v)\n"
    "  if kind == 'num' then return type(v) == 'number' or type(v) == 'boolean' end\n"
    "  if kind == 'text' then return type(v) == 'string' end\n"
    "  return false\n"
    "end\n"
    "local CMP = {\n"
    "  ['eq'] = function(a, b) return a == b end, ['ne'] = function(a, b) return a ~= b end,\n"
    "  ['lt'] = function(a, b) return a < b end, ['le'] = function(a, b) return a <= b end,\n"
    "  ['gt'] = function(a, b) return a > b end, ['ge'] = function(a, b) return a >= b end }\n"
    /* SQLite's LIKE for ASCII text: case-insensitive, % and _, an escape */
    "local function like(s, p, esc)\n"
    "  local memo = {}\n"
    "  local m\n"
    "  local function mm(i, j)\n"
    "    local key = i * (#p + 2) + j\n"
    "    if memo[key] == nil then memo[key] = m(i, j) end\n"
    "    return memo[key]\n"
    "  end\n"
    "  function m(i, j)\n"
    "    while j <= #p do\n"
    "      local c = p:sub(j, j)\n"
    "      if esc and c == esc then\n"
    "        j = j + 1\n"
    "        if j > #p then return false end\n"
    "        if i > #s or s:sub(i, i):lower() ~= p:sub(j, j):lower() then return false end\n"
    "        i, j = i + 1, j + 1\n"
    "      elseif c == '%' then\n"
    "        for k = i, #s + 1 do if mm(k, j + 1) then return true end end\n"
    "        return false\n"
    "      elseif c == '_' then\n"
    "        if i > #s then return false end\n"
    "        i, j = i + 1, j + 1\n"
    "      else\n"
    "        if i > #s or s:sub(i, i):lower() ~= c:lower() then return false end\n"
    "        i, j = i + 1, j + 1\n"
    "      end\n"
    "    end\n"
    "    return i > #s\n"
    "  end\n"
    "  return m(1, 1)\n"
    "end\n"
    "local function ascii(s) return not s:find('[%z\\128-\\255]') end\n"
    "local function leaf_truth(col, op, args)\n"
    "  local kind = KIND[col]\n"
    "  if not kind then return nil end\n"
    "  local t = {}\n"
    "  for r = 1, NROWS do\n"
    "    local v = ROWS[r][col]\n"
    "    if col == 'vector' then v = 'a vector' end\n"
    "    if op == 'is_null' then t[r] = v == nil and 1 or 0\n"
    "    elseif op == 'is_not_null' then t[r] = v ~= nil and 1 or 0\n"
    "    elseif op == 'in_' or op == 'not_in' then\n"
    "      local list = args[1]\n"
    "      local n = 0\n"
    "      for _ in pairs(list) do n = n + 1 end\n"
    "      if n ~= #list then return nil end\n"
    "      if n == 0 then t[r] = op == 'in_' and 0 or 1\n"
    "      else\n"
    "        for i = 1, n do if not plain(kind, list[i]) then return nil end end\n"
    "        if v == nil then t[r] = -1\n"
    "        else\n"
    "          local hit = false\n"
    "          for i = 1, n do if num(v) == num(list[i]) then hit = true end end\n"
    "          t[r] = (hit == (op == 'in_')) and 1 or 0\n"
    "        end\n"
    "      end\n"
    "    elseif op == 'between' then\n"
    "      local lo, hi = args[1], args[2]\n"
    "      if not plain(kind, lo) or not plain(kind, hi) then return nil end\n"
    "      if v == nil then t[r] = -1\n"
    "      else t[r] = (num(v) >= num(lo) and num(v) <= num(hi)) and 1 or 0 end\n"
    "    elseif op == 'like' then\n"
    "      local p, esc = args[1], args[2]\n"
    "      if kind ~= 'text' or type(p) ~= 'string' or #p > 200 or not ascii(p) then return nil end\n"
    "      if esc ~= nil and (type(esc) ~= 'string' or not ascii(esc)) then return nil end\n"
    "      if v == nil then t[r] = -1\n"
    "      else t[r] = like(v, p, esc) and 1 or 0 end\n"
    "    else\n"
    "      local w = args[1]\n"
    "      if not plain(kind, w) then return nil end\n"
    "      if v == nil then t[r] = -1\n"
    "      else t[r] = CMP[op](num(v), num(w)) and 1 or 0 end\n"
    "    end\n"
    "  end\n"
    "  return t\n"
    "end\n"
    "local function combine(op, parts)\n"
    "  local t = {}\n"
    "  for _, p in ipairs(parts) do if not p.t then return nil end end\n"
    "  for r = 1, NROWS do\n"
    "    if op == 'not' then t[r] = parts[1].t[r] == -1 and -1 or 1 - parts[1].t[r]\n"
    "    else\n"
    "      local win, lose = op == 'and' and 0 or 1, op == 'and' and 1 or 0\n"
    "      local res = lose\n"
    "      for _, p in ipairs(parts) do\n"
    "        if p.t[r] == win then res = win break end\n"
    "        if p.t[r] == -1 then res = -1 end\n"
    "      end\n"
    "      t[r] = res\n"
    "    end\n"
    "  end\n"
    "  return t\n"
    "end\n"
    /* ---- building ---- */
    "local RECORD = db.Record\n"
    /* kind: 0 db.Record, 1 a record of another table that has this column */
    "function M.leaf(kind, name, op, ...)\n"
    "  local args = table.pack(...)\n"
    "  note(name)\n"
    "  for i = 1, args.n do note(args[i]) end\n"
    "  local ok, e = pcall(function()\n"
    "    local rec = RECORD\n"
    "    if kind == 1 then rec = where.record({ { name = name } }, 'other') end\n"
    "    local col = rec[name]\n"
    "    return col[op](col, table.unpack(args, 1, args.n))\n"
    "  end)\n"
    "  if not ok then return clean(e) end\n"
    "  if not where.is_expr(e) then return 'built a ' .. type(e) end\n"
    "  local known = type(name) == 'string' and KIND[name] ~= nil\n"
    /* a blob column compared with a number or a boolean: the module may
     * refuse it (only strings convert to blobs) */
    "  local refusable = false\n"
    "  if KIND[name] == 'blob' then\n"
    "    local function other(v) return v ~= nil and type(v) ~= 'string' end\n"
    "    for i = 1, args.n do\n"
    "      if other(args[i]) and type(args[i]) ~= 'table' then refusable = true end\n"
    "      if type(args[i]) == 'table' then for _, x in pairs(args[i]) do refusable = refusable or other(x) end end\n"
    "    end\n"
    "  end\n"
    "  stack[#stack + 1] = { e = e, op = 'leaf', known = known, refusable = refusable,\n"
    "    t = known and leaf_truth(name, op, args) or nil }\n"
    "  return nil\n"
    "end\n"
    "local ops = { ['and'] = vekterdb.and_, ['or'] = vekterdb.or_ }\n"
    /* how: 'band' 'bor' (a & b, a | b; with v instead of b when given),
     * 'bnot', 'and' 'or' (k items) */
    "function M.combine(how, k, v, use_v)\n"
    "  if use_v then note(v) end\n"
    "  local need = (how == 'bnot') and 1 or (how == 'band' or how == 'bor') and (use_v and 1 or 2) or k\n"
    "  if #stack < need then return nil end\n"
    "  local parts = {}\n"
    "  for i = #stack - need + 1, #stack do parts[#parts + 1] = stack[i] end\n"
    "  local ok, e = pcall(function()\n"
    "    if how == 'bnot' then return ~parts[1].e end\n"
    "    if how == 'band' then return use_v and (parts[1].e & v) or (parts[1].e & parts[2].e) end\n"
    "    if how == 'bor' then return use_v and (v | parts[1].e) or (parts[1].e | parts[2].e) end\n"
    "    local es = {}\n"
    "    for i, p in ipairs(parts) do es[i] = p.e end\n"
    "    return ops[how](table.unpack(es, 1, k))\n"
    "  end)\n"
    "  if not ok then return clean(e) end\n"
    "  if use_v then return 'combined an expression with a ' .. type(v) end\n"
    "  for _ = 1, need do stack[#stack] = nil end\n"
    "  local op = (how == 'bnot' or how == 'not') and 'not' or (how == 'band' or how == 'and') and 'and' or 'or'\n"
    "  if #parts == 1 and op ~= 'not' then stack[#stack + 1] = parts[1] return nil end\n"
    "  local known, refusable = true, false\n"
    "  for _, p in ipairs(parts) do known, refusable = known and p.known, refusable or p.refusable end\n"
    "  stack[#stack + 1] = { e = e, op = op, kids = parts, known = known, refusable = refusable,\n"
    "    t = combine(op, parts) }\n"
    "  return nil\n"
    "end\n"
    /* ---- running ---- */
    "local function check_sql(e)\n"
    "  local sql, params = where.compile(e.e, '?')\n"
    "  local i = 0\n"
    "  for d in sql:gsub('\"[^\"]*\"', ''):gmatch('%?(%d+)') do   -- not inside quoted names\n"
    "    i = i + 1\n"
    "    if tonumber(d) ~= i then return 'placeholder ?' .. d .. ' where ?' .. i .. ' was due: ' .. sql end\n"
    "  end\n"
    "  if i ~= #params then return sql .. ': ' .. i .. ' placeholders for ' .. #params .. ' values' end\n"
    "  for _, p in ipairs(params) do\n"
    "    local ty = type(p)\n"
    "    if ty ~= 'number' and ty ~= 'string' and ty ~= 'boolean' then return 'bound a ' .. ty end\n"
    "    if p ~= p then return 'bound NaN' end\n"
    "  end\n"
    "  tostring(e.e)\n"
    "  return nil\n"
    "end\n"
    /* the rows db:select returns for e: a set of idx, or nil and a refusal */
    "local function rows(e)\n"
    "  local ok, res = pcall(function()\n"
    "    local got = {}\n"
    "    for rec in db:select(e.e, 'idx') do got[rec.idx] = true end\n"
    "    return got\n"
    "  end)\n"
    "  if ok then return res end\n"
    "  return nil, res\n"
    "end\n"
    "local function show(set)\n"
    "  local out = {}\n"
    "  for r = 0, NROWS - 1 do if set[r] then out[#out + 1] = tostring(r) end end\n"
    "  return '{' .. table.concat(out, ',') .. '}'\n"
    "end\n"
    "local verify\n"
    "function verify(e, depth)\n"
    "  local bad = check_sql(e)\n"
    "  if bad then return bad end\n"
    "  local got, err = rows(e)\n"
    "  if not got then\n"
    /* SQLite's own limits on nesting are refusals, not bugs */
    "    local limit = (type(err) == 'string' or getmetatable(err) == vekterdb.Error)\n"
    "      and (err:find('parser stack overflow', 1, true) or err:find('Expression tree is too large', 1, true))\n"
    "    if e.known and not limit and not e.refusable then\n"
    "      return 'refused a valid where-clause: ' .. tostring(err)\n"
    "    end\n"
    "    return clean(err)\n"
    "  end\n"
    "  if not e.known then return 'ran a where-clause naming a column the table lacks: ' .. tostring(e.e) end\n"
    "  if e.t then\n"
    "    for r = 1, NROWS do\n"
    "      if (e.t[r] == 1) ~= (got[r - 1] == true) then\n"
    "        return 'rows ' .. show(got) .. ' for ' .. tostring(e.e) .. ', row ' .. (r - 1) .. ' wrong'\n"
    "      end\n"
    "    end\n"
    "  elseif e.kids and depth < 3 then\n"
    "    local sets = {}\n"
    "    for i, k in ipairs(e.kids) do\n"
    "      sets[i] = rows(k)\n"
    "      if not sets[i] then return 'a part of a valid where-clause refused: ' .. tostring(k.e) end\n"
    "    end\n"
    "    for r = 0, NROWS - 1 do\n"
    "      local want\n"
    "      if e.op == 'not' then\n"
    "        if sets[1][r] and got[r] then want = 'not both' end\n"
    "      else\n"
    "        local all, any = true, false\n"
    "        for _, s in ipairs(sets) do all = all and s[r] == true; any = any or s[r] == true end\n"
    "        local should = any\n"
    "        if e.op == 'and' then should = all end\n"
    "        if should ~= (got[r] == true) then want = tostring(should) end\n"
    "      end\n"
    "      if want then return 'row ' .. r .. ' of ' .. tostring(e.e) .. ': expected ' .. want end\n"
    "    end\n"
    "    for _, k in ipairs(e.kids) do\n"
    "      local b = verify(k, depth + 1)\n"
    "      if b then return b end\n"
    "    end\n"
    "  end\n"
    "  return nil\n"
    "end\n"
    "function M.run(all)\n"
    "  local from = all and math.max(1, #stack - 3) or #stack\n"
    "  for i = from, #stack do\n"
    "    if stack[i] then\n"
    "      local bad = verify(stack[i], 0)\n"
    "      if bad then return bad end\n"
    "    end\n"
    "  end\n"
    "  local n = db:count()\n"
    "  if n ~= NROWS then return 'the table holds ' .. n .. ' rows' end\n"
    "  return nil\n"
    "end\n"
    "function M.depth() return #stack end\n"
    "return M\n";

static lua_State *L;
static int drv_ref;

typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

static unsigned u8(reader *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

static uint64_t u64(reader *r)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | u8(r);
    return v;
}

/* a string taken from the input: up to 63 bytes, or a long run of one byte */
static void push_input_string(reader *r)
{
    unsigned len = u8(r);
    if (len >= 250) {
        luaL_Buffer b;
        char c = (char)u8(r);
        size_t n = (len - 249) * 1000;
        char *s = luaL_buffinitsize(L, &b, n);
        memset(s, c, n);
        luaL_pushresultsize(&b, n);
        return;
    }
    len %= 64;
    if (len > r->n)
        len = (unsigned)r->n;
    lua_pushlstring(L, (const char *)r->p, len);
    r->p += len;
    r->n -= len;
}

static const char *const WORDS[] = {
    "apple", "Banana", "", "it's", "; DROP TABLE t; --", "a\"b", "%", "_", "50%_x", "APPLE", "b%",
    "%a%", "\\", "zz", "x' OR '1'='1", "5", "1e3", "0x10", " 7", "'; --", "\"",
};

static void push_value(reader *r, int depth)
{
    unsigned t = u8(r) % 10;
    switch (t) {
    case 0: lua_pushinteger(L, (int8_t)u8(r)); break;
    case 1: lua_pushinteger(L, (lua_Integer)u64(r)); break;
    case 2: {
        uint64_t bits = u64(r);
        double d;
        memcpy(&d, &bits, sizeof d);
        lua_pushnumber(L, d);
        break;
    }
    case 3: {
        static const double F[] = {NAN, INFINITY, -INFINITY, -0.0, 0.5, 1e300, 9007199254740992.0, 7.0,
                                   -2.25, 1e-300};
        unsigned k = u8(r) % 14;
        if (k < 10)
            lua_pushnumber(L, F[k]);
        else if (k == 10)
            lua_pushinteger(L, LUA_MININTEGER);
        else if (k == 11)
            lua_pushinteger(L, LUA_MAXINTEGER);
        else if (k == 12)
            lua_pushinteger(L, 9007199254740993LL);
        else
            lua_pushinteger(L, 9007199254740992LL);
        break;
    }
    case 4: push_input_string(r); break;
    case 5: lua_pushnil(L); break;
    case 6: lua_pushboolean(L, u8(r) & 1); break;
    case 7:
        if (depth > 0) {
            lua_pushinteger(L, 1);
            break;
        }
        {
            unsigned k = u8(r) % 6;
            lua_createtable(L, (int)k, 0);
            for (unsigned i = 1; i <= k; i++) {
                push_value(r, depth + 1);
                lua_rawseti(L, -2, i);
            }
        }
        break;
    case 8: {
        unsigned k = u8(r) % (sizeof WORDS / sizeof *WORDS);
        lua_pushstring(L, WORDS[k]);
        break;
    }
    default: {
        static const lua_Integer I[] = {1, -3, 0, 7, 9007199254740993LL, 4, 5};
        lua_pushinteger(L, I[u8(r) % 7]);
        break;
    }
    }
}

static const char *const COLUMNS[] = {"idx", "s", "n", "x", "b", "f", "q\"; --", "vector"};
static const char *const HOSTILE_NAMES[] = {"s;", "\"s\"", "S", "s ", "s\"", "'s'", "s --", "t.s", "*",
                                            "1", "idx or 1=1"};
static const char *const OPS[] = {"eq",      "ne",     "lt",      "le",   "gt",      "ge",
                                  "in_",     "not_in", "between", "like", "is_null", "is_not_null"};

/* calls M[fn] with the nargs values on top of the stack; aborts on a complaint */
static void call(const char *fn, int nargs)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, drv_ref);
    lua_getfield(L, -1, fn);
    lua_remove(L, -2);
    lua_insert(L, -(nargs + 1));
    if (lua_pcall(L, nargs, 1, 0) != LUA_OK) {
        fprintf(stderr, "fuzz_where: the driver failed in %s: %s\n", fn, lua_tostring(L, -1));
        abort();
    }
    if (!lua_isnil(L, -1)) {
        fprintf(stderr, "fuzz_where: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_pop(L, 1);
}

static void leaf(reader *r)
{
    unsigned c = u8(r) % 13;
    int kind = 0;
    if (c < 8) {
        lua_pushinteger(L, 0);
        lua_pushstring(L, COLUMNS[c]);
    } else if (c == 8 || c == 9) {  /* a name from the input, on this table or another */
        kind = c == 9;
        lua_pushinteger(L, kind);
        push_input_string(r);
    } else if (c == 10) {   /* a real name through another table's record */
        lua_pushinteger(L, 1);
        lua_pushstring(L, COLUMNS[u8(r) % 8]);
    } else if (c == 11) {
        lua_pushinteger(L, u8(r) & 1);
        lua_pushstring(L, HOSTILE_NAMES[u8(r) % (sizeof HOSTILE_NAMES / sizeof *HOSTILE_NAMES)]);
    } else {   /* not a string at all */
        lua_pushinteger(L, 0);
        push_value(r, 1);
    }
    unsigned op = u8(r) % 12;
    lua_pushstring(L, OPS[op]);
    int nargs;
    if (op < 6) {
        push_value(r, 0);
        nargs = 1;
    } else if (op < 8) {   /* in_, not_in: mostly a list */
        if (u8(r) & 3) {
            unsigned k = u8(r) % 8;
            lua_createtable(L, (int)k, 0);
            for (unsigned i = 1; i <= k; i++) {
                push_value(r, 1);
                lua_rawseti(L, -2, i);
            }
        } else {
            push_value(r, 0);
        }
        nargs = 1;
    } else if (op == 8) {
        push_value(r, 0);
        push_value(r, 0);
        nargs = 2;
    } else if (op == 9) {   /* like: a pattern and maybe an escape */
        push_value(r, 0);
        unsigned e = u8(r) % 4;
        if (e == 0) {
            nargs = 1;
        } else if (e == 1) {
            char ch = (char)u8(r);
            lua_pushlstring(L, &ch, 1);
            nargs = 2;
        } else if (e == 2) {
            push_value(r, 0);
            nargs = 2;
        } else {
            lua_pushliteral(L, "\\");
            nargs = 2;
        }
    } else {
        nargs = u8(r) & 1;   /* is_null(): sometimes with a stray argument */
        if (nargs)
            push_value(r, 0);
    }
    call("leaf", 3 + nargs);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    drv_ref = lua_host_start(&L, "=fuzz_where", DRIVER, sizeof DRIVER - 1, NULL, 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = {data, size};
    call("reset", 0);
    for (int step = 0; step < 48 && r.n; step++) {
        unsigned op = u8(&r) % 8;
        if (op <= 2) {
            leaf(&r);
        } else if (op <= 4) {   /* a & b, a | b; sometimes with a plain value */
            int use_v = (u8(&r) & 7) == 0;
            lua_pushstring(L, op == 3 ? "band" : "bor");
            lua_pushinteger(L, 2);
            if (use_v)
                push_value(&r, 0);
            else
                lua_pushnil(L);
            lua_pushboolean(L, use_v);
            call("combine", 4);
        } else if (op == 5) {
            lua_pushstring(L, "bnot");
            lua_pushinteger(L, 1);
            call("combine", 2);
        } else if (op == 6) {   /* and_(...) / or_(...) over the top k */
            unsigned b = u8(&r);
            lua_pushstring(L, b & 1 ? "or" : "and");
            lua_pushinteger(L, (lua_Integer)(b >> 1) % 4 + 1);
            call("combine", 2);
        } else {
            lua_pushboolean(L, 0);
            call("run", 1);
        }
    }
    lua_pushboolean(L, 1);
    call("run", 1);
    return 0;
}
