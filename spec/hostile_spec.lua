-- Hostile strings: names, values, patterns and URLs are validated, quoted or bound.
local vekterdb = require "vekterdb"
local H = require "spec.helper"

local HOSTILE = { [[a"b]], "x'; DROP TABLE t; --", "semi;colon", "dash -- comment", "spa ce", "ünïcödé" }

describe("hostile table and column names", function()
  for _, evil in ipairs(HOSTILE) do
    it("round-trip a table and a column named " .. string.format("%q", evil), function()
      local db, url = H.new({ file = true, columns = { { name = evil, type = "text" } } }, evil)
      db:insert({ { vector = { 1, 2 }, [evil] = evil }, { vector = { 2, 1 }, [evil] = "other" } })
      local got = {}
      for rec in db:select(db.Record[evil]:eq(evil), evil, "idx") do got[#got + 1] = rec end
      assert.are.equal(1, #got)
      assert.are.equal(evil, got[1][evil])
      local file = H.path("hostile.index")
      db:create_index(file, "Flat")
      local nb = db:nearest_neighbors(evil, { evil }, 1, evil)
      assert.are.equal("other", nb[1].neighbors[1][evil])
      db:close()
      local again = vekterdb.new(evil, { url = url, faiss_index = file })
      assert.are.equal(2, again:count())
      assert.are.equal(evil, again.columns[3].name)
      again:close()
      os.remove(file)
    end)
  end

  it("refuses NUL bytes and names that are too long", function()
    assert.truthy(H.error_of(vekterdb.new, "a\0b", { url = H.url() }):find("the table name contains a NUL byte", 1, true))
    assert.truthy(H.error_of(vekterdb.new, "t", { url = H.url(), columns = { { name = "c\0d", type = "text" } } })
      :find("a column name contains a NUL byte", 1, true))
    assert.truthy(H.error_of(vekterdb.new, string.rep("n", 200), { url = H.url() })
      :find("table name is longer than 128 bytes", 1, true))
    assert.truthy(H.error_of(vekterdb.new, "t\n", { url = H.url() }):find("table name contains a control character", 1, true))
    local db = H.new()
    db:insert({ { vector = { 1 } } })
    assert.truthy(H.error_of(db.select, db, nil, "idx\0vector"):find("has no column", 1, true))
    db:close()
  end)
end)

describe("hostile values", function()
  it("are bound, NUL bytes and quotes included", function()
    local db = H.new({ columns = { { name = "s", type = "text" }, { name = "b", type = "blob" } } })
    -- PostgreSQL's text cannot hold a NUL byte (its bytea can): there it is refused, clearly
    local nul = "\0"
    if H.backend == "postgresql" then
      nul = ""
      assert.truthy(H.error_of(db.insert, db, { { vector = { 1 }, s = "a\0b" } })
        :find("column 's' holds a NUL byte, which PostgreSQL text cannot store", 1, true))
    end
    local nasty = "it's " .. nul .. " a \"trap\"; DELETE FROM x; --"
    db:insert({ { vector = { 1 }, s = nasty, b = "\0\1\2\255" }, { vector = { 2 }, s = "plain" } })
    local rec = db:select(db.Record.s:eq(nasty), "s", "b")()
    assert.are.equal(nasty, rec.s)
    assert.are.equal("\0\1\2\255", rec.b)
    assert.are.equal(1, #(function() local t = {} for r in db:select(db.Record.s:like("it's%")) do t[#t + 1] = r end return t end)())
    local n = 0
    for _ in db:select(db.Record.s:like("50\\%", "\\")) do n = n + 1 end
    assert.are.equal(0, n)
    assert.are.equal(2, db:count())
    db:close()
  end)

  it("in URLs are refused with a clear message", function()
    assert.truthy(H.error_of(vekterdb.new, "t", { url = "sqlite:///a\0b" }):find("the database URL contains a NUL byte", 1, true))
    assert.truthy(H.error_of(vekterdb.new, "t", { url = "sqlite:///%00x" }):find("bad percent escape", 1, true))
    assert.truthy(H.error_of(vekterdb.new, "t", { url = "sqlite://" .. string.rep("/", 9000) })
      :find("longer than 8192 characters", 1, true))
  end)
end)

describe("misuse from Lua", function()
  it("never crashes the interpreter", function()
    local db = H.new()
    db:insert({ { vector = { 1, 2 } }, { vector = { 2, 3 } } })
    local file = H.path("misuse.index")
    db:create_index(file, "Flat")
    local calls = {
      function() db:search("not a vector", 1) end,
      function() db:search({ 1, 2 }, 2 ^ 40) end,
      function() db:search({ { 1, 2 }, { 1 } }, 1) end,
      function() db:search(nil, 1) end,
      function() db:insert(42) end,
      function() db:insert({ 42 }) end,
      function() db:insert({}, { batch_size = 0 }) end,
      function() db:insert({ { vector = { 1, 2 }, idx = -1 } }) end,
      function() db:insert({ { vector = { 1, 2 }, idx = 2.5 } }) end,
      function() db:nearest_neighbors(42, 1) end,
      function() db:select(db.Record.idx:eq(1), 42)() end,
      function() db:similarity({ 1 }, { 1, 2 }) end,
      function() db:sample_vectors(-1) end,
      function() db._h.search(42) end,
      function() vekterdb.matrix(-1, 2) end,
      function() vekterdb.matrix(2 ^ 40, 2 ^ 40) end,
      function() vekterdb.faiss.index_factory(0, "Flat") end,
      function() db.index:add({ 1, 2, 3 }) end,
    }
    for i, fn in ipairs(calls) do
      local ok, err = pcall(fn)
      assert(not ok, "call " .. i .. " should have raised")
      -- an error value of ours with a code, or Lua's own argument error
      if vekterdb.is_error(err) then
        assert.are.equal("string", type(err.code))
        assert.are.equal("string", type(err.message))
      else
        assert.are.equal("string", type(err))
      end
    end
    -- empty inputs are fine
    assert.are.equal(0, db:insert({}))
    assert.are.equal(0, db:insert(function() return nil end))
    assert.are.equal(2, db:count())
    db:close()
    os.remove(file)
  end)

  it("keeps a cursor safe after its database closes or is collected", function()
    local db = H.new()
    db:insert({ { vector = { 1 } }, { vector = { 2 } } })
    local it = db:select()
    db:close()
    assert.truthy(H.error_of(it):find("closed database", 1, true))
    local it2
    do
      local db2 = H.new()
      db2:insert({ { vector = { 1 } }, { vector = { 2 } }, { vector = { 3 } } })
      it2 = db2:select(nil, "idx")
    end
    collectgarbage()
    collectgarbage()
    local n = 0
    for _ in it2 do n = n + 1 end
    assert.are.equal(3, n)   -- the cursor kept its connection alive
  end)

  it("names the C handle's types apart from the Lua objects", function()
    local db = H.new()
    db:insert({ { vector = { 1, 2 } } })
    -- the Lua object handed to a method of the C handle it wraps
    local err = H.error_of(db._h.count, db)
    assert.truthy(err:find("vekterdb.core.DB expected", 1, true), err)
    assert.is_nil(err:find("expected, got vekterdb.DB", 1, true) and err:find("vekterdb.DB expected", 1, true))
    assert.truthy(tostring(db._h):find("^vekterdb%.core%.DB%("))
    assert.truthy(H.error_of(db._h.attach, db._h, db):find("vekterdb.Index expected", 1, true))
    -- one way to make a class: __name, and the methods under __methods
    local ix = vekterdb.faiss.index_factory(2, "Flat", "l2")
    local cur = db._h:select({ "idx" })
    local vio = require "vekterdb.io"
    local path = H.path("names.fvecs")
    local w = vio.writer(path, 2)
    for name, obj in pairs({ ["vekterdb.core.DB"] = db._h, ["vekterdb.core.Cursor"] = cur,
                             ["vekterdb.Index"] = ix, ["vekterdb.Vector"] = vekterdb.vector(2),
                             ["vekterdb.Matrix"] = vekterdb.matrix(1, 2),
                             ["vekterdb.VectorWriter"] = w }) do
      local mt = getmetatable(obj)
      assert.are.equal(name, mt.__name)
      assert.are.equal("table", type(mt.__methods), name)
      assert.is_nil(mt.methods, name)
    end
    w:write(vekterdb.matrix(1, 2))
    w:close()
    local f = vio.open(path)
    assert.are.equal("vekterdb.VectorFile", getmetatable(f).__name)
    assert.are.equal("function", type(getmetatable(f).__methods.read))
    f:close()
    assert.are.equal(getmetatable(db._h).__index, getmetatable(db._h).__methods)
    cur:close()
    db:close()
  end)
end)

describe("where-clauses found by fuzz_where", function()
  it("refuse a nil combined with an expression instead of dropping it", function()
    local db = H.new({ columns = { { name = "n", type = "integer" } } })
    db:insert({ { vector = { 1 }, n = 1 }, { vector = { 2 }, n = 2 } })
    local e = db.Record.n:eq(1)
    local ops = _VERSION == "Lua 5.4" and load("return function(a, b) return a & b end, function(a, b) return a | b end")
    if ops then
      local band, bor = ops()
      assert.truthy(H.error_of(band, e, nil):find("and_ expects where-clause expressions", 1, true))
      assert.truthy(H.error_of(bor, nil, e):find("or_ expects where-clause expressions", 1, true))
    end
    assert.truthy(H.error_of(vekterdb.and_, e, nil):find("got nil", 1, true))
    assert.truthy(H.error_of(vekterdb.or_, nil, e):find("got nil", 1, true))
    assert.are.equal(2, db:count())
    db:close()
  end)

  it("check the column of an empty in_ or not_in list", function()
    local db = H.new({ columns = { { name = "n", type = "integer" } } })
    db:insert({ { vector = { 1 }, n = 1 } })
    local ghost = require("vekterdb.where").record({ { name = "ghost" } }, "other").ghost
    assert.truthy(H.error_of(db.delete, db, ghost:not_in({})):find("unknown column 'ghost'", 1, true))
    assert.truthy(H.error_of(db.select, db, ghost:in_({})):find("unknown column 'ghost'", 1, true))
    assert.are.equal(1, db:count())
    db:close()
  end)
end)

describe("like escapes found by fuzz_where", function()
  it("refuse a NUL escape before SQLite sees it", function()
    local db = H.new({ columns = { { name = "s", type = "text" } } })
    db:insert({ { vector = { 1 }, s = "a%" } })
    local ok, err = pcall(function() return db:select(db.Record.s:like("a\0%", "\0"))() end)
    assert.is_false(ok)
    assert.truthy(err:find("like: escape must be a single character", 1, true))
    db:close()
  end)
end)

describe("hostile stored data and files", function()
  it("reads only regular files as index files: /dev/zero is refused at once", function()
    local db, url = H.new({ file = true })
    db:insert({ { vector = { 1, 2 } } })
    local err = H.error_of(vekterdb.new, db.table_name,
      { url = url, faiss_index = "/dev/zero", trust_index_file = true })
    assert.truthy(err:find("cannot read index file /dev/zero: not a regular file", 1, true), err)
    db:close()
  end)

  it("names the idx of a corrupt first vector", function()
    local db, url = H.new({ file = true })
    db:execute("INSERT INTO " .. db.table_name .. " (idx, vector) VALUES (" .. db:placeholder(1) .. ", "
      .. db:placeholder(2) .. ")", { 0, "not a zstd frame" })
    db:close()
    local err = H.error_of(function()
      local again = vekterdb.new(db.table_name, { url = url })
      local d = again.d
      again:close()
      return d
    end)
    assert.truthy(err:find("corrupted vector at idx 0 of table " .. db.table_name, 1, true), err)
  end)

  it("never ranks a stored vector whose metric is not finite", function()
    local db = H.new()
    local recs = {}
    for i = 1, 20 do recs[i] = { vector = { i, 1, 0.5 } } end
    db:insert(recs)
    -- a NaN and an infinity written around the checks, through SQL: a zstd
    -- frame holding one raw block of three little-endian float32 values
    local one = "\0\0\128\63"
    local function frame(first)
      return "\40\181\47\253" .. "\32\12" .. "\97\0\0" .. first .. one .. one
    end
    for i, first in ipairs({ "\0\0\192\127", "\0\0\128\127" }) do   -- NaN, +inf
      db:execute("UPDATE " .. db.table_name .. " SET vector = " .. db:placeholder(1) .. " WHERE idx = "
        .. db:placeholder(2), { frame(first), i - 1 })
    end
    assert.is_true(db:fetch({ 0 }, "vector")[1].vector[1] ~= db:fetch({ 0 }, "vector")[1].vector[1])
    db:create_index(H.path("nonfinite.index"), "Flat", { metric = "l2" })
    for _, q in ipairs({ { 3, 1, 0.5 }, { 1e30, 1, 1 } }) do
      local res = db:search(q, 20, "idx")[1].neighbors
      for _, n in ipairs(res) do
        assert.is_true(n.idx > 1, "idx " .. n.idx .. " ranked with metric " .. tostring(n.metric))
        assert.is_true(n.metric == n.metric and n.metric < math.huge)
      end
    end
    db:close()
  end)
end)
