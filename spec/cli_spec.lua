-- bin/vekterdb run for real: a shell-like io.popen with the interpreter and
-- the LUA_PATH/LUA_CPATH of this run (make test exports them).
local vekterdb = require "vekterdb"
local vio = require "vekterdb.io"
local cjson = require "cjson"
local H = require "spec.helper"

local LUA = os.getenv("LUA") or "lua5.4"

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

-- runs `vekterdb args...` with env (a table); returns exit code, stdout, stderr
local function run(args, env)
  local parts = {}
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. quote(v) end
  parts[#parts + 1] = LUA
  parts[#parts + 1] = "bin/vekterdb"
  for _, a in ipairs(args) do parts[#parts + 1] = quote(a) end
  local err = H.path("stderr")
  local p = assert(io.popen(table.concat(parts, " ") .. " 2>" .. err, "r"))
  local out = p:read("a")
  local _, _, code = p:close()
  return code, out, read_all(err)
end

local function lines(s)
  local out = {}
  for l in s:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

-- clustered vectors: each row near one of a few centres
local function dataset(n, d, seed)
  local r = H.rng(seed)
  local centres = {}
  for c = 1, 8 do centres[c] = r.vector(d, 4) end
  local m = vekterdb.matrix(n, d)
  for i = 1, n do
    local v = vekterdb.vector(d)
    local c = centres[(i % 8) + 1]
    for j = 1, d do v[j] = c[j] + r.normal(0.5) end
    m[i] = v
  end
  return m
end

describe("vekterdb --help", function()
  it("gives each command's first sentence whole", function()
    local code, out = run({ "--help" })
    assert.are.equal(0, code)
    assert.truthy(out:find("Builds a FAISS index from a factory string (Flat, HNSW32, IVF1000,PQ16,", 1, true), out)
    assert.truthy(out:find("IVF5000_HNSW32,PQ32, ...), trains it on the table's vectors", 1, true), out)
    assert.truthy(out:find("the index file and a JSON configuration for later commands.", 1, true), out)
    -- the first sentence only
    assert.truthy(out:find("creating it when it does not exist.\n", 1, true), out)
    assert.is_nil(out:find("Records get consecutive idx values", 1, true))
  end)

  it("lists the commands and the exit codes", function()
    local code, out = run({ "--help" })
    assert.are.equal(0, code)
    for _, cmd in ipairs({ "import", "index", "search", "info", "sync" }) do
      assert.matches("\n  " .. cmd, out)
    end
    assert.matches("exit codes:", out)
    assert.matches("4  not found", out)
  end)

  it("has a help text for each command", function()
    for _, cmd in ipairs({ "import", "index", "search", "info", "sync" }) do
      local code, out, err = run({ cmd, "--help" })
      assert.are.equal(0, code)
      assert.are.equal("", err)
      assert.matches("^usage: vekterdb " .. cmd, out)
      assert.matches("%-%-url URL", out)
    end
    local code, out = run({ "help", "search" })
    assert.are.equal(0, code)
    assert.matches("%-%-k%-extra N", out)
  end)

  it("exits 2 with the help when given no command", function()
    local code, out = run({})
    assert.are.equal(2, code)
    assert.matches("^usage: vekterdb COMMAND", out)
  end)
end)

describe("vekterdb import, index, search, info and sync", function()
  local url, name, data, index_file, config, env

  setup(function()
    url = H.url(true)
    name = H.table_name("cli")
    env = { VEKTERDB_URL = url }
    data = H.path("ann.hdf5")
    local train = dataset(3000, 16, 1)
    vio.write_hdf5(data, "train", train)
    local test = vekterdb.matrix(5, 16)
    for i = 1, 5 do test[i] = train[i * 100] end     -- queries equal to rows 99, 199, ...
    vio.write_hdf5(data, "test", test, true)
    index_file = H.path("cli.index")
    config = H.path("cli.json")
  end)

  it("imports the train vectors with an id column, reporting progress on stderr", function()
    local code, out, err = run({ "import", data, "--table", name, "--id-column", "id",
                                 "--batch-size", "1000" }, env)
    assert.are.equal(0, code, err)
    local res = cjson.decode(out)
    assert.are.equal("import", res.command)
    assert.are.equal(3000, res.imported)
    assert.are.equal(3000, res.rows)
    assert.are.equal(16, res.dimension)
    assert.are.equal(0, res.first_idx)
    assert.matches("import records  100%.0%%  3,000/3,000", err)
  end)

  it("describes the table before it has an index", function()
    local code, out = run({ "info", "--table", name }, env)
    assert.are.equal(0, code)
    local res = cjson.decode(out)
    assert.are.equal(name, res.table)
    assert.are.equal(3000, res.rows)
    assert.are.equal(16, res.dimension)
    assert.are.equal(cjson.null, res.index)
    assert.are.equal("id", res.columns[3].name)
    assert.is_true(res.columns[3].unique)
  end)

  it("builds an index and saves a configuration", function()
    local code, out, err = run({ "index", "IVF8,Flat", "--table", name, "--metric", "l2",
                                 "--index-file", index_file, "--params", "nprobe=8",
                                 "--save", config, "--quiet" }, env)
    assert.are.equal(0, code, err)
    assert.are.equal("", err)
    local res = cjson.decode(out)
    assert.are.equal(3000, res.ntotal)
    assert.are.equal("l2", res.metric)
    assert.are.equal(config, res.config)
    assert.are.equal("nprobe=8", res.runtime_parameters)
    local saved = cjson.decode(read_all(config))
    assert.are.equal(name, saved.table_name)
    assert.are.equal(index_file, saved.faiss_index)
  end)

  it("tells the index type, its size and parameters", function()
    local code, out = run({ "info", "--config", config }, env)
    assert.are.equal(0, code)
    local ix = cjson.decode(out).index
    assert.are.equal("IndexIVFFlat", ix.type)
    assert.are.equal(8, ix.nlist)
    assert.are.equal("IndexFlatL2", ix.quantizer)
    assert.are.equal(3000, ix.ntotal)
    assert.are.equal("nprobe=8", ix.runtime_parameters)
    assert.are.equal(8, ix.parameters.nprobe)
    assert.is_true(ix.in_sync)
  end)

  it("searches with the queries of the file and prints one JSON line per query", function()
    local code, out, err = run({ "search", data, "--config", config, "-k", "3", "--columns", "idx,id",
                                 "--batch-size", "2" }, env)
    assert.are.equal(0, code, err)
    local got = lines(out)
    assert.are.equal(5, #got)
    for i, l in ipairs(got) do
      local res = cjson.decode(l)
      assert.are.equal(i - 1, res.query)
      assert.are.equal(3, #res.neighbors)
      -- each query is a stored row: found first, at distance 0
      assert.are.equal(i * 100 - 1, res.neighbors[1].idx)
      assert.are.equal(tostring(i * 100 - 1), res.neighbors[1].id)
      assert.is_true(res.neighbors[1].metric < 1e-3)
    end
    assert.matches('^{"query":0,"neighbors":%[{"idx":99,"id":"99","metric":', got[1])
    assert.matches("search queries  100%.0%%  5/5", err)
  end)

  it("imports into an indexed table and syncs rows added by other means", function()
    local code, out, err = run({ "import", data, "--dataset", "test", "--config", config,
                                 "--id-column", "id", "-q" }, env)
    assert.are.equal(0, code, err)
    local res = cjson.decode(out)
    assert.are.equal(5, res.imported)
    assert.are.equal(3000, res.first_idx)
    assert.are.equal(3005, res.index_ntotal)
    -- rows written without the index
    local db = vekterdb.new(name, { url = url })
    db:insert({ { idx = 3005, id = "x", vector = dataset(1, 16, 9)[1] } })
    db:close()
    -- and two earlier ones deleted: the index lacks exactly the one new record
    db = vekterdb.new(name, { url = url })
    assert.are.equal(2, db:delete(db.Record.idx:in_({ 3000, 3001 })))
    db:close()
    code, out, err = run({ "info", "--config", config }, env)
    assert.are.equal(0, code)
    assert.is_false(cjson.decode(out).index.in_sync)
    assert.are.equal(1, cjson.decode(out).index.lacks)
    -- the warning names the command that fixes it, not the Lua function
    assert.truthy(err:find("lacks 1 records of table " .. name, 1, true), err)
    assert.truthy(err:find("`vekterdb sync` saves them", 1, true), err)
    assert.is_nil(err:find("sync_index_to_db", 1, true), err)
    code, out, err = run({ "sync", "--config", config, "-q" }, env)
    assert.are.equal(0, code, err)
    res = cjson.decode(out)
    assert.are.equal(1, res.added)
    assert.are.equal(3006, res.ntotal)
  end)
end)

describe("vekterdb exit codes", function()
  local url, name, fvecs, env, config

  setup(function()
    url = H.url(true)
    name = H.table_name("codes")
    env = { VEKTERDB_URL = url }
    fvecs = H.path("v.fvecs")
    vio.write_fvecs(fvecs, dataset(50, 8, 3))
    assert.are.equal(0, (run({ "import", fvecs, "--table", name, "-q" }, env)))
    config = H.path("codes.json")
    assert.are.equal(0, (run({ "index", "Flat", "--table", name, "-o", H.path("codes.index"),
                               "--save", config, "-q" }, env)))
  end)

  local function expect(code_wanted, pattern, args, e)
    local code, out, err = run(args, e or env)
    assert.are.equal(code_wanted, code, err)
    assert.are.equal("", out)
    assert.matches("^vekterdb: ", err)
    assert.matches(pattern, err)
  end

  it("2 for usage errors", function()
    expect(2, "unknown command 'frobnicate'", { "frobnicate" })
    expect(2, "import: unknown option '%-%-colour'", { "import", fvecs, "--colour" })
    expect(2, "import: missing argument FILE", { "import" })
    expect(2, "search: unexpected argument 'b'", { "search", "a", "b" })
    expect(2, "%-%-k must be at least 1, got 0", { "search", fvecs, "--config", config, "-k", "0" })
    expect(2, "%-%-batch%-size needs an integer, got 'ten'", { "sync", "--batch-size", "ten" })
    expect(2, "no database: give %-%-url URL or set VEKTERDB_URL", { "info", "--table", name }, {})
    expect(2, "in%-memory database", { "info", "--table", name, "--url", "sqlite://" })
    expect(2, "no table: give %-%-table NAME", { "info" })
    expect(2, "give the index file with %-%-index%-file", { "index", "Flat", "--table", name })
    expect(2, "table .* has no column 'nope'", { "search", fvecs, "--config", config, "--columns", "nope" })
  end)

  it("3 for vector files that cannot be read, are malformed or do not fit", function()
    expect(3, "No such file", { "import", H.path("missing.fvecs"), "--table", name })
    local bad = H.path("bad.fvecs")
    local f = assert(io.open(bad, "wb"))
    f:write(string.pack("<i4", 8), string.rep("\0", 20))
    f:close()
    expect(3, "truncated or not an %.fvecs file", { "search", bad, "--config", config })
    local wide = H.path("wide.npy")
    vio.write_npy(wide, dataset(2, 12, 4))
    expect(3, "holds 12%-d vectors but table .* holds 8%-d vectors", { "import", wide, "--table", name })
    expect(3, "holds 12%-d vectors", { "search", wide, "--config", config })
    expect(3, "cannot tell the format", { "import", H.path("x.csv"), "--table", name })
  end)

  it("4 for a missing database file, table, index file or index", function()
    expect(4, "database file .* does not exist", { "info", "--table", name,
                                                   "--url", "sqlite:///" .. H.path("none.db") })
    expect(4, "table no_such_table does not exist", { "info", "--table", "no_such_table" })
    expect(4, "index file .* does not exist", { "sync", "--table", name, "--index", H.path("no.index") })
    expect(4, "no index for table", { "search", fvecs, "--table", name })
  end)

  it("1 when the operation fails", function()
    expect(1, "could not parse index string", { "index", "NotAnIndex", "--table", name,
                                                 "-o", H.path("x.index"), "-q" })
    expect(1, "unknown FAISS runtime parameter 'nprobx'", { "search", fvecs, "--config", config,
                                                            "--params", "nprobx=3", "-q" })
    local existing = H.path("exists.index")
    assert(io.open(existing, "wb")):close()
    expect(1, "already exists", { "index", "Flat", "--table", name, "-o", existing })
  end)

  it("1 for an index file the table did not save, unless --trust-index", function()
    local foreign = H.path("foreign.index")
    local ix = vekterdb.faiss.index_factory(8, "Flat")
    ix:add(dataset(50, 8, 4))   -- not the table's vectors: other bytes than codes.index
    ix:write(foreign)
    expect(1, "is not one VekterDB saved for table " .. name, { "info", "--table", name, "--index", foreign })
    local code, out, err = run({ "info", "--table", name, "--index", foreign, "--trust-index" }, env)
    assert.are.equal(0, code, err)
    assert.are.equal(50, cjson.decode(out).index.ntotal)
    code, out, err = run({ "info", "--table", name, "--index", foreign }, env)
    assert.are.equal(0, code, err)   -- recorded: no flag needed any more
    assert.are.equal(50, cjson.decode(out).index.ntotal)
  end)
end)
