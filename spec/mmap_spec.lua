-- Index files opened with mmap = true: an IVF index's inverted lists are
-- mapped from the file (shared by every process that maps it), the answers
-- are the same, and the index is read-only.
local vekterdb = require "vekterdb"
local H = require "spec.helper"

local D, N = 16, 3000

local function build(factory)
  local db, url = H.new({ file = true })
  db:insert(H.records(N, D, 21))
  local file = H.path(factory:gsub("%W", "_") .. ".index")
  db:create_index(file, factory, { metric = "l2" })
  db:close()
  return url, file, db.table_name
end

-- the lines of /proc/self/maps that map path
local function mappings(path)
  local out = {}
  local f = io.open("/proc/self/maps")
  if not f then return out end
  for line in f:lines() do
    if line:sub(-#path) == path then out[#out + 1] = line end
  end
  f:close()
  return out
end

describe("mmap = true", function()
  it("maps an IVF index's lists from the file, shared and read-only, with the same answers", function()
    local url, file, name = build("IVF16,Flat")
    local plain = vekterdb.new(name, { url = url, faiss_index = file })
    local mapped = vekterdb.new(name, { url = url, faiss_index = file, mmap = true })
    local maps = mappings(file)
    assert.is_true(#maps >= 1, "the index file is mapped")
    for _, line in ipairs(maps) do
      assert.matches("^%x+%-%x+ r%-%-s ", line)   -- read-only, shared
    end
    local queries = H.records(20, D, 5)
    for _, q in ipairs(queries) do
      local a = plain:search(q.vector, 5, "idx", { search_parameters = "nprobe=4" })[1].neighbors
      local b = mapped:search(q.vector, 5, "idx", { search_parameters = "nprobe=4" })[1].neighbors
      assert.are.same(a, b)
    end
    plain:close()
    mapped:close()
  end)

  it("refuses every write to the index, and the table stays as it was", function()
    for _, factory in ipairs({ "IVF16,Flat", "Flat" }) do
      local url, file, name = build(factory)
      local db = vekterdb.new(name, { url = url, faiss_index = file, mmap = true })
      local msg = "opened with mmap and is read%-only"
      assert.matches(msg, H.error_of(db.insert, db, { { idx = N, vector = H.records(1, D, 9)[1].vector } }))
      assert.matches(msg, H.error_of(db.insert_matrix, db, vekterdb.matrix(2, D)))
      assert.are.equal(N, db:count())
      assert.are.equal(N, db.index.ntotal)
      assert.matches(msg, H.error_of(db.update, db, db.Record.idx:eq(3), { vector = vekterdb.vector(D) }))
      assert.are.equal(N, db:count())
      assert.are.equal(1, db:fetch({ 3 }, "idx")[1] and 1)
      -- nothing to add: the file stays as it was (FAISS would write a
      -- mapped index as a reference to the file it replaces)
      local bytes = H.read_file(file)
      assert.are.equal(0, db:sync_index_to_db())
      assert.are.equal(bytes, H.read_file(file))
      if factory ~= "Flat" then
        -- a delete only writes its tombstone; reclaiming it needs a writable index
        assert.are.equal(1, db:delete(db.Record.idx:eq(7)))
        assert.matches(msg, H.error_of(db.rebuild_index, db))
      end
      db:close()
    end
  end)
end)
