-- db:insert_matrix: the bulk path (a matrix plus column arrays, no Lua table
-- per record), on the backend under test.
local vekterdb = require "vekterdb"
local H = require "spec.helper"

local D = 6

local function new_db()
  return H.new({ columns = {
    { name = "name", type = "text", unique = true },
    { name = "weight", type = "real" },
    { name = "n", type = "integer" },
    { name = "flag", type = "boolean" },
  } })
end

local function matrix(n, seed)
  local r = H.rng(seed or 5)
  local m = vekterdb.matrix(n, D)
  for i = 1, n do m[i] = r.vector(D) end
  return m
end

describe("db:insert_matrix", function()
  it("stores one record per row with its columns; holes are NULL", function()
    local db = new_db()
    local m = matrix(5)
    local n = db:insert_matrix(m, { columns = {
      name = { "a", "b", "c", "d", "e" }, weight = { 0.5, nil, 2.5, 3, 4 },
      n = { 1, 2, 3 }, flag = { true, false, true, false, true },
    } })
    assert.are.equal(5, n)
    assert.are.equal(5, db:count())
    local rows = db:fetch({ 0, 1, 4 }, "idx", "name", "weight", "n", "flag", "vector")
    assert.are.same({ 0, "a", 0.5, 1, true }, { rows[1].idx, rows[1].name, rows[1].weight, rows[1].n, rows[1].flag })
    assert.is_nil(rows[2].weight)
    assert.are.equal(false, rows[2].flag)
    assert.is_nil(rows[3].n)
    assert.are.equal(m[5], rows[3].vector)
    db:close()
  end)

  it("numbers rows from opts.idx or the table's next idx, in batches", function()
    local db = new_db()
    assert.are.equal(3, db:insert_matrix(matrix(3)))
    local calls = {}
    assert.are.equal(7, db:insert_matrix(matrix(7, 9), { idx = 3, batch_size = 3,
      progress = function(done, total, phase) calls[#calls + 1] = { done, total, phase } end }))
    assert.are.same({ { 3, 7, "insert" }, { 6, 7, "insert" }, { 7, 7, "insert" } }, calls)
    assert.are.equal(10, db:count())
    assert.are.equal(10, db._h:next_idx())
    db:close()
  end)

  it("adds the vectors to an attached index, where search finds them", function()
    local db = new_db()
    db:insert_matrix(matrix(20))
    local file = H.path("bulk.index")
    db:create_index(file, "Flat")
    local m = matrix(4, 11)
    db:insert_matrix(m, { columns = { name = { "w", "x", "y", "z" } } })
    assert.are.equal(24, db.index.ntotal)
    local res = db:search(m[3], 1, "idx", "name")
    assert.are.equal(22, res[1].neighbors[1].idx)
    assert.are.equal("y", res[1].neighbors[1].name)
    -- the index file was saved
    assert.are.equal(24, vekterdb.faiss.read_index(file).ntotal)
    db:close()
  end)

  it("refuses bad input with an error naming the record, and a failed batch changes nothing", function()
    local db = new_db()
    local m = matrix(4)
    assert.matches("expected a vekterdb.matrix", H.error_of(db.insert_matrix, db, { { 1, 2 } }))
    assert.matches("unknown column 'nope'", H.error_of(db.insert_matrix, db, m, { columns = { nope = {} } }))
    assert.matches("column 'n' holds integer values", H.error_of(db.insert_matrix, db, m,
      { columns = { n = { 1, 2.5 } } }))
    assert.matches("cannot hold a table", H.error_of(db.insert_matrix, db, m, { columns = { name = { {} } } }))
    assert.matches("comes from the first idx or the matrix", H.error_of(db.insert_matrix, db, m,
      { columns = { idx = { 1 } } }))
    assert.matches("unknown option", H.error_of(db.insert_matrix, db, m, { colums = {} }))
    assert.are.equal(0, db:count())
    -- a unique violation in the second batch: the first one stays, the second is rolled back whole
    local err = H.error_of(db.insert_matrix, db, m, { batch_size = 2, columns = { name = { "p", "q", "r", "p" } } })
    assert.is_string(err)
    assert.are.equal(2, db:count())
    assert.matches("dimension", H.error_of(db.insert_matrix, db, vekterdb.matrix(2, D + 1)))
    assert.are.equal(2, db:count())
    db:close()
  end)
end)
