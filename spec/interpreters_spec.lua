-- What differs between Lua 5.4 and LuaJIT (Lua 5.1's API) and must not show:
-- integers (64-bit under 5.4, doubles under LuaJIT: every integer up to 2^53
-- in magnitude round-trips exactly, a value a double cannot hold is refused
-- rather than rounded) and metamethods on the module's userdata.
local vekterdb = require "vekterdb"
local H = require "spec.helper"

local BIG = 9007199254740992   -- 2^53 (an integer literal under 5.4, a double under LuaJIT)
local VALUES = { 0, 1, -1, 2147483647, 2147483648, 4294967297, 1099511627776,
                 BIG - 1, BIG, -BIG }

local function new_db()
  return H.new({ columns = { { name = "n", type = "integer" }, { name = "label", type = "text" } } })
end

local function as_text(x) return string.format("%.0f", x) end

describe("integers on both interpreters", function()
  local db

  setup(function()
    db = new_db()
    local recs = {}
    for i, v in ipairs(VALUES) do
      recs[i] = { idx = i - 1, vector = { i, 1, 0, 0 }, n = v, label = as_text(v) }
    end
    db:insert(recs)
    db:create_index(H.path("ints.index"), "Flat")
  end)

  teardown(function() if db then db:close() end end)

  it("round-trips integer column values up to 2^53 exactly", function()
    local ids = {}
    for i = 1, #VALUES do ids[i] = i - 1 end
    local got = db:fetch(ids, "idx", "n", "label")
    for i, v in ipairs(VALUES) do
      assert.are.equal(v, got[i].n)
      assert.are.equal(as_text(v), as_text(got[i].n))
      assert.are.equal(as_text(v), got[i].label)
      if math.type then assert.are.equal("integer", math.type(got[i].n)) end
    end
  end)

  it("binds and returns 2^53 through execute and where-clauses", function()
    local bigint = H.backend == "mysql" and "SIGNED" or "BIGINT"   -- MySQL casts to SIGNED only
    local rows = db:execute("SELECT CAST(" .. db:placeholder(1) .. " AS " .. bigint .. ")", { BIG })
    assert.are.equal(BIG, rows[1][1])
    local found = {}
    for rec in db:select(db.Record.n:eq(BIG), "idx", "n") do found[#found + 1] = rec end
    assert.are.equal(1, #found)
    assert.are.equal(8, found[1].idx)
    found = {}
    for rec in db:select(db.Record.n:eq(-BIG), "n") do found[#found + 1] = rec.n end
    assert.are.same({ -BIG }, found)
  end)

  it("gives idx values as integers in search results", function()
    local res = db:search({ 10, 1, 0, 0 }, 3, "idx", "n")[1].neighbors
    assert.are.equal(9, res[1].idx)
    assert.are.equal(-BIG, res[1].n)
    for _, nb in ipairs(res) do
      assert.are.equal(0, nb.idx % 1)
      if math.type then assert.are.equal("integer", math.type(nb.idx)) end
    end
  end)

  it("accepts integral floats where integers are expected", function()
    assert.are.equal(4, #vekterdb.vector(4.0))
    assert.are.equal(2, #db:search({ 1, 1, 0, 0 }, 2.0, "idx")[1].neighbors)
    local n = db:insert({ { idx = 10.0, vector = { 1, 2, 3, 4 }, n = 3.0, label = "3" } })
    assert.are.equal(1, n)
    assert.are.equal(3, db:fetch({ 10 }, "n")[1].n)
  end)

  it("refuses integer column values beyond 2^53 that a double cannot hold", function()
    local err = H.error_of(db.insert, db, { { idx = 11, vector = { 1, 2, 3, 4 }, n = 2 ^ 60 + 2 ^ 10 } })
    assert.truthy(err:find("holds integer values", 1, true), err)
    err = H.error_of(db.insert, db, { { idx = 11, vector = { 1, 2, 3, 4 }, n = 0.5 } })
    assert.truthy(err:find("holds integer values", 1, true), err)
  end)
end)

describe("vectors on both interpreters", function()
  it("compares a vector with a one-row matrix of the same values", function()
    local v = vekterdb.vector({ 1, 2, 3 })
    assert.is_true(v == vekterdb.matrix({ { 1, 2, 3 } }))
    assert.is_false(v == vekterdb.matrix({ { 1, 2, 4 } }))
    assert.is_true(v == vekterdb.vector({ 1, 2, 3 }))
  end)

  it("gives lengths and elements through metamethods", function()
    local m = vekterdb.matrix(3, 2)
    assert.are.equal(3, #m)
    assert.are.equal(2, #m[1])
    m[2] = { 5, 6 }
    assert.are.equal(6, m[2][2])
    assert.is_nil(m[2][3])
  end)
end)
