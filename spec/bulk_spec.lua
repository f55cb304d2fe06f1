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

-- the vectors of a batch are encoded on the other threads while the database
-- writes its first rows (write_insert.c): what is stored must not depend on it
describe("encoding while the database writes", function()
  local with_threads = H.with_threads

  local function stored(db)
    local out = {}
    for i, row in ipairs(db:execute("SELECT vector FROM " .. H.quote(db.table_name) .. " ORDER BY idx")) do
      out[i] = row[1]
    end
    return out
  end

  it("stores the bytes serialize_vector makes, on one thread or several, at any level", function()
    local n = 700   -- several chunks of rows per batch, and a short last batch
    local m = matrix(n, 21)
    for _, threads in ipairs({ 1, 2, 3 }) do
      for _, level in ipairs({ 1, 3, -1 }) do
        with_threads(threads, function()
          local db = new_db()
          db:insert_matrix(m, { batch_size = 300, compression_level = level })
          local i = 0
          db:insert(function()
            i = i + 1
            if i <= 150 then return { vector = m[i] } end
          end, { batch_size = 130, compression_level = level })
          local blobs = stored(db)
          assert.are.equal(n + 150, #blobs)
          for r = 1, n + 150 do
            local v = m[r <= n and r or r - n]
            if blobs[r] ~= vekterdb.serialize_vector(v, level) then
              error(string.format("threads %d, level %d: row %d differs", threads, level, r))
            end
          end
          db:close()
        end)
      end
    end
  end)

  it("stores serialized vectors as given beside vectors it encodes", function()
    with_threads(2, function()
      local db = new_db()
      local m = matrix(400, 23)
      db:insert_matrix(m, { batch_size = 400 })
      local i = 0
      db:insert(function()
        i = i + 1
        if i <= 400 then return { vector = vekterdb.serialize_vector(m[i], 7) } end
      end, { serialize_vectors = false, batch_size = 400 })
      local blobs = stored(db)
      for r = 1, 400 do
        assert.are.equal(vekterdb.serialize_vector(m[r], 1), blobs[r])
        assert.are.equal(vekterdb.serialize_vector(m[r], 7), blobs[400 + r])
      end
      db:close()
    end)
  end)

  it("rolls a batch back whole when the database refuses a row in the middle of it", function()
    with_threads(2, function()
      local db = new_db()
      local names = {}
      for i = 1, 1000 do names[i] = "n" .. i end
      names[777] = "n5"
      local err = H.error_of(db.insert_matrix, db, matrix(1000, 29), { batch_size = 1000, columns = { name = names } })
      -- MySQL names the statement's rows rather than the one it refused
      assert.is_truthy(err:find("idx 776", 1, true) or err:find("idx 0..999", 1, true), err)
      assert.are.equal(0, db:count())
      -- the handle goes on as before
      names[777] = "n777"
      assert.are.equal(1000, db:insert_matrix(matrix(1000, 29), { batch_size = 1000, columns = { name = names } }))
      assert.are.equal(vekterdb.serialize_vector(matrix(1000, 29)[1000], 1), stored(db)[1000])
      db:close()
    end)
  end)

  it("refuses a compression level zstd does not take before anything is written", function()
    local db = new_db()
    local err = H.error_of(db.insert_matrix, db, matrix(3), { compression_level = 1000 })
    assert.matches("compression level 1000 is outside zstd's range", err)
    assert.are.equal(0, db:count())
    db:close()
  end)
end)
