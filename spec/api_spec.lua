-- Every call of the Lua API, on the backend under test.
local vekterdb = require "vekterdb"
local H = require "spec.helper"

local D = 8

local function records_with_ids(n, seed, first)
  local r = H.rng(seed or 3)
  local out = {}
  for i = first or 0, (first or 0) + n - 1 do
    out[#out + 1] = { idx = i, vector = r.vector(D), id = "id" .. i,
                      category = (i % 2 == 0) and "even" or "odd", weight = i / 2, flag = i % 3 == 0 }
  end
  return out
end

local function new_db(extra)
  local opts = {
    columns = {
      { name = "id", type = "text", unique = true, nullable = false, index = true },
      { name = "category", type = "text" },
      { name = "weight", type = "real" },
      { name = "flag", type = "boolean" },
    },
  }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return H.new(opts)
end

describe("vekterdb.new", function()
  it("creates a table with idx, vector and the declared columns, in order", function()
    local db = new_db()
    local names = {}
    for i, c in ipairs(db.columns) do names[i] = c.name end
    assert.are.same({ "idx", "vector", "id", "category", "weight", "flag" }, names)
    assert.are.equal("idx", db.idx_name)
    assert.are.equal("vector", db.vector_name)
    assert.is_nil(db.d)
    assert.is_nil(db.index)
    assert.is_nil(db.faiss_index)
    local id = db.columns[3]
    assert.are.equal("text", id.type)
    assert.is_true(id.unique)
    assert.is_false(id.nullable)
    assert.is_true(id.index)
    assert.is_true(db.columns[1].primary_key)
    assert.is_true(db.columns[2].vector)
    db:close()
  end)

  it("takes other names for the idx and vector columns", function()
    local db = H.new({ idx_name = "key", vector_name = "emb" })
    assert.are.equal(3, db:insert({ { key = 0, emb = { 1, 0 } }, { key = 1, emb = { 0, 1 } },
                                    { key = 2, emb = { 1, 1 } } }))
    local got = {}
    for rec in db:select(db.Record.key:ge(1), "key") do got[#got + 1] = rec.key end
    table.sort(got)
    assert.are.same({ 1, 2 }, got)
    db:close()
  end)

  it("reopens an existing table from its name and URL alone", function()
    local db, url = H.new({ file = true, columns = { { name = "id", type = "text", unique = true } } },
                          "reopened")
    local recs = {}
    for i, r in ipairs(records_with_ids(5, 1)) do recs[i] = { idx = r.idx, vector = r.vector, id = r.id } end
    db:insert(recs, { batch_size = 2 })
    db:close()
    local again = vekterdb.new("reopened", { url = url })
    assert.are.equal(D, again.d)
    assert.are.equal(5, again:count())
    assert.are.equal("id", again.columns[3].name)
    assert.is_true(again.columns[3].unique)
    again:close()
  end)
end)

describe("a table in the Python VekterDB's layout", function()
  it("opens from its name and URL, and is searched", function()
    if H.backend ~= "sqlite" then
      pending("the PostgreSQL layout is covered by spec/pg_spec.lua")
      return
    end
    local url = H.url(true)
    local admin = vekterdb.new("admin_" .. H.table_name(), { url = url })
    -- what SQLAlchemy emits for VekterDB("tutorial", columns_dict={"id": {Text, unique, index}})
    admin:execute([[CREATE TABLE tutorial (
      idx BIGINT NOT NULL,
      vector BLOB NOT NULL,
      id TEXT NOT NULL,
      PRIMARY KEY (idx))]])
    admin:execute("CREATE UNIQUE INDEX ix_tutorial_id ON tutorial (id)")
    local r = H.rng(12)
    local vecs = {}
    for i = 0, 49 do
      vecs[i] = r.vector(D)
      admin:execute("INSERT INTO tutorial (idx, vector, id) VALUES (?1, ?2, ?3)",
        { i, vekterdb.serialize_vector(vecs[i]), tostring(i) })
    end
    admin:close()
    local db = vekterdb.new("tutorial", { url = url })
    assert.are.equal(D, db.d)
    local id = db.columns[3]
    assert.are.same({ "id", "text", true, false, true }, { id.name, id.type, id.unique, id.nullable, id.index })
    db:create_index(H.path("py.index"), "Flat", { metric = "l2" })
    local res = db:nearest_neighbors(db.Record.id:in_({ "7" }), 1, "id")
    assert.are.equal("7", res[1].id)
    local best = db:search(vecs[7], 1, "id")[1].neighbors[1]
    assert.are.same({ id = "7", metric = 0 }, best)
    db:close()
  end)
end)

describe("insert", function()
  it("takes an array of records, in batches, and returns the count", function()
    local db = new_db()
    assert.are.equal(7, db:insert(records_with_ids(7), { batch_size = 3 }))
    assert.are.equal(7, db:count())
    assert.are.equal(D, db.d)
    db:close()
  end)

  it("takes a generator function", function()
    local db = new_db()
    local recs = records_with_ids(25)
    local i = 0
    local n = db:insert(function()
      i = i + 1
      return recs[i]
    end, { batch_size = 10 })
    assert.are.equal(25, n)
    db:close()
  end)

  it("assigns idx values when records carry none", function()
    local db = H.new()
    db:insert({ { vector = { 1, 2 } }, { vector = { 3, 4 } } })
    db:insert({ { vector = { 5, 6 } } })
    local ids = {}
    for rec in db:select(nil, "idx", { order_by = "idx" }) do ids[#ids + 1] = rec.idx end
    assert.are.same({ 0, 1, 2 }, ids)
    db:close()
  end)

  it("fetch returns a sequence: false for an idx the table does not hold", function()
    local db = new_db()
    db:insert(records_with_ids(4))
    assert.are.equal(1, db:delete(db.Record.idx:in_({ 1 })))
    local got = db:fetch({ 0, 1, 37, 3 }, "idx")
    assert.are.equal(4, #got)
    assert.are.same({ 0, false, false, 3 }, { got[1].idx, got[2], got[3], got[4].idx })
    local seen = 0
    for _ in ipairs(got) do seen = seen + 1 end
    assert.are.equal(4, seen)
    db:close()
  end)

  it("takes column names one by one or as one array, before the options", function()
    local db = new_db()
    local recs = records_with_ids(6)
    db:insert(recs)
    db:create_index(H.path("colarray.index"), "Flat", { metric = "l2" })
    local q = recs[3].vector
    local a = db:search(q, 2, { "idx", "category" })[1].neighbors
    local b = db:search(q, 2, "idx", "category")[1].neighbors
    local c = db:search(q, 2, { "idx", "category" }, { k_extra_neighbors = 1 })[1].neighbors
    assert.are.same(b, a)
    assert.are.same(b, c)
    local keys = {}
    for key in pairs(a[1]) do keys[#keys + 1] = key end
    table.sort(keys)
    assert.are.same({ "category", "idx", "metric" }, keys)
    assert.are.same({ { category = "even", idx = 0 } }, db:fetch({ 0 }, { "idx", "category" }))
    assert.truthy(H.error_of(db.search, db, q, 2, { "idx", 7 }):find("column names must be strings", 1, true))
    db:close()
  end)

  it("accepts vectors as arrays, vekterdb vectors, matrix rows and packed float32 strings", function()
    local db = H.new()
    local m = vekterdb.matrix({ { 5, 6, 7 } })
    db:insert({
      { vector = { 1, 2, 3 } },
      { vector = vekterdb.vector({ 2, 3, 4 }) },
      { vector = m[1] },
      { vector = vekterdb.vector({ 9, 8, 7 }):tobytes() },
    })
    local recs = db:fetch({ 0, 1, 2, 3 }, "vector")
    assert.are.same({ 1, 2, 3 }, recs[1].vector:totable())
    assert.are.same({ 2, 3, 4 }, recs[2].vector:totable())
    assert.are.same({ 5, 6, 7 }, recs[3].vector:totable())
    assert.are.same({ 9, 8, 7 }, recs[4].vector:totable())
    db:close()
  end)

  it("stores already-compressed vectors as they are with serialize_vectors = false", function()
    local db = H.new()
    local blob = vekterdb.serialize_vector({ 0.5, -1, 2 }, 3)
    db:insert({ { idx = 0, vector = blob } }, { serialize_vectors = false })
    local rows = db:execute("SELECT vector FROM " .. db.table_name)
    assert.are.equal(blob, rows[1][1])
    assert.are.same({ 0.5, -1, 2 }, db:fetch({ 0 }, "vector")[1].vector:totable())
    db:close()
  end)

  it("stores one zstd frame of little-endian float32 at the asked compression level", function()
    local db = H.new()
    db:insert({ { vector = { 1, 2, 3, 4 } } }, { compression_level = 19 })
    local blob = db:execute("SELECT vector FROM " .. db.table_name)[1][1]
    assert.are.equal("\x28\xb5\x2f\xfd", blob:sub(1, 4))   -- zstd magic number
    assert.are.same({ 1, 2, 3, 4 }, vekterdb.deserialize_vector(blob):totable())
    assert.are.equal(vekterdb.serialize_vector({ 1, 2, 3, 4 }, 19), blob)
    db:close()
  end)

  it("adds to the attached index and saves its file once at the end", function()
    local db = new_db()
    db:insert(records_with_ids(20))
    local file = H.path("insert.index")
    db:create_index(file, "Flat", { metric = "l2" })
    assert.are.equal(20, db.index.ntotal)
    db:insert(records_with_ids(15, 9, 20), { batch_size = 4 })
    assert.are.equal(35, db.index.ntotal)
    assert.are.equal(35, vekterdb.faiss.read_index(file).ntotal)
    db:close()
    os.remove(file)
  end)

  it("applies faiss_runtime_params while adding, then puts them back", function()
    local db = new_db()
    db:insert(records_with_ids(400))
    local file = H.path("ivfhnsw.index")
    db:create_index(file, "IVF4_HNSW8,Flat", { metric = "l2", faiss_runtime_params = "quantizer_efSearch=25" })
    assert.are.equal(16, db.index:get_parameter("quantizer_efSearch"))
    db:insert(records_with_ids(10, 5, 400), { faiss_runtime_params = "quantizer_efSearch=40" })
    assert.are.equal(16, db.index:get_parameter("quantizer_efSearch"))
    assert.are.equal(410, db.index.ntotal)
    db:close()
    os.remove(file)
  end)
end)

describe("create_index, attach, train_index and sync_index_to_db", function()
  it("builds, trains, fills and saves an IVF index", function()
    local db = new_db()
    db:insert(records_with_ids(600))
    local file = H.path("ivf.index")
    local ix = db:create_index(file, "IVF8,Flat", { metric = "L2", sample_size = 400, batch_size = 128 })
    assert.are.equal(ix, db.index)
    assert.are.equal(file, db.faiss_index)
    assert.are.equal("l2", db.metric)
    assert.are.equal(600, ix.ntotal)
    assert.are.equal(D, ix.d)
    assert.is_true(ix.is_trained)
    assert.are.equal(600, vekterdb.faiss.read_index(file).ntotal)
    db:close()
    os.remove(file)
  end)

  it("refuses to replace an attached index or to overwrite a file", function()
    local db = new_db()
    db:insert(records_with_ids(10))
    local file = H.path("one.index")
    db:create_index(file, "Flat")
    local err = H.error_of(db.create_index, db, H.path("two.index"), "Flat")
    assert.truthy(err:find("an index is already attached", 1, true))
    local db2 = H.new()
    db2:insert({ { vector = { 1, 2, 3, 4, 5, 6, 7, 8 } } })
    err = H.error_of(db2.create_index, db2, file, "Flat")
    assert.truthy(err:find("already exists; refusing to overwrite", 1, true))
    assert.is_nil(db2.index)
    db:close()
    db2:close()
    os.remove(file)
  end)

  it("attaches a hand-built index, trains it and adds what the table holds", function()
    local db = new_db()
    db:insert(records_with_ids(500))
    local ix = vekterdb.faiss.index_factory(D, "IVF4,Flat", "l2")
    local file = H.path("attached.index")
    db:attach(ix, file)
    assert.is_false(ix.is_trained)
    db:train_index(0)
    assert.is_true(ix.is_trained)
    assert.are.equal(500, db:sync_index_to_db({ batch_size = 64 }))
    assert.are.equal(500, ix.ntotal)
    assert.are.equal(0, db:sync_index_to_db())
    assert.are.equal(500, vekterdb.faiss.read_index(file).ntotal)
    db:close()
    os.remove(file)
  end)

  it("syncs records written straight to the table with SQL", function()
    local db = new_db()
    db:insert(records_with_ids(10))
    local file = H.path("sync.index")
    db:create_index(file, "Flat")
    local p = function(n) return db:placeholder(n) end
    local sql = string.format('INSERT INTO %s (idx, vector, id) VALUES (%s, %s, %s)',
                              db.table_name, p(1), p(2), p(3))
    local r = H.rng(99)
    for i = 10, 12 do db:execute(sql, { i, vekterdb.serialize_vector(r.vector(D)), "sql" .. i }) end
    assert.are.equal(13, db:count())
    assert.are.equal(10, db.index.ntotal)
    assert.are.equal(3, db:sync_index_to_db())
    assert.are.equal(13, db.index.ntotal)
    local res = db:nearest_neighbors(db.Record.id:eq("sql11"), 1, "idx", { k_extra_neighbors = 2 })
    assert.are.equal(1, #res)
    db:close()
    os.remove(file)
  end)

  it("names the first missing idx when idx values are not consecutive", function()
    local db = new_db()
    db:insert(records_with_ids(10))
    local file = H.path("gap.index")
    db:create_index(file, "Flat")
    db:execute(string.format("INSERT INTO %s (idx, vector, id) VALUES (%s, %s, %s)", db.table_name,
      db:placeholder(1), db:placeholder(2), db:placeholder(3)),
      { 12, vekterdb.serialize_vector(H.rng(1).vector(D)), "gap" })
    local err = H.error_of(db.sync_index_to_db, db)
    assert.truthy(err:find("idx values of table " .. db.table_name
      .. " are not consecutive from 0: idx 10 is missing", 1, true))
    assert.are.equal(10, db.index.ntotal)
    db:close()
    os.remove(file)
  end)

  it("says when an opened index lacks records of the table, and sync adds exactly those", function()
    local db, url = new_db({ file = true })
    db:insert(records_with_ids(30))
    local file = H.path("behind.index")
    db:create_index(file, "Flat")
    db:close()
    -- more records while nobody had the index open
    local plain = vekterdb.new(db.table_name, { url = url })
    plain:insert(records_with_ids(12, 4, 30))
    plain:close()
    local lines = {}
    local old = vekterdb.log.sink
    vekterdb.log.sink = function(level, msg) lines[#lines + 1] = level .. ": " .. msg end
    local again = vekterdb.new(db.table_name, { url = url, faiss_index = file })
    vekterdb.log.sink = old
    assert.are.equal(1, #lines)
    assert.truthy(lines[1]:find("warn: index file " .. file .. " lacks 12 records of table "
      .. db.table_name, 1, true))
    assert.truthy(lines[1]:find("; db:sync_index_to_db() saves them", 1, true), lines[1])
    assert.are.equal(12, again:sync_index_to_db())
    assert.are.equal(42, again.index.ntotal)
    again:close()
    os.remove(file)
  end)
end)

describe("search", function()
  local db, file, recs

  setup(function()
    db = new_db()
    recs = records_with_ids(300)
    db:insert(recs)
    file = H.path("search.index")
    db:create_index(file, "Flat", { metric = "l2" })
  end)

  teardown(function()
    db:close()
    os.remove(file)
  end)

  it("returns one result per query with neighbors nearest first", function()
    local res = db:search(recs[6].vector, 4, "idx")
    assert.are.equal(1, #res)
    local nb = res[1].neighbors
    assert.are.equal(4, #nb)
    assert.are.equal(5, nb[1].idx)
    assert.are.equal(0, nb[1].metric)
    for j = 2, 4 do assert.is_true(nb[j].metric >= nb[j - 1].metric) end
  end)

  it("takes a matrix, an array of vectors or an array of arrays", function()
    local q = vekterdb.matrix({ recs[1].vector, recs[2].vector, recs[3].vector })
    local a = db:search(q, 1, "idx")
    local b = db:search({ recs[1].vector, recs[2].vector, recs[3].vector }, 1, "idx")
    local c = db:search({ recs[1].vector:totable(), recs[2].vector:totable(), recs[3].vector:totable() },
                        1, "idx")
    for i = 1, 3 do
      assert.are.equal(i - 1, a[i].neighbors[1].idx)
      assert.are.equal(i - 1, b[i].neighbors[1].idx)
      assert.are.equal(i - 1, c[i].neighbors[1].idx)
    end
  end)

  it("returns every column, vector included, when no column is named", function()
    local nb = db:search(recs[11].vector, 1)[1].neighbors[1]
    assert.are.equal(10, nb.idx)
    assert.are.equal("id10", nb.id)
    assert.are.equal("even", nb.category)
    assert.are.equal(5, nb.weight)
    assert.are.equal(false, nb.flag)
    assert.are.equal("vekterdb.Vector", getmetatable(nb.vector).__name)
    assert.are.same(recs[11].vector:totable(), nb.vector:totable())
    assert.are.equal(0, nb.metric)
  end)

  it("returns only the named columns and the metric", function()
    local nb = db:search(recs[4].vector, 2, "id")[1].neighbors
    for _, n in ipairs(nb) do
      local keys = {}
      for k in pairs(n) do keys[#keys + 1] = k end
      table.sort(keys)
      assert.are.same({ "id", "metric" }, keys)
    end
    assert.are.equal("id3", nb[1].id)
  end)

  it("cuts at the threshold (L2: distance <= threshold)", function()
    local all = db:search(recs[1].vector, 10, "idx")[1].neighbors
    local cut = (all[3].metric + all[4].metric) / 2
    local res = db:search(recs[1].vector, 10, "idx", { threshold = cut })[1].neighbors
    assert.are.equal(3, #res)
  end)

  it("reports the true Euclidean distance, not its square", function()
    local nb = db:search(recs[1].vector, 2, "idx", "vector")[1].neighbors[2]
    local s = 0
    for j = 1, D do s = s + (recs[1].vector[j] - nb.vector[j]) ^ 2 end
    assert.is_true(math.abs(nb.metric - math.sqrt(s)) < 1e-4)
  end)
end)

describe("runtime parameters", function()
  local db, file

  setup(function()
    db = new_db()
    db:insert(records_with_ids(1000))
    file = H.path("params.index")
    db:create_index(file, "IVF16,Flat", { metric = "l2" })
  end)

  teardown(function()
    db:close()
    os.remove(file)
  end)

  it("set_faiss_runtime_parameters sticks", function()
    db:set_faiss_runtime_parameters("nprobe=4")
    assert.are.equal(4, db.index:get_parameter("nprobe"))
    assert.are.equal("nprobe=4", db.faiss_runtime_parameters)
    db:set_faiss_runtime_parameters("nprobe=6")
    assert.are.equal("nprobe=6", db.faiss_runtime_parameters)
  end)

  it("per-call search_parameters apply to that call only", function()
    db:set_faiss_runtime_parameters("nprobe=2")
    local q = H.rng(5).vector(D)
    local narrow = db:search(q, 50, "idx")[1].neighbors
    local wide = db:search(q, 50, "idx", { search_parameters = "nprobe=16" })[1].neighbors
    assert.are.equal(2, db.index:get_parameter("nprobe"))
    -- searching every list finds at least as close a set
    assert.is_true(wide[50].metric <= narrow[#narrow].metric)
    local again = db:search(q, 50, "idx")[1].neighbors
    assert.are.same(narrow, again)
  end)

  it("refuses an unknown parameter and changes nothing", function()
    db:set_faiss_runtime_parameters("nprobe=3")
    local err = H.error_of(db.set_faiss_runtime_parameters, db, "nprobe=9,efSearch=10")
    assert.truthy(err:find("unknown FAISS runtime parameter 'efSearch' for this index type", 1, true))
    assert.are.equal(3, db.index:get_parameter("nprobe"))
    err = H.error_of(db.search, db, H.rng(1).vector(D), 1, "idx", { search_parameters = "bogus=1" })
    assert.truthy(err:find("unknown FAISS runtime parameter 'bogus'", 1, true))
    assert.are.equal(3, db.index:get_parameter("nprobe"))
    assert.are.equal("nprobe=3", db.faiss_runtime_parameters)
  end)
end)

describe("nearest_neighbors", function()
  local db, file, recs

  setup(function()
    db = new_db()
    recs = records_with_ids(200)
    db:insert(recs)
    file = H.path("nn.index")
    db:create_index(file, "Flat", { metric = "l2" })
  end)

  teardown(function()
    db:close()
    os.remove(file)
  end)

  it("selects query records with a where-clause and leaves each out of its own neighbors", function()
    local res = db:nearest_neighbors(db.Record.id:in_({ "id3", "id7" }), 5, "idx", "id")
    assert.are.equal(2, #res)
    for _, r in ipairs(res) do
      assert.are.equal(5, #r.neighbors)
      assert.are.equal("id" .. r.idx, r.id)
      for _, nb in ipairs(r.neighbors) do assert.are_not.equal(r.idx, nb.idx) end
    end
  end)

  it("takes a column name and a list of values", function()
    local res = db:nearest_neighbors("id", { "id10" }, 2, "idx", { k_extra_neighbors = 3 })
    assert.are.equal(1, #res)
    assert.are.equal(10, res[1].idx)
    assert.are.equal(2, #res[1].neighbors)
  end)

  it("returns all columns of the query record and its neighbors when none are named", function()
    local r = db:nearest_neighbors(db.Record.idx:eq(4), 1)[1]
    assert.are.equal("id4", r.id)
    assert.are.same(recs[5].vector:totable(), r.vector:totable())
    assert.are.equal("vekterdb.Vector", getmetatable(r.neighbors[1].vector).__name)
  end)

  it("returns an empty list when nothing matches", function()
    assert.are.same({}, db:nearest_neighbors(db.Record.id:eq("nope"), 3, "idx"))
  end)

  it("agrees with search on the record's own vector", function()
    local a = db:nearest_neighbors(db.Record.idx:eq(17), 3, "idx")[1].neighbors
    local b = db:search(recs[18].vector, 4, "idx")[1].neighbors
    assert.are.equal(17, b[1].idx)
    for j = 1, 3 do assert.are.equal(b[j + 1].idx, a[j].idx) end
  end)

  it("works through long in_ lists split into several queries", function()
    local ids = {}
    for i = 0, 199 do ids[#ids + 1] = i end
    for i = 200, 40000 do ids[#ids + 1] = i end   -- values matching nothing
    local res = db:nearest_neighbors(db.Record.idx:in_(ids), 1, "idx")
    assert.are.equal(200, #res)
  end)
end)

describe("select", function()
  it("iterates over the matching records with the named columns", function()
    local db = new_db()
    db:insert(records_with_ids(20))
    local seen = {}
    for rec in db:select(db.Record.category:eq("odd"), "idx", "category") do
      assert.are.equal("odd", rec.category)
      assert.is_nil(rec.vector)
      seen[#seen + 1] = rec.idx
    end
    assert.are.equal(10, #seen)
    local first = db:select(db.Record.idx:le(1), "idx", "vector")()
    assert.are.equal("vekterdb.Vector", getmetatable(first.vector).__name)
    local n = 0
    for _ in db:select() do n = n + 1 end
    assert.are.equal(20, n)
    db:close()
  end)

  it("orders and limits", function()
    local db = new_db()
    db:insert(records_with_ids(20))
    local got = {}
    for rec in db:select(db.Record.weight:gt(3), "idx", { order_by = "idx", limit = 3 }) do
      got[#got + 1] = rec.idx
    end
    assert.are.same({ 7, 8, 9 }, got)
    db:close()
  end)
end)

describe("similarity and sampling", function()
  it("computes the inner product and the L2 distance by hand-checked values", function()
    local db = H.new()
    db:insert({ { vector = { 1, 2, 3 } } })
    assert.are.equal(32, db:similarity({ 1, 2, 3 }, { 4, 5, 6 }))
    assert.is_nil(db:similarity({ 1, 2, 3 }, { 4, 5, 6 }, 33))
    assert.are.equal(32, db:similarity({ 1, 2, 3 }, { 4, 5, 6 }, 32))
    db:attach(vekterdb.faiss.index_factory(3, "Flat", "l2"), nil)
    assert.are.equal("l2", db.metric)
    assert.is_true(math.abs(db:similarity({ 1, 2, 3 }, { 4, 5, 6 }) - math.sqrt(27)) < 1e-6)
    assert.is_nil(db:similarity({ 1, 2, 3 }, { 4, 5, 6 }, 5))
    assert.is_true(db:similarity({ 1, 2, 3 }, { 4, 5, 6 }, 6) > 5)
    db:close()
  end)

  it("samples stored vectors as an n x d matrix", function()
    local db = new_db()
    db:insert(records_with_ids(50))
    local m = db:sample_vectors(10)
    assert.are.equal(10, m.n)
    assert.are.equal(D, m.d)
    assert.are.equal(50, #db:sample_vectors(0))
    assert.are.equal(50, #db:sample_vectors(500))
    db:close()
  end)
end)

describe("save and load", function()
  it("round-trips the table, the index and the runtime parameters, never the URL", function()
    local db, url = new_db({ file = true })
    db:insert(records_with_ids(400))
    local file = H.path("saved.index")
    db:create_index(file, "IVF8,Flat")
    db:set_faiss_runtime_parameters("nprobe=5")
    local config = H.path("saved.json")
    assert.are.equal(config, db:save(config))
    local text = io.open(config):read("a")
    local cfg = require("cjson").decode(text)
    assert.are.equal(db.table_name, cfg.table_name)
    assert.are.equal("idx", cfg.idx_name)
    assert.are.equal("vector", cfg.vector_name)
    assert.are.equal(file, cfg.faiss_index)
    assert.are.equal("nprobe=5", cfg.faiss_runtime_parameters)
    assert.is_nil(text:find(url, 1, true))
    local q = H.rng(8).vector(D)
    local before = db:search(q, 5, "idx")
    db:close()

    local again = vekterdb.load(config, url)
    assert.are.equal(5, again.index:get_parameter("nprobe"))
    assert.are.equal(400, again.index.ntotal)
    assert.are.same(before, again:search(q, 5, "idx"))
    again:close()
    os.remove(file)
  end)

  it("writes <table_name>.json by default", function()
    local db = H.new()
    db:insert({ { vector = { 1, 2 } } })
    local name = db:save()
    assert.are.equal(db.table_name .. ".json", name)
    assert.truthy(io.open(name))
    os.remove(name)
    db:close()
  end)
end)

describe("close", function()
  it("is idempotent and later calls raise", function()
    local db = H.new()
    db:close()
    db:close()
    local err = H.error_of(db.insert, db, { { vector = { 1 } } })
    assert.truthy(err:find("attempt to use a closed database", 1, true))
  end)
end)
