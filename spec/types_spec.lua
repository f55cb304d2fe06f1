-- Column types and BLOB values, on SQLite and PostgreSQL: the SQLAlchemy
-- types the Python VekterDB's tables declare (DateTime, Date, JSON,
-- String(n), BigInteger, Float, LargeBinary) read and written with the Lua
-- values the README's "Column types" lists, tables created here that
-- SQLAlchemy reads back, and vectors stored as BLOB wherever they come from.
local vekterdb = require "vekterdb"
local H = require "spec.helper"

local PG = H.backend == "postgresql"
local PYTHON = "/usr/bin/python3"

-- the catalog queries and SQLAlchemy's DDL here are SQLite's and
-- PostgreSQL's; MySQL's column types are in spec/mysql_spec.lua
if H.backend == "mysql" then
  describe("column types and BLOB values", function()
    pending("SQLite and PostgreSQL only: spec/mysql_spec.lua covers MySQL's types")
  end)
  return
end

local function has_python(module)
  local f = io.open(PYTHON)
  if not f then return false end
  f:close()
  return H.sh(PYTHON .. " -c " .. H.sh_quote("import " .. module .. "; print('yes')") .. " 2>/dev/null")
    :match("yes") ~= nil
end

-- the message of the error fn raised, which must contain every part
local function fails_with(fn, ...)
  local parts = { ... }
  return function(...)
    local err = H.error_of(fn, ...)
    for _, p in ipairs(parts) do
      assert(err:find(p, 1, true), "expected '" .. p .. "' in: " .. err)
    end
    return err
  end
end

local function ph(db, n) return db:placeholder(n) end

-- the SQL type of each column as the catalog shows it
local function sql_types(db)
  local out = {}
  if PG then
    for _, r in ipairs(db:execute([[SELECT a.attname, format_type(a.atttypid, a.atttypmod)
        FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped]],
        { db.table_name })) do
      out[r[1]] = r[2]
    end
  else
    for _, r in ipairs(db:execute('PRAGMA table_info("' .. db.table_name .. '")')) do out[r[2]] = r[3] end
  end
  return out
end

local function all_records(db, expr, ...)
  local out = {}
  for rec in db:select(expr, { ... }, { order_by = "idx" }) do out[#out + 1] = rec end
  return out
end

local function idxs(records)
  local out = {}
  for i, r in ipairs(records) do out[i] = r.idx end
  return out
end

local TYPED = {
  { name = "at", type = "DateTime" }, { name = "day", type = "date" }, { name = "meta", type = "JSON" },
  { name = "code", type = "String(8)" }, { name = "big", type = "BigInteger" },
  { name = "ratio", type = "Float" }, { name = "raw", type = "LargeBinary" },
  { name = "ok", type = "Boolean" }, { name = "note", type = "Text" }, { name = "n", type = "integer" },
}

describe("BLOB values", function()
  it("binds vekterdb.blob as a BLOB, and bytes that are not UTF-8 text as one too", function()
    local db = H.new()
    local typeof = PG and "SELECT pg_typeof($1)::text" or "SELECT typeof(?1)"
    local v = vekterdb.serialize_vector({ 1, 2, 3 })
    assert.are.equal(PG and "bytea" or "blob", db:execute(typeof, { vekterdb.blob("abc") })[1][1])
    assert.are.equal(PG and "bytea" or "blob", db:execute(typeof, { vekterdb.blob("") })[1][1])
    assert.are.equal(PG and "bytea" or "blob", db:execute(typeof, { v })[1][1])
    -- (PostgreSQL leaves a text parameter's type to the statement)
    if not PG then assert.are.equal("text", db:execute(typeof, { "abc" })[1][1]) end
    -- and come back as Lua strings, byte for byte
    local back = db:execute((PG and "SELECT $1::bytea" or "SELECT ?1"), { vekterdb.blob("a\0b") })[1][1]
    assert.are.equal("a\0b", back)
    local b = vekterdb.blob("xyz")
    assert.are.same({ 3, "xyz", b }, { #b, b:bytes(), vekterdb.blob(b) })
    assert.matches("expected a string, got number", H.error_of(vekterdb.blob, 5), 1, true)
    db:close()
  end)

  it("stores a vector written through execute as a BLOB that reads back", function()
    local db = H.new()
    db:insert({ { vector = { 1, 0, 0 } } })
    local sql = string.format("INSERT INTO %s (idx, vector) VALUES (%s, %s)", db.table_name, ph(db, 1), ph(db, 2))
    db:execute(sql, { 1, vekterdb.blob(vekterdb.serialize_vector({ 0, 1, 0 })) })
    db:execute(sql, { 2, vekterdb.serialize_vector({ 0, 0, 1 }) })
    local typeof = PG and "pg_typeof(vector)::text" or "typeof(vector)"
    local rows = db:execute(string.format("SELECT idx, %s FROM %s ORDER BY idx", typeof, db.table_name))
    for i = 1, 3 do assert.are.same({ i - 1, PG and "bytea" or "blob" }, rows[i]) end
    local got = db:fetch({ 1, 2 }, "vector")
    assert.are.same({ 0, 1, 0 }, got[1].vector:totable())
    assert.are.same({ 0, 0, 1 }, got[2].vector:totable())
    db:close()
  end)

  it("stores vectors as BLOB from inserts, insert_matrix, serialized bytes and updates", function()
    local db = H.new({ columns = { { name = "raw", type = "blob" } } })
    db:insert({ { vector = { 1, 2 }, raw = "text-like bytes" }, { vector = vekterdb.vector({ 3, 4 }) } })
    db:insert({ { vector = vekterdb.serialize_vector({ 5, 6 }) } }, { serialize_vectors = false })
    db:insert({ { vector = vekterdb.blob(vekterdb.serialize_vector({ 7, 8 })) } })
    db:insert_matrix(vekterdb.matrix({ { 9, 10 } }))
    db:update(db.Record.idx:eq(0), { vector = { 11, 12 } })
    local typeof = PG and "pg_typeof(%s)::text" or "typeof(%s)"
    local rows = db:execute(string.format("SELECT idx, %s, %s FROM %s ORDER BY idx", typeof:format("vector"),
      typeof:format("raw"), db.table_name))
    assert.are.equal(5, #rows)
    for _, r in ipairs(rows) do assert.are.equal(PG and "bytea" or "blob", r[2]) end
    assert.are.equal(PG and "bytea" or "blob", rows[#rows][3])   -- the updated record, raw copied
    assert.are.same({ 7, 8 }, db:fetch({ 3 }, "vector")[1].vector:totable())
    -- a blob column matches a where-clause's string as a blob
    assert.are.same({ 5 }, idxs(all_records(db, db.Record.raw:eq("text-like bytes"), "idx")))
    assert.are.same({ 5 }, idxs(all_records(db, db.Record.raw:eq(vekterdb.blob("text-like bytes")), "idx")))
    db:close()
  end)

  local python_sqlite = not PG and has_python("sqlite3")
  ;(python_sqlite and it or pending)("lets Python's sqlite3 read every vector written here", function()
    local db, url = H.new({ file = true })
    local path = url:gsub("^sqlite:///", "")
    db:insert({ { vector = { 1, 2 } } })
    local sql = string.format("INSERT INTO %s (idx, vector) VALUES (?1, ?2)", db.table_name)
    db:execute(sql, { 1, vekterdb.blob(vekterdb.serialize_vector({ 3, 4 })) })
    db:execute(sql, { 2, vekterdb.serialize_vector({ 5, 6 }) })
    local read = PYTHON .. " -c " .. H.sh_quote([[
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
try:
    rows = c.execute('SELECT idx, vector FROM "%s"' % sys.argv[2]).fetchall()
    print("rows", len(rows), all(isinstance(r[1], bytes) for r in rows))
except Exception as e:
    print("error", e)
]]) .. " " .. H.sh_quote(path) .. " "
    assert.are.equal("rows 3 True\n", H.sh(read .. db.table_name))
    -- the check has teeth: the same bytes stored as text fail as the issue says
    local other = vekterdb.new("as_text", { url = url })
    other:execute("INSERT INTO as_text (idx, vector) VALUES (?1, CAST(?2 AS TEXT))",
      { 0, vekterdb.serialize_vector({ 1, 2 }) })
    other:close()
    assert.matches("Could not decode to UTF-8 column 'vector'", H.sh(read .. "as_text"), 1, true)
    db:close()
  end)
end)

describe("column types", function()
  it("creates the SQL types SQLAlchemy creates, and reports them", function()
    local db = H.new({ columns = TYPED })
    local types = {}
    for _, c in ipairs(db.columns) do types[c.name] = c.type end
    assert.are.same({ idx = "integer", vector = "blob", at = "datetime", day = "date", meta = "json",
                      code = "varchar", big = "integer", ratio = "real", raw = "blob", ok = "boolean",
                      note = "text", n = "integer" }, types)
    assert.are.equal(8, db.columns[6].length)
    local want = PG and {
      idx = "bigint", vector = "bytea", at = "timestamp without time zone", day = "date", meta = "json",
      code = "character varying(8)", big = "bigint", ratio = "double precision", raw = "bytea",
      ok = "boolean", note = "text", n = "bigint",
    } or {
      idx = "BIGINT", vector = "BLOB", at = "DATETIME", day = "DATE", meta = "JSON", code = "VARCHAR(8)",
      big = "BIGINT", ratio = "FLOAT", raw = "BLOB", ok = "BOOLEAN", note = "TEXT", n = "BIGINT",
    }
    assert.are.same(want, sql_types(db))
    db:close()
  end)

  it("takes every spelling, and columns_dict and db.columns' own form", function()
    local spellings = { "datetime", "TIMESTAMP", "DateTime" }
    for _, s in ipairs(spellings) do
      local db = H.new({ columns = { { name = "t", type = s } } })
      assert.are.equal("datetime", db.columns[3].type)
      db:close()
    end
    local db = H.new({ columns_dict = { v = { type = "varchar", length = 4 }, w = { type = "VARCHAR(3)" } } })
    assert.are.same({ "varchar", 4, "varchar", 3 },
      { db.columns[3].type, db.columns[3].length, db.columns[4].type, db.columns[4].length })
    db:close()
    fails_with(H.new, "unknown type 'Interval'", "datetime")({ columns = { { name = "x", type = "Interval" } } })
    fails_with(H.new, "unknown type 'integer(4)'")({ columns = { { name = "x", type = "integer(4)" } } })
    fails_with(H.new, "length must be a positive integer")({ columns = { { name = "x", type = "text", length = 0 } } })
    fails_with(H.new, "length must be a positive integer")({ columns = { { name = "x", type = "date", length = 9 } } })
  end)

  describe("values", function()
    local db
    before_each(function() db = H.new({ columns = TYPED }) end)
    after_each(function() db:close() end)

    it("reads back what was written, in the documented forms", function()
      db:insert({
        { vector = { 1, 0 }, at = "2024-03-01T12:30:05.25", day = "2024-02-29", meta = { tags = { "a", "b" } },
          code = "äbcdefgh", big = 1234567890123, ratio = 0.1, raw = "\0\255", ok = true, note = "x", n = -3 },
        { vector = { 0, 1 }, at = "2024-03-01 12:30", meta = '[1, {"x": null}]' },
        { vector = { 1, 1 }, at = "2024-03-02", meta = 42 },
        { vector = { 2, 1 }, meta = true },
      })
      local recs = all_records(db, nil)
      local a = recs[1]
      assert.are.same({ "2024-03-01 12:30:05.25", "2024-02-29", '{"tags":["a","b"]}', "äbcdefgh",
                        1234567890123, 0.1, "\0\255", true, "x", -3 },
        { a.at, a.day, a.meta, a.code, a.big, a.ratio, a.raw, a.ok, a.note, a.n })
      assert.are.same({ "2024-03-01 12:30:00", "2024-03-02 00:00:00" }, { recs[2].at, recs[3].at })
      assert.are.equal('[1, {"x": null}]', recs[2].meta)
      assert.are.same({ "42", "true" }, { recs[3].meta, recs[4].meta })
      assert.is_nil(recs[4].at)
      -- fetch and search give the same values
      local f = db:fetch({ 0 }, "at", "day", "meta", "raw")[1]
      assert.are.same({ a.at, a.day, a.meta, a.raw }, { f.at, f.day, f.meta, f.raw })
      db:create_index(H.path("types.index"), "Flat", { metric = "l2" })
      local nb = db:search({ 1, 0 }, 1, "idx", "at", "day")[1].neighbors[1]
      assert.are.same({ 0, a.at, a.day }, { nb.idx, nb.at, nb.day })
    end)

    it("encodes a table with lua-cjson, and says so when lua-cjson is missing", function()
      local registry = debug.getregistry()
      local cached, loaded, preload = registry["vekterdb.json_encode"], package.loaded.cjson, package.preload.cjson
      registry["vekterdb.json_encode"] = nil
      package.loaded.cjson = nil
      package.preload.cjson = function() error("module 'cjson' not found") end
      local ok, err = pcall(db.insert, db, { { vector = { 1, 0 }, meta = { a = 1 } } })
      registry["vekterdb.json_encode"], package.loaded.cjson, package.preload.cjson = cached, loaded, preload
      assert.is_false(ok)
      assert.matches("column 'meta' holds JSON: a table needs lua-cjson, which is not installed: give JSON text",
        tostring(err), 1, true)
      db:insert({ { vector = { 1, 0 }, meta = '{"a": 1}' }, { vector = { 0, 1 }, meta = { a = 1 } } })
      assert.are.same({ '{"a": 1}', '{"a":1}' }, { db:fetch({ 0 }, "meta")[1].meta, db:fetch({ 1 }, "meta")[1].meta })
    end)

    it("refuses values the column cannot hold, naming it", function()
      local function bad(rec, ...) fails_with(db.insert, "record 1", ...)(db, { rec }) end
      bad({ vector = { 1, 0 }, code = "123456789" }, "column 'code' is VARCHAR(8): a value of 9 characters is too long")
      bad({ vector = { 1, 0 }, at = "2024-02-30" }, "column 'at' holds datetime values", "2024-02-30")
      bad({ vector = { 1, 0 }, at = "2024-03-01 12:30:00+02:00" }, "without a time zone")
      bad({ vector = { 1, 0 }, at = "2024-03-01 24:00:00" }, "column 'at'")
      bad({ vector = { 1, 0 }, at = "2024-03-01 12:00:00.1234567" }, "column 'at'")
      bad({ vector = { 1, 0 }, at = os.time() }, "column 'at' holds datetime values, got integer")
      bad({ vector = { 1, 0 }, day = "2024-03-01 00:00:00" }, "column 'day' holds date values")
      bad({ vector = { 1, 0 }, meta = "{'a': 1}" }, "column 'meta' holds JSON: the text is not JSON (at byte 2)")
      bad({ vector = { 1, 0 }, meta = "" }, "column 'meta' holds JSON")
      bad({ vector = { 1, 0 }, meta = { f = print } }, "column 'meta' holds JSON")
      bad({ vector = { 1, 0 }, meta = 0 / 0 }, "column 'meta' holds JSON")
      bad({ vector = { 1, 0 }, big = 1.5 }, "column 'big' holds integer values")
      assert.are.equal(0, db:count())
      fails_with(db.update, "column 'at' holds datetime values")(db, db.Record.idx:eq(0), { at = "yesterday" })
      fails_with(db.update, "column 'code' is VARCHAR(8)")(db, db.Record.idx:is_not_null(),
        { code = string.rep("x", 9) })
    end)

    it("updates them, with and without a new vector", function()
      db:insert({ { vector = { 1, 0 }, at = "2024-01-01", meta = "{}", code = "a", raw = "r" } })
      db:update(db.Record.idx:eq(0), { at = "2025-06-07 08:09:10.5", meta = { k = 1 }, day = "2025-01-31" })
      local r = db:fetch({ 0 }, "at", "meta", "day")[1]
      assert.are.same({ "2025-06-07 08:09:10.5", '{"k":1}', "2025-01-31" }, { r.at, r.meta, r.day })
      local moved, renumbered = db:update(db.Record.idx:eq(0), { vector = { 0, 1 }, code = "b" })
      local new = renumbered[0]
      assert.are.equal(1, moved)
      local rec = all_records(db, nil)[1]
      assert.are.same({ new, "2025-06-07 08:09:10.5", '{"k":1}', "2025-01-31", "b", "r" },
        { rec.idx, rec.at, rec.meta, rec.day, rec.code, rec.raw })
    end)

    it("compares times in where-clauses as times", function()
      db:insert({
        { vector = { 1, 0 }, at = "2024-03-01 12:00:00", day = "2024-03-01" },
        { vector = { 0, 1 }, at = "2024-03-01 12:00:00.5", day = "2024-03-02" },
        { vector = { 1, 1 }, at = "2024-03-02 00:00:00", day = "2024-03-03" },
      })
      local R = db.Record
      assert.are.same({ 0 }, idxs(all_records(db, R.at:eq("2024-03-01T12:00:00"), "idx")))
      assert.are.same({ 0 }, idxs(all_records(db, R.at:eq("2024-03-01 12:00"), "idx")))
      assert.are.same({ 1, 2 }, idxs(all_records(db, R.at:gt("2024-03-01 12:00:00"), "idx")))
      assert.are.same({ 0, 1 }, idxs(all_records(db, R.at:lt("2024-03-02"), "idx")))
      assert.are.same({ 1, 2 }, idxs(all_records(db, R.at:between("2024-03-01 12:00:00.1", "2024-03-02"), "idx")))
      assert.are.same({ 0, 2 }, idxs(all_records(db, R.day:in_({ "2024-03-01", "2024-03-03" }), "idx")))
      assert.are.same({ 1, 2 }, idxs(all_records(db, R.day:ge("2024-03-02"), "idx")))
      fails_with(db.select, "column 'at' holds datetime values", "not-a-time")(db, R.at:lt("not-a-time"))
      -- a filtered search and a delete take the same values
      db:create_index(H.path("where.index"), "Flat")
      local res = db:search({ 1, 0 }, 3, "idx", { filter = R.day:ge("2024-03-02") })
      assert.are.same({ 2, 1 }, idxs(res[1].neighbors))
      assert.are.equal(1, db:delete(R.at:eq("2024-03-02")))
    end)
  end)
end)

if PG and os.getenv("VEKTERDB_TEST_PG_SOCKET") then
  describe("PostgreSQL times", function()
    it("read in one form whatever DateStyle the database sets", function()
      local socket, port = os.getenv("VEKTERDB_TEST_PG_SOCKET"), os.getenv("VEKTERDB_TEST_PG_PORT")
      local admin = H.new()
      local dbname = H.table_name("datestyle")
      admin:execute("CREATE DATABASE " .. dbname)
      admin:execute("ALTER DATABASE " .. dbname .. " SET DateStyle = 'SQL, DMY'")
      local url = string.format("postgresql://postgres@/%s?host=%s&port=%s", dbname, socket, port)
      local db = vekterdb.new("t", { url = url, columns = { { name = "at", type = "datetime" } } })
      db:insert({ { vector = { 1, 0 }, at = "2024-01-02 03:04:05.5" } })
      -- the first rows of a cursor come as text, in the session's DateStyle
      assert.are.equal("2024-01-02 03:04:05.5", db:select(nil, "at")().at)
      assert.are.equal("2024-01-02 03:04:05.5", db:execute("SELECT at FROM t")[1][1])
      db:close()
      -- a connection setting of the caller's replaces ours
      local own = vekterdb.new("t", { url = url, connect_args = { options = "-c DateStyle=SQL,DMY" } })
      assert.are.equal("SQL, DMY", own:execute("SHOW DateStyle")[1][1])
      own:close()
      admin:execute("DROP DATABASE " .. dbname)
      admin:close()
    end)
  end)
end

-- a table the Python VekterDB created through SQLAlchemy, typed as
-- SQLAlchemy 1.4 emits it (CreateTable compiled for each dialect)
local SQLALCHEMY_DDL = PG and [[
CREATE TABLE %s (
	idx BIGSERIAL NOT NULL,
	vector BYTEA NOT NULL,
	at TIMESTAMP WITHOUT TIME ZONE,
	day DATE,
	meta JSON,
	metab JSONB,
	code VARCHAR(32),
	big BIGINT,
	ratio FLOAT,
	raw BYTEA,
	n INTEGER,
	ok BOOLEAN,
	PRIMARY KEY (idx)
)]] or [[
CREATE TABLE %s (
	idx BIGINT NOT NULL,
	vector BLOB NOT NULL,
	at DATETIME,
	day DATE,
	meta JSON,
	metab JSON,
	code VARCHAR(32),
	big BIGINT,
	ratio FLOAT,
	raw BLOB,
	n INTEGER,
	ok BOOLEAN,
	PRIMARY KEY (idx)
)]]

describe("a table SQLAlchemy created", function()
  it("maps its declared types to Lua values, for reads, writes and where-clauses", function()
    local name = H.table_name("sqla")
    local url = H.url(true)
    local setup = vekterdb.new(H.table_name("setup"), { url = url })
    setup:execute(SQLALCHEMY_DDL:format(name))
    -- rows as SQLAlchemy stores them: SQLite keeps DateTime as text with
    -- microseconds, and a JSON number as a number (NUMERIC affinity)
    local values = PG and "($1, $2, '2024-01-02 03:04:05', '2024-01-02', '42', '{\"a\": 1}', 'abc', 1, 0.5, $3, 7, true)"
      or "(?1, ?2, '2024-01-02 03:04:05.000000', '2024-01-02', 42, '{\"a\": 1}', 'abc', 1, 0.5, ?3, 7, 1)"
    for i = 0, 149 do   -- more than one block of a PostgreSQL cursor
      setup:execute(string.format("INSERT INTO %s VALUES %s", name, values),
        { i, vekterdb.serialize_vector({ 1, i }), vekterdb.blob("\1\2") })
    end
    setup:close()
    local db = vekterdb.new(name, { url = url })
    local types = {}
    for _, c in ipairs(db.columns) do types[c.name] = c.type .. (c.length and "(" .. c.length .. ")" or "") end
    assert.are.same({ idx = "integer", vector = "blob", at = "datetime", day = "date", meta = "json",
                      metab = "json", code = "varchar(32)", big = "integer", ratio = "real", raw = "blob",
                      n = "integer", ok = "boolean" }, types)
    local recs = all_records(db, nil)
    assert.are.equal(150, #recs)
    for _, r in ipairs({ recs[1], recs[150] }) do
      assert.are.same({ "2024-01-02 03:04:05", "2024-01-02", "42", "abc", 1, 0.5, "\1\2", 7, true },
        { r.at, r.day, r.meta, r.code, r.big, r.ratio, r.raw, r.n, r.ok })
      assert.are.equal('{"a": 1}', r.metab)
    end
    -- writes that were refused before: text into DateTime, JSON tables
    db:insert({ { vector = { 2, 2 }, at = "2024-01-03 00:00:00", day = "2024-01-03", meta = { b = 2 },
                  code = "new", raw = "\3" } })
    local f = db:fetch({ 150 }, "at", "day", "meta", "raw")[1]
    assert.are.same({ "2024-01-03 00:00:00", "2024-01-03", '{"b":2}', "\3" }, { f.at, f.day, f.meta, f.raw })
    -- where-clauses match the rows SQLAlchemy wrote and the row written here
    assert.are.equal(150, #all_records(db, db.Record.at:eq("2024-01-02 03:04:05"), "idx"))
    assert.are.same({ 150 }, idxs(all_records(db, db.Record.at:gt("2024-01-02 03:04:05"), "idx")))
    assert.are.same({ 150 }, idxs(all_records(db, db.Record.day:eq("2024-01-03"), "idx")))
    db:update(db.Record.idx:eq(0), { at = "2030-01-01 00:00:00.000001" })
    assert.are.same({ 0 }, idxs(all_records(db, db.Record.at:ge("2030-01-01"), "idx")))
    assert.are.equal("2030-01-01 00:00:00.000001", db:fetch({ 0 }, "at")[1].at)
    db:close()
  end)

  local reflect = PG and has_python("sqlalchemy") and has_python("psycopg2") or (not PG and has_python("sqlalchemy"))
  ;(reflect and it or pending)("is read back by SQLAlchemy with the types it declares", function()
    local db, url = H.new({ file = true, columns = TYPED })
    db:insert({ { vector = { 1, 0 }, at = "2024-03-01 12:30:05.25", day = "2024-02-29", meta = { k = { 1, 2 } },
                  code = "abc", big = 5, ratio = 0.5, raw = "\0\1", ok = true, note = "n", n = 3 } })
    local sa_url = url
    if PG then
      -- the throw-away server's socket URL, in SQLAlchemy's spelling
      sa_url = url:gsub("^postgresql://", "postgresql+psycopg2://")
    end
    local script = [[
import sys, datetime
import sqlalchemy as sa
e = sa.create_engine(sys.argv[1])
t = sa.Table(sys.argv[2], sa.MetaData(), autoload_with=e)
print(" ".join("%s=%s" % (c.name, type(c.type).__name__) for c in t.columns))
with e.connect() as c:
    r = c.execute(sa.select(t)).fetchone()
print(repr(r.at), repr(r.day), repr(r.meta), repr(r.code), repr(bytes(r.raw)), repr(r.ok))
]]
    local out = H.sh(PYTHON .. " -c " .. H.sh_quote(script) .. " " .. H.sh_quote(sa_url) .. " "
      .. H.sh_quote(db.table_name) .. " 2>&1")
    local want_types = PG
      and "idx=BIGINT vector=BYTEA at=TIMESTAMP day=DATE meta=JSON code=VARCHAR big=BIGINT "
        .. "ratio=DOUBLE_PRECISION raw=BYTEA ok=BOOLEAN note=TEXT n=BIGINT\n"
      or "idx=BIGINT vector=BLOB at=DATETIME day=DATE meta=JSON code=VARCHAR big=BIGINT "
        .. "ratio=FLOAT raw=BLOB ok=BOOLEAN note=TEXT n=BIGINT\n"
    assert.are.equal(want_types .. "datetime.datetime(2024, 3, 1, 12, 30, 5, 250000) datetime.date(2024, 2, 29) "
      .. "{'k': [1, 2]} 'abc' b'\\x00\\x01' True\n", out)
    db:close()
  end)
end)
