-- Index files a table trusts: a table reads only the index files it saved
-- (their SHA-256 is recorded in <table>__vekterdb_index_files), so a
-- damaged, swapped or crafted file is an error before FAISS reads a byte.
local vekterdb = require "vekterdb"
local H = require "spec.helper"

local D = 8

local function sha256(path)
  local p = assert(io.popen("sha256sum '" .. path .. "'"))
  local out = p:read("*l")
  p:close()
  return out:match("^(%x+)")
end

-- n records from idx `first` on
local function records(n, first, seed)
  local out = H.records(n, D, seed)
  for i, r in ipairs(out) do r.idx = first + i - 1 end
  return out
end

local function copy(from, to)
  local data = H.read_file(from)
  local f = assert(io.open(to, "wb"))
  f:write(data)
  f:close()
end

-- a table of n records with a Flat index in a file; returns db, url, file
local function indexed(n, factory, seed)
  local db, url = H.new({ file = true })
  db:insert(H.records(n or 40, D, seed or 5))
  local file = H.path("trusted.index")
  db:create_index(file, factory or "Flat")
  return db, url, file
end

local function digests(db)
  local rows = db:execute("SELECT sha256 FROM " .. db.table_name .. "__vekterdb_index_files ORDER BY seq")
  local out = {}
  for _, r in ipairs(rows) do out[#out + 1] = r[1] or r.sha256 end
  return out
end

local function reopen(db, url, file, opts)
  opts = opts or {}
  opts.url, opts.faiss_index = url, file
  return vekterdb.new(db.table_name, opts)
end

-- reopens the table with file and checks the index holds n vectors
local function opens(db, url, file, n, opts)
  local again = reopen(db, url, file, opts)
  assert.are.equal(n, again.index.ntotal)
  again:close()
end

describe("index files a table trusts", function()
  it("records the digest of every file it saves and reopens it", function()
    local db, url, file = indexed(40)
    assert.are.same({ sha256(file) }, digests(db))
    opens(db, url, file, 40)
    -- an insert saves the file again: the new digest replaces the old one
    db:insert(records(5, 40, 9), { batch_size = 2 })
    assert.are.same({ sha256(file) }, digests(db))
    opens(db, url, file, 45)
    db:close()
  end)

  it("refuses a file changed after it was saved, before FAISS reads it", function()
    local db, url, file = indexed(40)
    local f = assert(io.open(file, "r+b"))
    f:seek("set", 200)
    local b = f:read(1)
    f:seek("set", 200)
    f:write(string.char((b:byte() + 1) % 256))
    f:close()
    local err = H.error_of(reopen, db, url, file)
    assert.truthy(err:find("is not one VekterDB saved for table " .. db.table_name, 1, true), err)
    assert.truthy(err:find("trust_index_file", 1, true), err)
    db:close()
  end)

  it("refuses a crafted file that would crash FAISS's reader", function()
    -- found by fuzz_index: a product quantizer with M = 0 makes FAISS 1.7.3
    -- divide by zero (SIGFPE) while reading; the check comes first
    local db, url, file = indexed(40)
    copy("spec/fuzz/known/faiss-ivfpq-m0.index", file)
    local err = H.error_of(reopen, db, url, file)
    assert.truthy(err:find("is not one VekterDB saved for table", 1, true), err)
    db:close()
  end)

  it("refuses another table's index file, and accepts its own under any name", function()
    local a, url_a, file_a = indexed(40)
    local b, _, file_b = indexed(40, "Flat", 6)
    local err = H.error_of(reopen, a, url_a, file_b)
    assert.truthy(err:find("matches none recorded", 1, true), err)
    -- the same bytes under another name (a moved or copied deployment)
    local moved = H.path("moved.index")
    copy(file_a, moved)
    opens(a, url_a, moved, 40)
    a:close()
    b:close()
  end)

  it("refuses a file when the table never saved one, unless trusted", function()
    local db, url = H.new({ file = true })
    db:insert(H.records(20, D, 3))
    local file = H.path("foreign.index")
    local ix = vekterdb.faiss.index_factory(D, "Flat")
    ix:add(vekterdb.matrix(20, D))
    ix:write(file)
    local err = H.error_of(reopen, db, url, file)
    assert.truthy(err:find("the table records no index file", 1, true), err)
    -- only a real boolean trusts: a stray string from a configuration does not
    err = H.error_of(reopen, db, url, file, { trust_index_file = "false" })
    assert.truthy(err:find("trust_index_file must be true or false, got string", 1, true), err)
    -- trusted: read, checked against the table, and recorded
    opens(db, url, file, 20, { trust_index_file = true })
    assert.are.same({ sha256(file) }, digests(db))
    opens(db, url, file, 20)
    db:close()
  end)

  it("keeps the table's checks for trusted files, and records nothing unreadable", function()
    local db, url = H.new({ file = true })
    db:insert(H.records(5, D, 3))
    local junk = H.path("junk.index")
    local f = assert(io.open(junk, "wb"))
    f:write("this is not a FAISS index")
    f:close()
    local err = H.error_of(reopen, db, url, junk, { trust_index_file = true })
    assert.truthy(err:find("unreadable index file " .. junk, 1, true), err)
    assert.has_error(function() digests(db) end)   -- no side table: nothing recorded
    db:close()
  end)

  it("works through save and load", function()
    local db, url, file = indexed(30)
    local cfg = db:save(H.path("trust.json"))
    local back = vekterdb.load(cfg, url)
    assert.are.equal(30, back.index.ntotal)
    back:close()
    local foreign = vekterdb.faiss.index_factory(D, "Flat")
    foreign:add(vekterdb.matrix(30, D))
    foreign:write(file)
    assert.has_error(function() vekterdb.load(cfg, url) end)
    back = vekterdb.load(cfg, url, { trust_index_file = true })
    assert.are.equal(30, back.index.ntotal)
    back:close()
    db:close()
  end)

  it("records rebuilt and synced files", function()
    local db, url, file = indexed(40, "IDMap,Flat")
    db:delete(db.Record.idx:lt(10))
    db:rebuild_index()
    assert.are.same({ sha256(file) }, digests(db))
    local other = vekterdb.new(db.table_name, { url = url })
    other:insert(records(6, 40, 4))   -- no index here: the file lags
    other:close()
    vekterdb.log.level = "error"   -- the index lags behind: a warning is expected
    local again = reopen(db, url, file)
    vekterdb.log.level = "warn"
    assert.are.equal(6, again:sync_index_to_db())
    assert.are.same({ sha256(file) }, digests(db))
    again:close()
    opens(db, url, file, 36)
    db:close()
  end)
end)
