-- MySQL and MariaDB only: URLs and connection options, the Python VekterDB's
-- layout (an AUTO_INCREMENT idx), names MySQL cannot hold, reads through
-- server-side cursors, and the errors a user sees when the URL, the server or
-- the network is wrong.  spec/support/mysql.sh provides the server and:
--   VEKTERDB_TEST_MYSQL_URL       user vk with its password, over TCP
--   VEKTERDB_TEST_MYSQL_SOCKET    the server's Unix socket
--   VEKTERDB_TEST_MYSQL_PORT      its TCP port on 127.0.0.1
--   VEKTERDB_TEST_MYSQL_DB        the database
local vekterdb = require "vekterdb"
local H = require "spec.helper"

if H.backend ~= "mysql" then
  describe("MySQL backend", function()
    pending("runs only in the mysql run of make test (VEKTERDB_TEST_BACKEND=mysql)")
  end)
  return
end

local URL = H.mysql_url
local SOCKET = os.getenv("VEKTERDB_TEST_MYSQL_SOCKET")
local PORT = os.getenv("VEKTERDB_TEST_MYSQL_PORT")
local DB = os.getenv("VEKTERDB_TEST_MYSQL_DB")
local USER, PASSWORD = URL:match("^%w+://([^:@/]+):([^@/]*)@")

-- runs the test only when the throw-away server's details are known
local function local_server(name, fn)
  if SOCKET and PORT and DB and USER then
    it(name, fn)
  else
    pending(name .. " (needs the server of spec/support/mysql.sh)")
  end
end

local function expect_exact(message, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  assert.are.equal(message, tostring(err))
  return tostring(err)
end

local function no_password(err)
  if PASSWORD and #PASSWORD > 0 then
    assert.is_nil(err:find(PASSWORD, 1, true), "the password leaked: " .. err)
  end
  assert.is_nil(err:find("not-the-password-42", 1, true), "the password leaked: " .. err)
end

-- a handle for running SQL of our own
local admin
local function sql(text, params) return admin:execute(text, params) end
local function one(text, params) return sql(text, params)[1][1] end

setup(function()
  admin = H.new({}, H.table_name("my_admin"))
end)

teardown(function()
  admin:close()
end)

describe("MySQL URLs", function()
  local_server("connects with mysql://, mariadb:// and a dialect suffix, over TCP or the socket", function()
    local tail = URL:match("^mysql(://.*)$")
    for _, url in ipairs({ "mariadb" .. tail, "mysql+pymysql" .. tail,
                           ("mysql://%s:%s@localhost/%s?unix_socket=%s"):format(USER, PASSWORD, DB, SOCKET) }) do
      local db = vekterdb.new(H.table_name("urls"), { url = url })
      assert.are.equal("mysql", db._h:info().driver)
      assert.are.equal(1, db:insert({ { vector = { 1, 2 } } }))
      db:close()
    end
    -- user and password through connect_args, the socket too
    local db = vekterdb.new(H.table_name("args"), { url = "mysql:///" .. DB,
      connect_args = { user = USER, password = PASSWORD, unix_socket = SOCKET, connect_timeout = "5" } })
    assert.are.equal(0, db:count())
    db:close()
  end)

  it("refuses an unknown option without showing its value or the password", function()
    local err = expect_exact("vekterdb.new: unknown MySQL connection option 'sslmood'", vekterdb.new, "t",
      { url = "mysql://u:not-the-password-42@localhost/db?sslmood=not-the-password-42" })
    no_password(err)
    expect_exact("vekterdb.new: MySQL connection option connect_timeout must be a whole number", vekterdb.new, "t",
      { url = "mysql://u@localhost/db", connect_args = { connect_timeout = "soon" } })
  end)

  it("keeps the password out of a saved configuration", function()
    local db = H.new()
    db:insert({ { vector = { 1, 0 } }, { vector = { 0, 1 } } })
    local file = H.path("pw.index")
    db:create_index(file, "Flat")
    local config = H.path("pw.json")
    db:save(config)
    no_password(H.read_file(config))
    db:close()
    os.remove(file)
  end)
end)

describe("tables written by others", function()
  local D = 8

  it("stores idx 0 as 0 in an AUTO_INCREMENT idx column (the layout SQLAlchemy writes), "
    .. "whatever the server's sql_mode", function()
    -- the server's own mode turns an inserted 0 into the next AUTO_INCREMENT value
    assert.is_nil(one("SELECT @@GLOBAL.sql_mode"):find("NO_AUTO_VALUE_ON_ZERO", 1, true))
    local name = H.table_name("py_auto")
    -- what SQLAlchemy emits for VekterDB(..., columns_dict={"id": {"type": String(64),
    -- "unique": True, "nullable": False, "index": True}}) on MySQL
    sql(("CREATE TABLE `%s` (idx BIGINT NOT NULL AUTO_INCREMENT, vector BLOB NOT NULL, "
      .. "id VARCHAR(64) NOT NULL, PRIMARY KEY (idx)) ENGINE=InnoDB"):format(name))
    sql(("CREATE UNIQUE INDEX `ix_%s_id` ON `%s` (id)"):format(name, name))
    local db = vekterdb.new(name, { url = URL })
    local id = db.columns[3]
    assert.are.equal("id", id.name)
    assert.are.equal("varchar", id.type)
    assert.are.equal(64, id.length)
    assert.is_true(id.unique)
    assert.is_true(id.index)
    assert.is_false(id.nullable)
    assert.is_true(db.columns[1].primary_key)
    local r = H.rng(3)
    local recs = {}
    for i = 0, 9 do recs[#recs + 1] = { idx = i, vector = H.normalize(r.vector(D)), id = "doc-" .. i } end
    assert.are.equal(10, db:insert(recs))
    assert.are.same({ { 0, "doc-0" } }, sql(("SELECT idx, id FROM `%s` WHERE idx = 0"):format(name)))
    assert.are.equal(9, one(("SELECT MAX(idx) FROM `%s`"):format(name)))
    local file = H.path("auto.index")
    db:create_index(file, "Flat")
    local res = db:search({ recs[1].vector }, 1, "idx", "id")
    assert.are.equal(0, res[1].neighbors[1].idx)
    assert.are.equal("doc-0", res[1].neighbors[1].id)
    -- and the next records go on from there
    assert.are.equal(1, db:insert({ { vector = recs[2].vector, id = "doc-10" } }))
    assert.are.equal(10, db:fetch({ 10 }, "idx")[1].idx)
    db:close()
    os.remove(file)
  end)

  -- SQLAlchemy itself (Debian's python3-sqlalchemy and python3-pymysql, make test's packages)
  local PY = [[
import sys
from sqlalchemy import create_engine, MetaData, Table, Column, BigInteger, LargeBinary, String, select
url, name, what = sys.argv[1], sys.argv[2], sys.argv[3]
eng = create_engine(url.replace("mysql://", "mysql+pymysql://", 1))
md = MetaData()
if what == "create":
    Table(name, md, Column("idx", BigInteger, primary_key=True), Column("vector", LargeBinary, nullable=False),
          Column("id", String(64), unique=True, nullable=False, index=True))
    md.create_all(eng)
    with eng.begin() as c:
        print("auto_increment" if "AUTO_INCREMENT" in c.exec_driver_sql("SHOW CREATE TABLE `%s`" % name).fetchone()[1] else "plain")
else:
    t = Table(name, md, autoload_with=eng)
    with eng.begin() as c:
        print(",".join(col.name + ":" + str(col.type) for col in t.columns))
        print(",".join(str(r[0]) + "=" + r[1] for r in c.execute(select(t.c.idx, t.c.title).order_by(t.c.idx))))
]]
  local function python(...)
    local script = H.path("sa.py")
    local f = assert(io.open(script, "w"))
    f:write(PY)
    f:close()
    local args = { "/usr/bin/python3", script }
    for _, a in ipairs({ ... }) do args[#args + 1] = H.sh_quote(a) end
    return H.sh(table.concat(args, " ") .. " 2>&1")
  end

  it("opens and searches a table SQLAlchemy created, and SQLAlchemy reads a table made here", function()
    local name = H.table_name("sa")
    assert.are.equal("auto_increment\n", python(URL, name, "create"))
    local db = vekterdb.new(name, { url = URL })
    local recs = {}
    for i = 0, 49 do recs[#recs + 1] = { idx = i, vector = { math.sin(i), math.cos(i), i / 50 }, id = "d" .. i } end
    assert.are.equal(50, db:insert(recs))
    local file = H.path("sa.index")
    db:create_index(file, "Flat")
    local nb = db:search({ recs[1].vector }, 1, "idx", "id")[1].neighbors[1]
    assert.are.same({ 0, "d0" }, { nb.idx, nb.id })
    db:close()
    os.remove(file)
    local mine = H.table_name("made_here")
    db = vekterdb.new(mine, { url = URL, columns = { { name = "title", type = "text", index = true } } })
    db:insert({ { vector = { 1, 2 }, title = "first" }, { vector = { 3, 4 }, title = "second" } })
    db:close()
    assert.are.equal("idx:BIGINT,vector:LONGBLOB,title:TEXT\n0=first,1=second\n", python(URL, mine, "read"))
  end)

  it("reads integer, real, decimal, boolean, varchar, datetime and json columns", function()
    local name = H.table_name("typed")
    sql(("CREATE TABLE `%s` (idx BIGINT PRIMARY KEY, vector LONGBLOB NOT NULL, n INT, x FLOAT, "
      .. "price DECIMAL(10, 2), ok BOOL, label VARCHAR(20), at DATETIME, doc JSON)"):format(name))
    sql(("INSERT INTO `%s` VALUES (0, ?, 7, 0.5, 12.25, TRUE, 'seven', '2024-01-02 03:04:05', "
      .. "'{\"a\": 1}')"):format(name), { vekterdb.serialize_vector({ 1, 2 }) })
    local db = vekterdb.new(name, { url = URL })
    local types = {}
    for _, c in ipairs(db.columns) do types[c.name] = c.type end
    assert.are.same({ idx = "integer", vector = "blob", n = "integer", x = "real", price = "real",
                      ok = "boolean", label = "varchar", at = "datetime", doc = "text" }, types)
    local rec = db:fetch({ 0 }, "n", "x", "price", "ok", "label", "at")[1]
    assert.are.same({ n = 7, x = 0.5, price = 12.25, ok = true, label = "seven", at = "2024-01-02 03:04:05" }, rec)
    db:insert({ { vector = { 3, 4 }, n = 8, x = 1.5, price = 1.5, ok = false, label = "eight" } })
    assert.are.same({ { 1, 8, false, "eight" } }, sql(("SELECT idx, n, ok, label FROM `%s` WHERE idx = 1"):format(name)))
    db:close()
  end)

  it("creates DateTime, Date, JSON and String(n) columns as SQLAlchemy's MySQL dialect does, and reads them back", function()
    local name = H.table_name("kinds")
    local db = vekterdb.new(name, { url = URL, columns = {
      { name = "at", type = "DateTime" }, { name = "day", type = "Date" },
      { name = "doc", type = "JSON" }, { name = "label", type = "String(8)" } } })
    local decl = {}
    for _, r in ipairs(sql(("SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
      .. "DATABASE() AND TABLE_NAME = '%s'"):format(name))) do decl[r[1]] = r[2] end
    assert.are.equal("datetime(6)", decl.at)
    assert.are.equal("date", decl.day)
    assert.are.equal("varchar(8)", decl.label)
    db:insert({ { vector = { 1, 2 }, at = "2024-03-01 12:30:05.25", day = "2024-02-29", doc = '{"k": [1, 2]}',
                  label = "eight" },
                { vector = { 3, 4 }, at = "2023-01-01 00:00:00", day = "2023-01-01", label = "old" } })
    local rec = db:fetch({ 0 }, "at", "day", "label")[1]
    assert.are.same({ at = "2024-03-01 12:30:05.25", day = "2024-02-29", label = "eight" }, rec)
    local newer = {}
    for r in db:select(db.Record.at:gt("2023-06-01 00:00:00"), "label") do newer[#newer + 1] = r.label end
    assert.are.same({ "eight" }, newer)
    local err = H.error_of(db.insert, db, { { vector = { 5, 6 }, label = "ninechars" } })
    assert.truthy(err:find("label", 1, true), err)
    db:close()
  end)

  it("refuses names MySQL cannot hold, saying why", function()
    expect_exact("vekterdb.new: table name '" .. ("t"):rep(43) .. "' is too long for mysql: its names hold 64 characters and "
      .. "the side tables VekterDB keeps add up to 22 (__vekterdb_index_files), so a table name may have 42",
      vekterdb.new, ("t"):rep(43), { url = URL })
    expect_exact("vekterdb.new: column name '" .. ("c"):rep(65) .. "' is too long for mysql: its names hold 64 characters",
      vekterdb.new, "t", { url = URL, columns = { { name = ("c"):rep(65), type = "text" } } })
    -- 42 characters, and a 64-character column, are fine
    local db = vekterdb.new(("n"):rep(30) .. H.table_name("x"):sub(1, 12),
      { url = URL, columns = { { name = ("c"):rep(64), type = "integer" } } })
    db:insert({ { vector = { 1 }, [("c"):rep(64)] = 5 } })
    db:delete(db.Record[("c"):rep(64)]:eq(5))
    assert.are.equal(0, db:count())
    db:close()
  end)
end)

describe("reading through server-side cursors", function()
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

  local function fetches()
    return tonumber(db:execute("SHOW SESSION STATUS LIKE 'Com_stmt_fetch'")[1][2])
  end

  it("streams a select longer than one block: the rows come from the server as the loop goes", function()
    local n, last = 0, -1
    local at_start, later
    for rec in db:select(nil, "idx", "tag", { order_by = "idx" }) do
      assert.are.equal(last + 1, rec.idx)
      assert.are.equal("t" .. rec.idx, rec.tag)
      last = rec.idx
      n = n + 1
      if n == 10 then at_start = fetches() end
      if n == 2400 then later = fetches() end
    end
    assert.are.equal(N, n)
    -- blocks of 1000 rows were fetched from the cursor while the loop ran
    assert(later >= at_start + 2, ("no fetches from the cursor during the loop (%d, %d)"):format(at_start, later))
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

  it("binds values to numbered and plain placeholders, and leaves quoted ? alone", function()
    assert.are.same({ { 3000000000, 2.5, "x", "?1" } }, db:execute("SELECT ?1, ?2, ?3, '?1'",
      { 3000000000, 2.5, "x" }))
    assert.are.same({ { 7, 5 } }, db:execute("SELECT ?1 + 2, ?1", { 5 }))
    assert.are.same({ { "a", "b" } }, db:execute("SELECT ?, ? -- a comment?", { "a", "b" }))
    expect_exact("execute: query refers to parameter 2 but 1 values were given", db.execute, db, "SELECT ?2", { 1 })
  end)

  it("reports a query the server refuses, and goes on", function()
    local err = H.error_of(db.execute, db, "SELECT nope FROM " .. db.table_name)
    assert.are.equal("execute: MySQL error: Unknown column 'nope' in 'SELECT'", err:gsub("'field list'", "'SELECT'"))
    assert.are.equal(N + 1, db:count())
    assert.are.equal(2, #db:execute("SELECT idx FROM " .. db.table_name .. " WHERE idx < ?1", { 2 }))
  end)
end)

describe("MySQL errors", function()
  it("reports a refused connection", function()
    -- port 1 on the loopback: nothing listens there
    local err = H.error_of(vekterdb.new, "t", { url = "mysql://u:not-the-password-42@127.0.0.1:1/db" })
    assert.matches("^vekterdb.new: cannot connect to MySQL: Can't connect to server on '127.0.0.1' %(%d+%)$", err)
    no_password(err)
  end)

  local_server("reports a wrong password, and never shows it", function()
    local err = expect_exact(("vekterdb.new: cannot connect to MySQL: Access denied for user '%s'@'127.0.0.1' "
      .. "(using password: YES)"):format(USER), vekterdb.new, "t",
      { url = ("mysql://%s:not-the-password-42@127.0.0.1:%s/%s"):format(USER, PORT, DB) })
    no_password(err)
  end)

  local_server("reports a missing database, and never shows the password", function()
    local err = expect_exact(("vekterdb.new: cannot connect to MySQL: Access denied for user '%s'@'127.0.0.1' to database "
      .. "'no_such_db'"):format(USER), vekterdb.new, "t",
      { url = ("mysql://%s:%s@127.0.0.1:%s/no_such_db"):format(USER, PASSWORD, PORT) })
    no_password(err)
  end)

  local_server("rolls back the whole batch on a duplicate idx or unique value and names the records", function()
    local db = H.new({ columns = { { name = "id", type = "text", unique = true } } })
    local recs = {}
    for i = 0, 9 do recs[#recs + 1] = { vector = { i, 1 }, id = "r" .. i } end
    db:insert(recs)
    local file = H.path("unique.index")
    db:create_index(file, "Flat")
    expect_exact("insert: cannot insert into table " .. db.table_name .. " (records with idx 10..13): "
      .. "MySQL error: Duplicate entry 'r3' for key 'id'",
      db.insert, db, { { vector = { 1, 1 }, id = "a" }, { vector = { 1, 2 }, id = "b" },
                       { vector = { 1, 3 }, id = "r3" }, { vector = { 1, 4 }, id = "c" } })
    assert.are.equal(10, db:count())
    assert.are.equal(10, db.index.ntotal)
    assert.are.equal(10, vekterdb.faiss.read_index(file).ntotal)
    -- another session (no writers' lock) writes idx 11 and commits while the batch waits
    -- for that row: the batch's own idx 11 is then a duplicate, and all of it is undone
    local hex = vekterdb.serialize_vector({ 9, 9 }):gsub(".", function(c) return ("%02X"):format(c:byte()) end)
    local other = ("START TRANSACTION; INSERT INTO `%s` (idx, vector, id) VALUES (11, X'%s', 'other'); "
      .. "DO SLEEP(3); COMMIT"):format(db.table_name, hex)
    local log = H.path("other.log")
    os.execute(("mariadb --no-defaults -S %s -u root %s -e %s > %s 2>&1 &"):format(H.sh_quote(SOCKET), DB,
      H.sh_quote(other), H.sh_quote(log)))
    local clock, t0 = require("vekterdb.core").monotime, require("vekterdb.core").monotime()
    repeat
      os.execute("sleep 0.2")
      assert(clock() - t0 < 30, "the other session did not start: " .. H.read_file(log))
    until one("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_rows_modified > 0") > 0
    local err = H.error_of(db.insert, db, { { vector = { 1, 1 }, id = "x" }, { vector = { 1, 2 }, id = "y" } })
    assert.matches("Duplicate entry '11' for key 'PRIMARY'", err, 1, true)
    -- nothing of the batch stayed: idx 0..9 and the other session's 11
    local rows = sql(("SELECT idx, id FROM `%s` WHERE idx >= 9 ORDER BY idx"):format(db.table_name))
    assert.are.same({ { 9, "r9" }, { 11, "other" } }, rows)
    -- and the connection is usable again
    assert.are.same({ { 1 } }, db:execute("SELECT 1"))
    db:close()
    os.remove(file)
  end)

  it("reports a connection killed half-way through a batch, keeps the batches before it, "
    .. "and reconnects", function()
    local db = H.new()
    local file = H.path("dropped.index")
    db:insert({ { vector = { 0, 1 } } })
    db:create_index(file, "Flat")
    local id = db:execute("SELECT CONNECTION_ID()")[1][1]
    local i = 0
    local err = H.error_of(db.insert, db, function()
      i = i + 1
      -- from a second connection, while the second batch is being read
      if i == 15 then sql("KILL CONNECTION " .. id) end
      if i <= 25 then return { vector = { i, 1 } } end
    end, { batch_size = 10 })
    -- the error says what stays committed
    assert.matches("^insert: after 10 records were inserted: .*the connection was lost", err)
    -- the first batch (idx 1..10) was committed and indexed; the second never reached the table
    assert.are.equal(11, one("SELECT COUNT(*) FROM " .. db.table_name))
    assert.are.equal(11, db.index.ntotal)
    -- the next call opens a new connection
    assert.are.equal(11, db:count())
    assert.is_true(db:execute("SELECT CONNECTION_ID()")[1][1] ~= id)
    assert.are.equal(2, db:insert({ { vector = { 5, 5 } }, { vector = { 6, 6 } } }))
    assert.are.equal(13, db:count())
    db:close()
    os.remove(file)
  end)

  it("reports a connection killed under an open select, and reconnects", function()
    local db = H.new()
    local recs = {}
    for i = 1, 3000 do recs[i] = { vector = { i, 1 } } end
    db:insert(recs)
    local id = db:execute("SELECT CONNECTION_ID()")[1][1]
    local n = 0
    local err = H.error_of(function()
      for _ in db:select(nil, "idx") do
        n = n + 1
        if n == 10 then sql("KILL CONNECTION " .. id) end
      end
    end)
    assert.matches("the connection was lost", err, 1, true)
    assert.is_true(n >= 10 and n < 3000)
    assert.are.equal(3000, db:count())
    db:close()
  end)

  it("reports a connection killed inside a transaction and does not reconnect under it", function()
    local db = H.new()
    db:insert({ { vector = { 0, 1 } } })
    local id = db:execute("SELECT CONNECTION_ID()")[1][1]
    db:execute("START TRANSACTION")
    db:execute(("INSERT INTO `%s` (idx, vector) VALUES (1, ?1)"):format(db.table_name),
      { vekterdb.serialize_vector({ 1, 1 }) })
    sql("KILL CONNECTION " .. id)
    local err = H.error_of(db.execute, db, "COMMIT")
    assert.matches("the connection was lost during a transaction (it was rolled back)", err, 1, true)
    -- the transaction is gone with the connection: COMMIT must not succeed on a new one
    err = H.error_of(db.count, db)
    assert.matches("the connection was lost during a transaction: ROLLBACK to reconnect", err, 1, true)
    db:execute("ROLLBACK")
    assert.are.equal(1, db:count())
    db:close()
  end)
end)

describe("a MariaDB server killed with SIGKILL", function()
  local build, env

  setup(function()
    -- a server of its own: this one is killed
    build = "build/mysql-kill-" .. math.random(1, 1e9)
    env = {}
    local out = H.sh("BUILD=" .. build .. " sh spec/support/mysql.sh start 2>/dev/null")
    for k, v in out:gmatch("export ([%w_]+)='([^']*)'") do env[k] = v end
  end)

  teardown(function()
    os.execute("BUILD=" .. build .. " sh spec/support/mysql.sh stop")
    os.execute("rm -rf " .. H.sh_quote(build))
  end)

  it("mid-insert: the call fails clearly, the committed batches survive, the batch under way is gone", function()
    local url = assert(env.VEKTERDB_TEST_MYSQL_URL, "the second server did not start")
    local name = H.table_name("killed")
    local db = vekterdb.new(name, { url = url })
    db:insert({ { vector = { 0, 1 } } })
    local pid = H.read_file(env.VEKTERDB_TEST_MYSQL_PID_FILE):match("%d+")
    local i = 0
    local err = H.error_of(db.insert, db, function()
      i = i + 1
      if i == 15 then
        os.execute("kill -9 " .. pid)
        while H.alive(pid) do os.execute("sleep 0.05") end
      end
      if i <= 25 then return { vector = { i, 1 } } end
    end, { batch_size = 10 })
    assert.matches("^insert: after 10 records were inserted: .*the connection was lost", err)
    db:close()
    -- the server comes back from its own crash recovery
    assert(os.execute("BUILD=" .. build .. " sh spec/support/mysql.sh restart"))
    local again = vekterdb.new(name, { url = url })
    assert.are.equal(11, again:count())
    assert.are.equal(11, again:execute("SELECT COUNT(*) FROM `" .. name .. "`")[1][1])
    again:close()
  end)
end)
