-- PostgreSQL only: URLs and connection settings, schemas, tables written by
-- others (the Python VekterDB's layout), long and nested reads, and the exact
-- errors a user sees when the URL, the server or the network is wrong.
-- spec/support/pg.sh provides the server and these variables:
--   VEKTERDB_TEST_PG_URL       superuser over the Unix socket
--   VEKTERDB_TEST_PG_SOCKET    the socket's folder
--   VEKTERDB_TEST_PG_PORT      the TCP port on 127.0.0.1 (scram-sha-256)
--   VEKTERDB_TEST_PG_DB        the database
--   VEKTERDB_TEST_PG_PW_USER   a role with a password...
--   VEKTERDB_TEST_PG_PW_FILE   ...kept in this file
local vekterdb = require "vekterdb"
local H = require "spec.helper"

if H.backend ~= "postgresql" then
  describe("PostgreSQL backend", function()
    pending("runs only in the postgresql run of make test (VEKTERDB_TEST_BACKEND=postgresql)")
  end)
  return
end

local SOCKET = os.getenv("VEKTERDB_TEST_PG_SOCKET")
local PORT = os.getenv("VEKTERDB_TEST_PG_PORT")
local DB = os.getenv("VEKTERDB_TEST_PG_DB")
local PW_USER = os.getenv("VEKTERDB_TEST_PG_PW_USER")
local PW_FILE = os.getenv("VEKTERDB_TEST_PG_PW_FILE")

local PASSWORD
if PW_FILE then
  local f = io.open(PW_FILE)
  if f then
    PASSWORD = f:read("l")
    f:close()
  end
end

-- runs the test only when the throw-away server's details are known
local function local_server(name, fn)
  if SOCKET and PORT and DB then
    it(name, fn)
  else
    pending(name .. " (needs the server of spec/support/pg.sh)")
  end
end

local function password_server(name, fn)
  if PORT and DB and PW_USER and PASSWORD then
    it(name, fn)
  else
    pending(name .. " (needs the password role of spec/support/pg.sh)")
  end
end

local function socket_url(dbname, query)
  return string.format("postgresql://postgres@/%s?host=%s&port=%s%s", dbname or DB, SOCKET, PORT,
    query and ("&" .. query) or "")
end

local function tcp_url(user, password, dbname, port)
  return string.format("postgresql://%s:%s@127.0.0.1:%s/%s", user, password, port or PORT, dbname or DB)
end

local function expect_exact(message, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  assert.are.equal(message, tostring(err))
  return tostring(err)
end

local function no_password(err)
  if PASSWORD then assert.is_nil(err:find(PASSWORD, 1, true), "the password leaked: " .. err) end
  assert.is_nil(err:find("not-the-password-42", 1, true), "the password leaked: " .. err)
end

-- a handle for running SQL of our own
local admin
local function sql(text, params) return admin:execute(text, params) end

setup(function()
  admin = H.new({}, H.table_name("pg_admin"))
end)

teardown(function()
  if admin then admin:close() end
end)

local function one(text, params) return sql(text, params)[1][1] end

describe("PostgreSQL URLs", function()
  local_server("takes postgresql:// and postgres:// with options for libpq", function()
    local name = H.table_name("urls")
    local db = vekterdb.new(name, { url = socket_url(DB, "application_name=vk_spec_url&sslmode=disable") })
    assert.are.equal("vk_spec_url", db:execute("SELECT current_setting('application_name')")[1][1])
    db:insert({ { vector = { 1, 2, 3 } } })
    db:close()
    local again = vekterdb.new(name, { url = (socket_url(DB):gsub("^postgresql:", "postgres:")) })
    assert.are.equal(1, again:count())
    assert.are.equal("vekterdb", again:execute("SELECT current_setting('application_name')")[1][1])
    again:close()
    -- SQLAlchemy's driver suffix is accepted too
    local psy = vekterdb.new(name, { url = (socket_url(DB):gsub("^postgresql:", "postgresql+psycopg2:")) })
    assert.are.equal(1, psy:count())
    psy:close()
  end)

  local_server("takes connection settings from connect_args, over the URL's", function()
    local db = vekterdb.new(H.table_name("args"), {
      url = "postgresql:///" .. DB .. "?application_name=from_url",
      connect_args = { host = SOCKET, port = PORT, user = "postgres", application_name = "from_args" },
    })
    assert.are.equal("from_args", db:execute("SELECT current_setting('application_name')")[1][1])
    assert.are.equal("postgres", db:execute("SELECT current_user")[1][1])
    db:close()
  end)

  password_server("logs in with a password over TCP", function()
    local db = vekterdb.new(H.table_name("tcp"), { url = tcp_url(PW_USER, PASSWORD) .. "?sslmode=disable" })
    assert.are.equal(PW_USER, db:execute("SELECT current_user")[1][1])
    assert.are.equal("127.0.0.1/32", db:execute("SELECT inet_client_addr()::text")[1][1])
    db:insert({ { vector = { 1, 0 } }, { vector = { 0, 1 } } })
    assert.are.equal(2, db:count())
    db:close()
  end)
end)

describe("PostgreSQL schemas", function()
  it("creates, opens and searches a table in the named schema, apart from public", function()
    local schema = H.table_name("vk_schema")
    sql('CREATE SCHEMA "' .. schema .. '"')
    local name = H.table_name("docs")
    local db = H.new({ schema = schema, columns = { { name = "label", type = "text", unique = true } } }, name)
    -- the same name in public is another table
    local other = H.new({ columns = { { name = "weight", type = "real" } } }, name)
    other:insert({ { vector = { 9, 9 }, weight = 1.5 } })
    local recs = {}
    for i = 0, 19 do recs[#recs + 1] = { vector = { math.cos(i), math.sin(i) }, label = "l" .. i } end
    assert.are.equal(20, db:insert(recs, { batch_size = 7 }))
    assert.are.equal(1, one("SELECT count(*) FROM information_schema.tables "
      .. "WHERE table_schema = $1 AND table_name = $2", { schema, name }))
    assert.are.equal(20, one(string.format('SELECT count(*) FROM "%s"."%s"', schema, name)))
    assert.are.equal(1, other:count())
    local file = H.path("schema.index")
    db:create_index(file, "Flat", { metric = "l2" })
    local nb = db:search({ math.cos(5), math.sin(5) }, 1, "label")[1].neighbors[1]
    assert.are.equal("l5", nb.label)
    local config = H.path("schema.json")
    db:save(config)
    db:close()
    other:close()
    -- the configuration holds no schema (the Python library has no such
    -- argument): load is given it again
    assert.is_nil(H.read_file(config):find('"schema"', 1, true))
    local again = vekterdb.load(config, H.url(), { schema = schema })
    assert.are.equal(schema, again.schema)
    assert.are.same({ "idx", "vector", "label" }, { again.columns[1].name, again.columns[2].name,
                                                   again.columns[3].name })
    assert.is_true(again.columns[3].unique)
    assert.are.equal(20, again:count())
    again:close()
    os.remove(file)
  end)

  it("reports a schema that does not exist with PostgreSQL's message", function()
    expect_exact('vekterdb.new: cannot create table t_nowhere: PostgreSQL error: schema "no_such_schema" does not exist',
      vekterdb.new, "t_nowhere", { url = H.url(), schema = "no_such_schema" })
  end)
end)

describe("tables written by others", function()
  local D = 16

  it("opens and searches a table in the Python VekterDB's layout", function()
    local name = H.table_name("py_layout")
    -- what SQLAlchemy emits for VekterDB(..., columns_dict={"id": {"type": Text,
    -- "unique": True, "nullable": False, "index": True}})
    sql(string.format([[CREATE TABLE %s (
      idx BIGINT NOT NULL, vector BYTEA NOT NULL, id TEXT NOT NULL, PRIMARY KEY (idx))]], name))
    sql(string.format("CREATE UNIQUE INDEX ix_%s_id ON %s (id)", name, name))
    local r = H.rng(5)
    local vectors = {}
    for i = 0, 199 do
      vectors[i] = H.normalize(r.vector(D))
      sql(string.format("INSERT INTO %s (idx, vector, id) VALUES ($1, $2, $3)", name),
        { i, vekterdb.serialize_vector(vectors[i]), string.format("doc-%03d", i) })
    end
    local db = vekterdb.new(name, { url = H.url() })
    assert.are.equal(D, db.d)
    assert.are.equal(200, db:count())
    local id = db.columns[3]
    assert.are.equal("id", id.name)
    assert.are.equal("text", id.type)
    assert.is_true(id.unique)
    assert.is_true(id.index)
    assert.is_false(id.nullable)
    assert.is_true(db.columns[1].primary_key)
    local file = H.path("py.index")
    db:create_index(file, "Flat")
    local res = db:search({ vectors[17], vectors[123] }, 2, "idx", "id")
    assert.are.equal("doc-017", res[1].neighbors[1].id)
    assert.are.equal(123, res[2].neighbors[1].idx)
    assert.is_true(math.abs(res[2].neighbors[1].metric - 1) < 1e-5)
    local nn = db:nearest_neighbors("id", { "doc-042" }, 3, "id")
    assert.are.equal(3, #nn[1].neighbors)
    -- and VekterDB's own inserts go on from there
    db:insert({ { vector = vectors[1], id = "doc-200" } })
    assert.are.equal(200, db:fetch({ 200 }, "idx")[1].idx)
    assert.are.equal(201, db.index.ntotal)
    db:close()
    os.remove(file)
  end)

  it("reads and writes integer, real, numeric, boolean, varchar, jsonb and timestamp columns", function()
    local name = H.table_name("typed")
    sql(string.format([[CREATE TABLE %s (idx BIGINT PRIMARY KEY, vector BYTEA NOT NULL,
      small SMALLINT, count INTEGER, ratio REAL, price NUMERIC(10, 2), ok BOOLEAN,
      code VARCHAR(10), doc JSONB, seen TIMESTAMP, note CHAR(3))]], name))
    local db = vekterdb.new(name, { url = H.url() })
    local types = {}
    for _, c in ipairs(db.columns) do types[c.name] = c.type end
    assert.are.same({ idx = "integer", vector = "blob", small = "integer", count = "integer",
                      ratio = "real", price = "real", ok = "boolean", code = "varchar", doc = "json",
                      seen = "datetime", note = "varchar" }, types)
    db:insert({
      { vector = { 1, 2 }, small = -7, count = 70000, ratio = 0.5, price = 12.25, ok = true,
        code = "abc", doc = '{"a": 1}', seen = "2024-03-01 12:30:00", note = "xy" },
      { vector = { 3, 4 } },
    })
    local rows = {}
    for rec in db:select(nil, { order_by = "idx" }) do rows[#rows + 1] = rec end
    assert.are.equal(2, #rows)
    local a = rows[1]
    assert.are.same({ -7, 70000, 0.5, 12.25, true, "abc", '{"a": 1}', "2024-03-01 12:30:00", "xy " },
      { a.small, a.count, a.ratio, a.price, a.ok, a.code, a.doc, a.seen, a.note })
    -- fetch reads binary results: numeric, real, jsonb and smallint decoded from their wire form
    local got = db:fetch({ 0 }, "price", "ratio", "doc", "small", "count", "ok")[1]
    assert.are.same({ 12.25, 0.5, '{"a": 1}', -7, 70000, true },
      { got.price, got.ratio, got.doc, got.small, got.count, got.ok })
    -- ...and text results when a column has no binary reader
    assert.are.same({ "2024-03-01 12:30:00", 12.25 }, { db:fetch({ 0 }, "seen", "price")[1].seen,
                                                        db:fetch({ 0 }, "seen", "price")[1].price })
    assert.is_nil(rows[2].small)
    assert.is_nil(rows[2].seen)
    -- numeric has no binary writer here: COPY's text format, the server's message
    expect_exact('insert: cannot insert the record with idx 2: value "40000" is out of range for type smallint',
      db.insert, db, { { vector = { 5, 6 }, small = 40000 } })
    assert.are.equal(2, db:count())
    db:close()
  end)

  it("checks integer ranges before a binary COPY", function()
    local name = H.table_name("small")
    sql(string.format("CREATE TABLE %s (idx BIGINT PRIMARY KEY, vector BYTEA NOT NULL, n SMALLINT)", name))
    local db = vekterdb.new(name, { url = H.url() })
    expect_exact("insert: cannot insert the record with idx 1: value 40000 is out of range for column 'n' (smallint)",
      db.insert, db, { { vector = { 1, 2 }, n = 1 }, { vector = { 5, 6 }, n = 40000 } })
    assert.are.equal(0, db:count())
    assert.are.equal(2, db:insert({ { vector = { 1, 2 }, n = -32768 }, { vector = { 5, 6 }, n = 32767 } }))
    assert.are.same({ -32768, 32767 }, { db:fetch({ 0 }, "n")[1].n, db:fetch({ 1 }, "n")[1].n })
    db:close()
  end)
end)

describe("reading through cursors", function()
  local db, file
  local N = 2500

  setup(function()
    db = H.new({ columns = { { name = "tag", type = "text" } } })
    local r = H.rng(9)
    local i = -1
    db:insert(function()
      i = i + 1
      if i < N then return { vector = r.vector(4), tag = "t" .. i } end
    end, { batch_size = 1000 })
    file = H.path("cursor.index")
    db:create_index(file, "Flat", { metric = "l2" })
  end)

  teardown(function()
    db:close()
    os.remove(file)
  end)

  it("returns every row of a select longer than one block, in order", function()
    local n, last = 0, -1
    for rec in db:select(nil, "idx", "tag", { order_by = "idx" }) do
      assert.are.equal(last + 1, rec.idx)
      assert.are.equal("t" .. rec.idx, rec.tag)
      last = rec.idx
      n = n + 1
    end
    assert.are.equal(N, n)
  end)

  it("runs searches, fetches, counts and inserts inside a select loop", function()
    local seen, inserted = 0, 0
    for rec in db:select(db.Record.idx:lt(1500), "idx", "vector", { order_by = "idx" }) do
      seen = seen + 1
      if rec.idx % 300 == 0 then
        local nb = db:search(rec.vector, 1, "idx")[1].neighbors[1]
        assert.are.equal(rec.idx, nb.idx)
        assert.are.equal("t" .. rec.idx, db:fetch({ rec.idx }, "tag")[1].tag)
        assert.are.equal(N + inserted, db:count())
        for inner in db:select(db.Record.idx:eq(rec.idx + 1), "idx") do
          assert.are.equal(rec.idx + 1, inner.idx)
        end
      end
      if rec.idx == 700 then
        db:insert({ { vector = { 1, 1, 1, 1 }, tag = "inside" } })
        inserted = 1
      end
    end
    assert.are.equal(1500, seen)
    assert.are.equal(N + 1, db:count())
    assert.are.equal(N + 1, db.index.ntotal)
  end)

  it("runs SQL of the caller's that ends in a comment, or binds values", function()
    assert.are.same({ { 1, "a" } }, db:execute("SELECT 1, 'a' -- the first row"))
    assert.are.same({ { 3000000000, 2.5, true, "x" } }, db:execute("SELECT $1, $2, $3, $4",
      { 3000000000, 2.5, true, "x" }))
    assert.are.same({ { 7 } }, db:execute("SELECT $1 + 2", { 5 }))
  end)

  it("reports a query the server refuses, and goes on", function()
    expect_exact('execute: PostgreSQL error: invalid input syntax for type integer: "x"', db.execute, db,
      "SELECT $1::int", { "x" })
    expect_exact('execute: PostgreSQL error: column "nope" does not exist', db.execute, db, "SELECT nope FROM "
      .. db.table_name)
    expect_exact('select: PostgreSQL error: operator does not exist: text > integer',
      function() for _ in db:select(db.Record.tag:gt(5)) do end end)
    assert.are.equal(N + 1, db:count())
    assert.are.equal(2, #db:execute("SELECT idx FROM " .. db.table_name .. " WHERE idx < $1", { 2 }))
  end)

  it("leaves nothing open when a loop is broken off", function()
    for rec in db:select(nil, "idx") do
      if rec.idx > 5 then break end
    end
    collectgarbage()
    collectgarbage()
    -- no transaction left open, no cursor left behind
    assert.are.equal(0, #db:execute("SELECT name FROM pg_cursors WHERE statement NOT LIKE '%pg_cursors%'"))
    local state = db:execute("SELECT state FROM pg_stat_activity WHERE pid = pg_backend_pid()")[1][1]
    assert.are.equal("active", state)
    assert.are.equal(0, one("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'"))
  end)
end)

describe("PostgreSQL errors", function()
  it("refuses malformed URLs", function()
    expect_exact("vekterdb.new: invalid database URL: the port must be a number", vekterdb.new, "t",
      { url = "postgresql://u:not-the-password-42@localhost:port/db" })
    expect_exact("vekterdb.new: invalid database URL: unterminated [ in the host", vekterdb.new, "t",
      { url = "postgresql://u@[::1/db" })
    expect_exact("vekterdb.new: invalid database URL: bad percent escape in the password", vekterdb.new, "t",
      { url = "postgresql://u:not-the-password-42%zz@localhost/db" })
    expect_exact("vekterdb.new: invalid database URL: query option without a name=value form", vekterdb.new, "t",
      { url = "postgresql://u@localhost/db?sslmode" })
    expect_exact("vekterdb.new: connect_args must be a table", vekterdb.new, "t",
      { url = "postgresql://u@localhost/db", connect_args = "sslmode=disable" })
  end)

  it("passes on libpq's refusal of an unknown or bad option", function()
    local err = expect_exact('vekterdb.new: cannot connect to PostgreSQL: invalid connection option "sslmood"', vekterdb.new,
      "t", { url = "postgresql://u:not-the-password-42@localhost/db?sslmood=disable" })
    no_password(err)
    err = expect_exact('vekterdb.new: cannot connect to PostgreSQL: invalid sslmode value: "sometimes"', vekterdb.new, "t",
      { url = "postgresql://u@localhost/db", connect_args = { sslmode = "sometimes",
                                                                password = "not-the-password-42" } })
    no_password(err)
  end)

  it("reports a refused connection", function()
    -- port 1 on the loopback: nothing listens there
    local err = expect_exact('vekterdb.new: cannot connect to PostgreSQL: connection to server at "127.0.0.1", port 1 failed: '
      .. "Connection refused Is the server running on that host and accepting TCP/IP connections?",
      vekterdb.new, "t", { url = "postgresql://u:not-the-password-42@127.0.0.1:1/db" })
    no_password(err)
  end)

  password_server("reports a wrong password, and never shows it", function()
    local err = expect_exact(string.format('vekterdb.new: cannot connect to PostgreSQL: connection to server at "127.0.0.1", '
      .. 'port %s failed: FATAL: password authentication failed for user "%s"', PORT, PW_USER),
      vekterdb.new, "t", { url = tcp_url(PW_USER, "not-the-password-42") })
    no_password(err)
  end)

  password_server("reports a missing database, and never shows the password", function()
    local err = expect_exact(string.format('vekterdb.new: cannot connect to PostgreSQL: connection to server at "127.0.0.1", '
      .. 'port %s failed: FATAL: database "no_such_db" does not exist', PORT),
      vekterdb.new, "t", { url = tcp_url(PW_USER, PASSWORD, "no_such_db") })
    no_password(err)
    if SOCKET then
      expect_exact(string.format('vekterdb.new: cannot connect to PostgreSQL: connection to server on socket '
        .. '"%s/.s.PGSQL.%s" failed: FATAL: database "no_such_db" does not exist', SOCKET, PORT),
        vekterdb.new, "t", { url = socket_url("no_such_db") })
    end
  end)

  it("rolls back the whole batch on a unique violation and names the record", function()
    local db = H.new({ columns = { { name = "id", type = "text", unique = true } } })
    local recs = {}
    for i = 0, 9 do recs[#recs + 1] = { vector = { i, 1 }, id = "r" .. i } end
    db:insert(recs)
    local file = H.path("unique.index")
    db:create_index(file, "Flat")
    expect_exact(string.format('insert: cannot insert the record with idx 12: duplicate key value violates unique '
      .. 'constraint "%s_id_key" (Key (id)=(r3) already exists.)', db.table_name),
      db.insert, db, { { vector = { 1, 1 }, id = "a" }, { vector = { 1, 2 }, id = "b" },
                       { vector = { 1, 3 }, id = "r3" }, { vector = { 1, 4 }, id = "c" } })
    assert.are.equal(10, db:count())
    assert.are.equal(10, db.index.ntotal)
    assert.are.equal(10, vekterdb.faiss.read_index(file).ntotal)
    -- the connection is usable again and the idx values go on from 10
    assert.are.equal(1, db:insert({ { vector = { 2, 2 }, id = "a" } }))
    assert.are.equal(11, db:count())
    db:close()
    os.remove(file)
  end)

  it("reports a connection dropped half-way through a batch, keeps the batches before it, "
    .. "and reconnects", function()
    local db = H.new()
    local file = H.path("dropped.index")
    db:insert({ { vector = { 0, 1 } } })
    db:create_index(file, "Flat")
    local pid = db:execute("SELECT pg_backend_pid()")[1][1]
    local i = 0
    local err = H.error_of(db.insert, db, function()
      i = i + 1
      if i == 15 then
        -- from a second connection, while the second batch is being read
        assert.is_true(one("SELECT pg_terminate_backend($1)", { pid }))
        while one("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", { pid }) > 0 do end
      end
      if i <= 25 then return { vector = { i, 1 } } end
    end, { batch_size = 10 })
    -- the error says what stays committed
    assert.are.equal("insert: after 10 records were inserted: PostgreSQL error: the connection was lost: "
      .. "terminating connection due to administrator command", err)
    -- the first batch (idx 1..10) was committed and indexed; the second never reached the table
    assert.are.equal(11, one("SELECT count(*) FROM " .. db.table_name))
    assert.are.equal(11, db.index.ntotal)
    -- the next call opens a new connection
    assert.are.equal(11, db:count())
    assert.is_true(db:execute("SELECT pg_backend_pid()")[1][1] ~= pid)
    assert.are.equal(2, db:insert({ { vector = { 5, 5 } }, { vector = { 6, 6 } } }))
    assert.are.equal(13, db:count())
    db:close()
    os.remove(file)
  end)

  it("reports a connection dropped under an open select, and reconnects", function()
    local db = H.new()
    local recs = {}
    for i = 1, 3000 do recs[i] = { vector = { i, 1 } } end
    db:insert(recs)
    local pid = db:execute("SELECT pg_backend_pid()")[1][1]
    local n = 0
    local err = H.error_of(function()
      for _ in db:select(nil, "idx") do
        n = n + 1
        if n == 10 then
          one("SELECT pg_terminate_backend($1)", { pid })
          while one("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", { pid }) > 0 do end
        end
      end
    end)
    assert.are.equal("select: PostgreSQL error: the connection was lost: terminating connection due to "
      .. "administrator command", err)
    assert.is_true(n >= 10 and n < 3000)
    -- the lost transaction was the driver's own read transaction: nothing to roll back
    assert.are.equal(3000, db:count())
    db:close()
  end)

  it("reports a dropped connection inside a transaction and does not reconnect under it", function()
    local db = H.new()
    db:insert({ { vector = { 0, 1 } } })
    local pid = db:execute("SELECT pg_backend_pid()")[1][1]
    db:execute("BEGIN")
    db:execute(string.format("INSERT INTO %s (idx, vector) VALUES (1, $1)", db.table_name),
      { vekterdb.serialize_vector({ 1, 1 }) })
    one("SELECT pg_terminate_backend($1)", { pid })
    while one("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", { pid }) > 0 do end
    local ok, err = pcall(db.execute, db, "COMMIT")
    assert.is_false(ok)
    assert.are.equal("connection", err.code)
    assert.are.equal("execute: PostgreSQL error: the connection was lost: terminating connection due to "
      .. "administrator command", tostring(err))
    -- the transaction is gone with the connection: COMMIT must not succeed on a new one
    ok, err = pcall(db.count, db)
    assert.is_false(ok)
    assert.are.equal("connection", err.code)
    assert.are.equal("count: PostgreSQL error: the connection was lost during a transaction (terminating "
      .. "connection due to administrator command): ROLLBACK to reconnect", tostring(err))
    db:execute("ROLLBACK")
    assert.are.equal(1, db:count())
    db:close()
  end)
end)
