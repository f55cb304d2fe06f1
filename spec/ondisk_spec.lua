-- IVF indexes whose inverted lists live on disk (create_index's on_disk):
-- the lists file beside a small index file, the answers of the same index
-- in memory, other processes mapping it read-only, records inserted and
-- deleted afterwards, new generations, and resident memory well under the
-- lists' size.
local vekterdb = require "vekterdb"
local H = require "spec.helper"

local LUA = os.getenv("VEKTERDB_TEST_LUA") or "lua5.4"
local D, N = 32, 6000
local OPTS = { on_disk = true, sample_size = 2000, batch_size = 700, metric = "l2" }

local function size_of(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

-- the lists files of index file `file`
local function lists_files(file)
  local out = {}
  for line in H.sh("ls " .. H.sh_quote(file) .. ".ivfdata.* 2>/dev/null"):gmatch("[^\n]+") do
    out[#out + 1] = line
  end
  return out
end

local function build(records, n, d)
  local db, url = H.new({ file = true })
  db:insert(records or H.records(n or N, d or D, 31))
  return db, url
end

-- runs `code` in a new lua process (this module's paths); returns its output
local function child(code)
  local script = H.path("child.lua")
  local f = assert(io.open(script, "w"))
  f:write(("package.path = %q\n"):format(package.path))
  if _VERSION == "Lua 5.4" and not os.getenv("LUA_CPATH_5_4") then
    f:write(("package.cpath = %q\n"):format(package.cpath))
  end
  f:write(code)
  f:close()
  local out = H.sh(("%s %s 2>&1"):format(LUA, H.sh_quote(script)))
  return out
end

local function idxs(db, q, k)
  local out = {}
  for i, n in ipairs(db:search(q, k, "idx", { search_parameters = "nprobe=6" })[1].neighbors) do
    out[i] = n.idx
  end
  return out
end

describe("on-disk inverted lists", function()
  it("writes the lists beside a much smaller index file, with the answers of the same index in memory", function()
    local db = build()
    local file = H.path("ondisk.index")
    local ix = db:create_index(file, "IVF32,SQ8", OPTS)
    assert.is_true(ix.on_disk)
    assert.is_true(db.index.on_disk)
    assert.are.equal(N, db.index.ntotal)
    local lists = lists_files(file)
    assert.are.equal(1, #lists)
    -- SQ8 at d = 32: 32 bytes of code and 8 of id a vector, in the lists file
    assert.are.equal(N * (D + 8), size_of(lists[1]))
    assert.is_true(size_of(file) * 10 < size_of(lists[1]), "the index file holds no lists")

    -- the same factory and training sample, in memory
    local mem = H.new({ file = true })
    mem:insert(H.records(N, D, 31))
    local mfile = H.path("inmemory.index")
    mem:create_index(mfile, "IVF32,SQ8", { sample_size = 2000, metric = "l2" })
    assert.is_false(mem.index.on_disk)
    assert.are.same({}, lists_files(mfile))
    for _, q in ipairs(H.records(25, D, 77)) do
      assert.are.same(idxs(mem, q.vector, 10), idxs(db, q.vector, 10))
    end
    db:close()
    mem:close()
  end)

  it("is mapped read-only by a new process, which gets the same answers", function()
    local db, url = build()
    local file = H.path("ondisk.index")
    db:create_index(file, "IVF32,SQ8", OPTS)
    local queries = H.records(10, D, 78)
    local want = {}
    for i, q in ipairs(queries) do want[i] = table.concat(idxs(db, q.vector, 5), ",") end
    local lists = lists_files(file)[1]
    local out = child(([[
      local vekterdb = require "vekterdb"
      local H = require "spec.helper"
      local db = vekterdb.new(%q, { url = %q, faiss_index = %q })
      print("on_disk " .. tostring(db.index.on_disk) .. " " .. db.index.ntotal)
      for line in io.lines("/proc/self/maps") do
        if line:sub(-#%q) == %q then print("map " .. line:match("^%%S+ (%%S+)")) end
      end
      for _, q in ipairs(H.records(10, %d, 78)) do
        local got = {}
        for i, n in ipairs(db:search(q.vector, 5, "idx", { search_parameters = "nprobe=6" })[1].neighbors) do
          got[i] = n.idx
        end
        print("answer " .. table.concat(got, ","))
      end
    ]]):format(db.table_name, url, file, lists, lists, D))
    assert.matches("on_disk true " .. N, out, 1, true)
    assert.matches("map r--s", out, 1, true)           -- shared, read-only
    assert.not_matches("map r.w", out)
    local got = {}
    for a in out:gmatch("answer (%S+)") do got[#got + 1] = a end
    assert.are.same(want, got)
    db:close()
  end)

  it("finds records inserted after it was written and leaves deleted ones out, on every handle", function()
    local db, url = build()
    local file = H.path("ondisk.index")
    db:create_index(file, "IVF32,SQ8", OPTS)
    local other = vekterdb.new(db.table_name, { url = url })        -- no index
    local reader = vekterdb.new(db.table_name, { url = url, faiss_index = file })
    assert.is_true(reader.index.on_disk)
    local new = H.records(3, D, 555)
    other:insert({ { vector = new[1].vector } })
    db:insert({ { vector = new[2].vector } })    -- the on-disk handle itself takes inserts too
    for _, h in ipairs({ db, reader }) do
      assert.are.equal(N, h:search(new[1].vector, 1, "idx")[1].neighbors[1].idx)
      assert.are.equal(N + 1, h:search(new[2].vector, 1, "idx")[1].neighbors[1].idx)
    end
    -- deletes, by another handle, vanish at once
    local victim = db:fetch({ 17 }, "vector")[1].vector
    assert.are.equal(17, reader:search(victim, 1, "idx")[1].neighbors[1].idx)
    assert.are.equal(1, other:delete(other.Record.idx:eq(17)))
    assert.are.equal(1, other:delete(other.Record.idx:eq(N)))
    -- an update by the on-disk handle: a new idx, the old one deleted
    assert.are.equal(1, db:update(db.Record.idx:eq(20), { vector = new[3].vector }))
    for _, h in ipairs({ db, reader }) do
      assert.are_not.equal(17, h:search(victim, 1, "idx")[1].neighbors[1].idx)
      assert.are_not.equal(N, h:search(new[1].vector, 1, "idx")[1].neighbors[1].idx)
      assert.are.equal(N + 1, h:search(new[2].vector, 1, "idx")[1].neighbors[1].idx)
      assert.are.equal(N + 2, h:search(new[3].vector, 1, "idx")[1].neighbors[1].idx)
    end
    assert.is_falsy(db:fetch({ 20 }, "idx")[1])
    other:close()
    reader:close()
    db:close()
  end)

  it("writes a new generation on sync_index_to_db: a new lists file, the old one removed", function()
    local db, url = build()
    local file = H.path("ondisk.index")
    db:create_index(file, "IVF32,SQ8", OPTS)
    local first = lists_files(file)[1]
    local reader = vekterdb.new(db.table_name, { url = url, faiss_index = file })
    local new = H.records(5, D, 556)
    local rows = {}
    for i, r in ipairs(new) do rows[i] = { vector = r.vector } end
    db:insert(rows)
    db:delete(db.Record.idx:eq(3))
    assert.are.equal(N, db.index.ntotal)
    assert.are.equal(5, db:sync_index_to_db())
    -- the new records in, the deleted one out, the old lists file gone
    assert.are.equal(N + 5 - 1, db.index.ntotal)
    local now = lists_files(file)
    assert.are.equal(1, #now)
    assert.are_not.equal(first, now[1])
    assert.are.equal((N + 4) * (D + 8), size_of(now[1]))
    -- a handle still mapping the old generation searches on (the mapping
    -- keeps the removed file), then maps the new one when it lacks records
    assert.are.equal(N + 2, reader:search(new[3].vector, 1, "idx")[1].neighbors[1].idx)
    db:insert({ { vector = H.records(1, D, 557)[1].vector } })
    assert.are.equal(N + 5, reader:search(H.records(1, D, 557)[1].vector, 1, "idx")[1].neighbors[1].idx)
    assert.are.equal(N + 4, reader.index.ntotal)
    -- nothing missing, nothing deleted: nothing written
    db:delete(db.Record.idx:eq(N + 5))
    assert.are.equal(0, db:rebuild_index())
    assert.are.equal(now[1], lists_files(file)[1])
    -- the pair moves together
    local moved = H.path("moved")
    assert(os.execute("mkdir -p " .. H.sh_quote(moved) .. " && mv " .. H.sh_quote(file) .. " "
      .. H.sh_quote(now[1]) .. " " .. H.sh_quote(moved)))
    reader:close()
    db:close()
    local mfile = moved .. "/" .. file:match("[^/]+$")
    local again = vekterdb.new(db.table_name, { url = url, faiss_index = mfile })
    assert.is_true(again.index.on_disk)
    assert.are.equal(N + 2, again:search(new[3].vector, 1, "idx")[1].neighbors[1].idx)
    -- and through a saved configuration
    local config = again:save(H.path("ondisk.json"))
    again:close()
    local loaded = vekterdb.load(config, url)
    assert.is_true(loaded.index.on_disk)
    assert.are.equal(N + 2, loaded:search(new[3].vector, 1, "idx")[1].neighbors[1].idx)
    loaded:close()
  end)

  it("keeps every process's searches whole while others insert, delete and write generations", function()
    local db, url = build()
    local file = H.path("ondisk.index")
    db:create_index(file, "IVF32,SQ8", OPTS)
    local head = ([[
      local vekterdb = require "vekterdb"
      local H = require "spec.helper"
      local name, url, file = %q, %q, %q
      local t0 = os.time()
    ]]):format(db.table_name, url, file)
    local scripts = {
      -- a writer: new records (idx N + n from seed 1000 + 7919 n), and deletes of some
      [[
        local db = vekterdb.new(name, { url = url })
        local n = 0
        while os.time() - t0 < 4 do
          db:insert({ { vector = H.records(1, $D, 1000 + 7919 * n)[1].vector } })
          n = n + 1
          if n % 5 == 0 then db:delete(db.Record.idx:eq($N + n - 3)) end
        end
        print("writer " .. n)
      ]],
      -- a process writing generation after generation
      [[
        local db = vekterdb.new(name, { url = url, faiss_index = file })
        local n = 0
        while os.time() - t0 < 4 do db:sync_index_to_db(); n = n + 1 end
        print("syncer " .. n)
      ]],
      -- a searcher: the newest record is found, a deleted one never
      [[
        local db = vekterdb.new(name, { url = url, faiss_index = file })
        local n, bad, checked = 0, 0, 0
        while os.time() - t0 < 4 do
          local newest = db:execute("SELECT MAX(idx) FROM " .. H.quote(name))[1][1]
          -- (deleted meanwhile: the writer deletes its records 3 back)
          local rec = db:fetch({ newest }, "vector")[1]
          local got = rec and db:search(rec.vector, 1, "idx", { search_parameters = "nprobe=32" })[1].neighbors[1]
          if rec and got.idx ~= newest and db:fetch({ newest }, "idx")[1] then
            bad = bad + 1
            print("newest " .. newest .. " not found: " .. got.idx)
          end
          -- (the tombstone table comes with the first delete)
          local ok, deleted = pcall(db.execute, db, "SELECT idx FROM " .. H.quote(name .. "__vekterdb_deleted"))
          if not ok then deleted = {} end
          for _, r in ipairs(deleted) do
            local v = H.records(1, $D, 1000 + 7919 * (r[1] - $N))[1].vector
            local opts = { search_parameters = "nprobe=32" }
            if r[1] >= $N and db:search(v, 1, "idx", opts)[1].neighbors[1].idx == r[1] then
              bad = bad + 1
              print("deleted " .. r[1] .. " found")
            end
          end
          n = n + 1
          checked = checked + #deleted
        end
        print("searcher " .. n .. " bad " .. bad .. " " .. tostring(db.index.on_disk) .. " " .. checked)
      ]],
    }
    local cmd = {}
    for i, code in ipairs(scripts) do
      local script = H.path("proc" .. i .. ".lua")
      local f = assert(io.open(script, "w"))
      f:write(("package.path = %q\n"):format(package.path))
      if _VERSION == "Lua 5.4" and not os.getenv("LUA_CPATH_5_4") then
        f:write(("package.cpath = %q\n"):format(package.cpath))
      end
      f:write(head, (code:gsub("%$([DN])", { D = D, N = N })))
      f:close()
      cmd[#cmd + 1] = LUA .. " " .. H.sh_quote(script) .. " 2>&1 &"
    end
    local out = H.sh("{ " .. table.concat(cmd, " ") .. " wait; }")
    local writes = tonumber(out:match("writer (%d+)"))
    local syncs = tonumber(out:match("syncer (%d+)"))
    local searches, bad, checked = out:match("searcher (%d+) bad (%d+) true (%d+)")
    assert(writes and syncs and searches, out)
    assert.is_true(writes > 5 and syncs > 0 and tonumber(searches) > 0 and tonumber(checked) > 0, out)
    assert.are.equal("0", bad, out)
    -- one lists file left: the newest generation's
    assert.are.equal(1, #lists_files(file), out)
    db:close()
  end)

  it("refuses on_disk for an index without inverted lists, with code invalid", function()
    local db = build(nil, 300, 8)
    for _, factory in ipairs({ "Flat", "HNSW8", "PQ4" }) do
      local file = H.path("refused.index")
      local ok, err = pcall(db.create_index, db, file, factory, { on_disk = true })
      assert.is_false(ok)
      assert.are.equal("invalid", err.code, tostring(err))
      assert.matches("on_disk needs an IVF index", tostring(err), 1, true)
      assert.is_nil(db.index)
      assert.is_nil(size_of(file))
    end
    db:close()
  end)

  it("refuses a lists file that is not the one saved with the index file", function()
    local db, url = build()
    local file = H.path("ondisk.index")
    db:create_index(file, "IVF32,SQ8", OPTS)
    local lists = lists_files(file)[1]
    db:close()
    assert(os.execute("truncate -s 1000 " .. H.sh_quote(lists)))
    local err = H.error_of(vekterdb.new, db.table_name, { url = url, faiss_index = file })
    assert.matches("not the one saved with it", err, 1, true)
  end)
end)

-- resident memory: /proc/self/status of a new process (Linux)
describe("on-disk inverted lists' resident memory", function()
  local n, d = 200000, 128
  it("stays well under the lists' size when a new process opens and searches them", function()
    if H.backend ~= "sqlite" then return end   -- the same engine code on every backend
    local db, url = H.new({ file = true })
    -- 200,000 x 128 uniform bytes, from a .npy file
    local vio = require "vekterdb.io"
    local npy = H.path("x.npy")
    local hdr = ("{'descr': '|u1', 'fortran_order': False, 'shape': (%d, %d), }"):format(n, d)
    hdr = hdr .. (" "):rep(63 - (10 + #hdr) % 64) .. "\n"
    local f = assert(io.open(npy, "wb"))
    f:write("\x93NUMPY\1\0", string.char(#hdr % 256, math.floor(#hdr / 256)), hdr)   -- (LuaJIT: no string.pack)
    f:close()
    assert(os.execute(("head -c %d /dev/urandom >> %s"):format(n * d, H.sh_quote(npy))))
    db:insert_matrix(vio.read_npy(npy))
    os.remove(npy)
    local file = H.path("big.index")
    local code = [[
      local vekterdb = require "vekterdb"
      local function kb(key)
        for line in io.lines("/proc/self/status") do
          local v = line:match("^" .. key .. ":%%s+(%%d+)")
          if v then return tonumber(v) end
        end
      end
      local r0 = kb("VmRSS")
      local db = vekterdb.new(%q, { url = %q })
    ]]
    -- creating: from the start of the "add" phase (the peak reset there
    -- through /proc/self/clear_refs), batches of vectors, never the lists
    local out = child((code .. [[
      local h0, a0 = kb("VmHWM")
      db:create_index(%q, "IVF256,SQ8", { on_disk = true, sample_size = 20000, batch_size = 10000,
        metric = "l2", progress = function(_, _, phase)
          if phase == "add" and not a0 then
            local f = assert(io.open("/proc/self/clear_refs", "w"))
            f:write("5")
            f:close()
            a0 = kb("VmRSS")
          end
        end })
      print(("create %%d %%d %%d %%d"):format(r0, h0, a0, kb("VmHWM")))
    ]]):format(db.table_name, url, file))
    local r0, _, a0, hwm = out:match("create (%d+) (%d+) (%d+) (%d+)")
    assert(r0, out)
    local lists = lists_files(file)[1]
    local bytes = size_of(lists)
    assert.are.equal(n * (d + 8), bytes)
    local lists_kb = bytes / 1024
    -- (under AddressSanitizer every allocation carries shadow memory: the
    -- figures mean nothing there, the rest of the test still runs)
    local measured = os.getenv("ASAN_OPTIONS") == nil
    if measured then assert.is_true(hwm - a0 < lists_kb / 2, out) end
    -- opening and searching: the quantizer, a few lists, the table's pages
    out = child((code .. [[
      db:close()
      db = vekterdb.new(db.table_name, { url = %q, faiss_index = %q })
      local r1 = kb("VmRSS")
      local q = db:fetch({ 1, 5000, 100000 }, "vector")
      for i = 1, #q do db:search(q[i].vector, 10, "idx", { search_parameters = "nprobe=4" }) end
      print(("search %%s %%d %%d %%d %%d"):format(tostring(db.index.on_disk), r0, r1, kb("VmRSS"), kb("VmHWM")))
    ]]):format(db.table_name, url, url, file))
    local on, s0, s1, s2, shwm = out:match("search (%S+) (%d+) (%d+) (%d+) (%d+)")
    assert(on, out)
    assert.are.equal("true", on)
    print(("\n    on-disk lists %.1f MB; create_index: peak +%.1f MB over the process before, "
      .. "+%.1f MB while adding; a new process: +%.1f MB after opening, +%.1f MB after 3 searches, "
      .. "peak +%.1f MB"):format(lists_kb / 1024, (hwm - r0) / 1024, (hwm - a0) / 1024,
      (s1 - s0) / 1024, (s2 - s0) / 1024, (shwm - s0) / 1024))
    if measured then assert.is_true(shwm - s0 < lists_kb / 3, out) end
    db:close()
  end)
end)
