-- The where-clause builder compiles to parameterised SQL.
local vekterdb = require "vekterdb"
local where = require "vekterdb.where"
local H = require "spec.helper"

describe("where-clauses", function()
  local db

  setup(function()
    db = H.new({ columns = { { name = "name", type = "text" }, { name = "n", type = "integer" },
                             { name = "x", type = "real" } } })
    local recs = {}
    local names = { "apple", "banana", "cherry", "date", "elder", "fig", "grape" }
    for i, nm in ipairs(names) do recs[i] = { idx = i - 1, vector = { i, 0 }, name = nm, n = i * 10, x = i / 4 } end
    recs[#recs + 1] = { idx = 7, vector = { 0, 1 }, n = 5 }   -- name is NULL
    db:insert(recs)
  end)

  teardown(function() db:close() end)

  local function ids(expr)
    local out = {}
    for rec in db:select(expr, "idx", { order_by = "idx" }) do out[#out + 1] = rec.idx end
    return out
  end

  it("compares with eq ne lt le gt ge", function()
    assert.are.same({ 2 }, ids(db.Record.name:eq("cherry")))
    assert.are.same({ 0, 1, 3, 4, 5, 6 }, ids(db.Record.name:ne("cherry")))
    assert.are.same({ 7, 0 }, (function() local t = ids(db.Record.n:lt(20)) table.sort(t, function(a, b) return a > b end) return t end)())
    assert.are.same({ 0, 1, 7 }, ids(db.Record.n:le(20)))
    assert.are.same({ 5, 6 }, ids(db.Record.x:gt(1.25)))
    assert.are.same({ 4, 5, 6 }, ids(db.Record.x:ge(1.25)))
  end)

  it("matches lists, ranges, patterns and NULL", function()
    assert.are.same({ 1, 3 }, ids(db.Record.name:in_({ "banana", "date", "kiwi" })))
    assert.are.same({}, ids(db.Record.name:in_({})))
    assert.are.same({ 0, 2, 4, 5, 6 }, ids(db.Record.name:not_in({ "banana", "date" })))
    assert.are.same({ 1, 2, 3 }, ids(db.Record.n:between(20, 40)))
    assert.are.same({ 3, 6 }, ids(db.Record.name:like("%a_e%")))
    assert.are.same({ 7 }, ids(db.Record.name:is_null()))
    assert.are.equal(7, #ids(db.Record.name:is_not_null()))
  end)

  it("combines with and_, or_ and not_", function()
    local R = db.Record
    assert.are.same({ 2 }, ids(vekterdb.and_(R.n:gt(20), R.n:lt(40))))
    assert.are.same({ 0, 6 }, ids(vekterdb.or_(R.name:eq("apple"), R.name:eq("grape"))))
    assert.are.same({ 0, 1, 2, 3, 4, 5 }, ids(vekterdb.not_(R.name:eq("grape"))))
  end)

  it("combines with & | ~ in Lua 5.4", function()
    local ops = load and load("return function(a, b) return a & b, a | b, ~a end")
    if not ops or _VERSION ~= "Lua 5.4" then
      pending("bitwise operators need Lua 5.4")
      return
    end
    local R = db.Record
    local a, o, n = ops()(R.n:gt(20), R.n:lt(40))
    assert.are.same({ 2 }, ids(a))
    assert.are.equal(8, #ids(o))
    assert.are.same({ 0, 1, 7 }, ids(n))
  end)

  it("binds every value and quotes every name", function()
    local sql, params = where.compile(vekterdb.and_(db.Record.name:eq("x'; DROP TABLE t; --"),
      db.Record.n:in_({ 1, 2 })), "?")
    assert.are.equal('("name" = ?1 AND "n" IN (?2, ?3))', sql)
    assert.are.same({ "x'; DROP TABLE t; --", 1, 2 }, params)
    sql = where.compile(db.Record.n:between(1, 2), "$")
    assert.are.equal('"n" BETWEEN $1 AND $2', sql)
    assert.are.same({}, ids(db.Record.name:eq("x'; DROP TABLE t; --")))
    assert.are.equal(8, db:count())
  end)

  it("refuses nil comparisons, bad values and non-expressions", function()
    assert.truthy(H.error_of(function() return db.Record.n:eq(nil) end):find("use is_null()", 1, true))
    assert.truthy(H.error_of(function() return db.Record.n:in_({ {} }) end):find("values must be numbers, strings or booleans", 1, true))
    assert.truthy(H.error_of(vekterdb.and_, "n > 1"):find("and_ expects where-clause expressions", 1, true))
    assert.truthy(H.error_of(db.select, db, "n > 1"):find("select: expected a where-clause", 1, true))
  end)

  -- an expression is a plain table: a copy with changed fields must never
  -- put its own text into the SQL
  local function forged(e, fields)
    local f = setmetatable({}, getmetatable(e))
    for k, v in pairs(e) do f[k] = v end
    for k, v in pairs(fields) do f[k] = v end
    return f
  end

  it("refuses a forged comparison operator in every statement", function()
    local R = db.Record
    local evil = forged(R.n:eq(-1), { sym = "= -1 OR 1 = 1 OR n =" })
    local want = 'invalid where-clause: unknown comparison operator "= -1 OR 1 = 1 OR n ="'
    assert.truthy(H.error_of(db.delete, db, evil):find("delete: " .. want, 1, true))
    assert.truthy(H.error_of(db.update, db, evil, { x = 0 }):find("update: " .. want, 1, true))
    assert.truthy(H.error_of(db.select, db, evil):find("select: " .. want, 1, true))
    assert.truthy(H.error_of(db.delete, db, vekterdb.or_(R.n:eq(1), evil)):find(want, 1, true))
    assert.truthy(H.error_of(db.delete, db, vekterdb.not_(evil)):find(want, 1, true))
    assert.truthy(H.error_of(where.compile, evil, "?"):find(want, 1, true))
    assert.truthy(H.error_of(tostring, evil):find(want, 1, true))
    for _, sym in ipairs({ "==", "!=", "IS", "LIKE", "= ?1 --", 1, true }) do
      assert.truthy(H.error_of(db.delete, db, forged(R.n:eq(1), { sym = sym }))
        :find("unknown comparison operator", 1, true))
    end
    assert.are.equal(8, db:count())
  end)

  it("refuses forged columns, values, parts and nodes", function()
    local R = db.Record
    local function refused(e, msg)
      local err = H.error_of(db.delete, db, e)
      assert.truthy(err:find("delete: invalid where-clause: " .. msg, 1, true), err)
    end
    refused(forged(R.n:eq(1), { col = 1 }), "a column name must be a string, got number")
    refused(forged(R.n:is_null(), { col = { "n" } }), "a column name must be a string, got table")
    refused(forged(R.n:eq(1), { values = { {} } }), "a value must be a number, a string or a boolean, got table")
    refused(forged(R.n:eq(1), { values = {} }), "cmp takes 1 values, got 0")
    refused(forged(R.n:eq(1), { values = "1 OR 1=1" }), "values must be an array, got string")
    refused(forged(R.n:eq(1), { values = { 0 / 0 } }), "NaN cannot be compared")
    refused(forged(R.n:in_({ 1, 2 }), { values = { 1, print } }), "a value must be a number")
    refused(forged(R.n:between(1, 2), { values = { 1 } }), "between takes 2 values, got 1")
    refused(forged(R.name:like("a%"), { values = { 1 } }), "like needs a string pattern")
    refused(forged(R.name:like("a%"), { escape = "'; --" }), "like: escape must be a single character")
    refused(forged(R.n:eq(1), { op = "raw", sql = "1 = 1" }), 'unknown expression node "raw"')
    local both = vekterdb.and_(R.n:eq(1), R.n:eq(2))
    refused(forged(both, { parts = {} }), "and needs at least one expression")
    refused(forged(both, { parts = { R.n:eq(1), "1 = 1" } }), "a part must be an expression, got string")
    refused(forged(both, { parts = { R.n:eq(1), { op = "cmp", col = "n", sym = "= 1 OR 1 =", values = { 1 } } } }),
      "unknown comparison operator")
    local loop = forged(both, {})
    loop.parts = { R.n:eq(1), loop }
    refused(loop, "an expression contains itself")
    refused(forged(vekterdb.not_(R.n:eq(1)), { parts = { R.n:eq(1), R.n:eq(2) } }), "not takes one expression")
    -- a quoted name the table lacks is still only a name
    local err = H.error_of(db.delete, db, forged(R.n:eq(1), { col = 'n" = 1 OR "n' }))
    assert.truthy(err:find("unknown column", 1, true), err)
    assert.are.equal(8, db:count())
  end)

  it("refuses a forged filter in search", function()
    local ix = vekterdb.faiss.index_factory(2, "Flat", "l2")
    local h = H.new({ columns = { { name = "n", type = "integer" } } })
    h:insert({ { idx = 0, vector = { 1, 0 }, n = 1 }, { idx = 1, vector = { 0, 1 }, n = 2 } })
    h:attach(ix)
    h:sync_index_to_db()
    local evil = forged(h.Record.n:eq(-1), { sym = "= -1 OR 1 = 1 OR n =" })
    local err = H.error_of(h.search, h, { 1, 0 }, 2, "idx", { filter = evil })
    assert.truthy(err:find("search: filter: invalid where-clause: unknown comparison operator", 1, true), err)
    err = H.error_of(h.nearest_neighbors, h, "idx", { 0 }, 1, "idx", { filter = evil })
    assert.truthy(err:find("invalid where-clause", 1, true), err)
    assert.are.equal(1, #h:search({ 1, 0 }, 2, "idx", { filter = h.Record.n:eq(1) })[1].neighbors)
    h:close()
  end)
end)
