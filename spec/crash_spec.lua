-- Crash safety, proven by killing a writer with SIGKILL at random moments.
local vekterdb = require "vekterdb"
local H = require "spec.helper"

local KILLS = tonumber(os.getenv("VEKTERDB_CRASH_KILLS") or "50")
local LUA = os.getenv("VEKTERDB_TEST_LUA") or "lua5.4"

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a") or p:read("*a")
  p:close()
  return out
end

local function last_committed(progress)
  local n = 0
  local f = io.open(progress)
  if not f then return 0 end
  for line in f:lines() do
    local c = tonumber(line:match("^committed (%d+)$"))
    if c then n = c end
  end
  f:close()
  return n
end

describe("a writer killed with SIGKILL #slow", function()
  it("never loses a reported batch, never leaves a partial one, never tears the index file or loses its digest", function()
    local db, url = H.new({ file = true })
    local name = db.table_name
    db:insert({ { vector = { 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 } } })
    local index_file = H.path("crash.index")
    db:create_index(index_file, "Flat")
    db:close()
    local progress = H.path("progress.txt")
    local seed = H.rng(77)
    local committed_before = 1
    for kill = 1, KILLS do
      local pidfile = H.path("child.pid")
      os.execute(string.format("%s spec/support/crash_child.lua '%s' '%s' '%s' '%s' >/dev/null 2>&1 & echo $! > '%s'",
        LUA, url, name, index_file, progress, pidfile))
      local pid = assert(tonumber(io.open(pidfile):read("l")))
      -- the child needs ~50 ms to start; kill it anywhere from start-up to
      -- a few dozen batches in
      sh(string.format("sleep %.3f", 0.05 + 0.4 * seed.uniform()))
      os.execute("kill -9 " .. pid .. " 2>/dev/null")
      sh(string.format("while kill -0 %d 2>/dev/null; do sleep 0.01; done", pid))

      local reported = last_committed(progress)
      -- raises on a torn file, or one whose digest the table lost
      vekterdb.log.level = "error"   -- the index may lag behind: a warning is expected
      local check = vekterdb.new(name, { url = url, faiss_index = index_file })
      vekterdb.log.level = "warn"
      local ix = check.index
      local count = check:count()
      assert(count >= reported, ("kill %d: %d records reported committed, %d present"):format(kill, reported, count))
      assert((count - 1) % 50 == 0, ("kill %d: %d records is not a whole number of batches"):format(kill, count))
      assert(check.d == 16)
      assert(ix.ntotal <= count, ("kill %d: index holds %d vectors, table %d"):format(kill, ix.ntotal, count))
      assert(check._h:find_gap() == nil, "idx values stay consecutive")
      check:close()
      assert(count >= committed_before)
      committed_before = count
    end
    -- sync brings the index and the table back into agreement
    vekterdb.log.level = "error"   -- the index lags behind: a warning is expected here
    local final = vekterdb.new(name, { url = url, faiss_index = index_file })
    vekterdb.log.level = "warn"
    final:sync_index_to_db()
    assert.are.equal(final:count(), final.index.ntotal)
    assert.is_true(final:count() > 1)
    final:close()
  end)
end)

describe("WAL mode", function()
  it("lets readers in other processes read while a writer inserts", function()
    if H.backend ~= "sqlite" then
      pending("SQLite only")
      return
    end
    local db, url = H.new({ file = true })
    db:insert({ { vector = { 1, 2 } } })
    assert.are.equal("wal", db:execute("PRAGMA journal_mode")[1][1])
    local log = H.path("reader.log")
    -- a reader process counting in a loop, in the background
    os.execute(string.format([[%s -e 'local v = require "vekterdb"
      local out = io.open("%s", "w")
      for i = 1, 40 do
        local ok, r = pcall(v.new, "%s", { url = "%s" })
        if ok then out:write(r:count(), "\n"); r:close() else out:write("error ", tostring(r), "\n") end
        out:flush()
        os.execute("sleep 0.02")
      end
      out:write("done\n")' >/dev/null 2>&1 &]], LUA, log, db.table_name, url))
    local r = H.rng(4)
    for _ = 1, 15 do
      local recs = {}
      for i = 1, 2000 do recs[i] = { vector = { r.normal(), r.normal() } } end
      db:insert(recs, { batch_size = 2000 })
    end
    sh(string.format("for i in $(seq 100); do grep -q done '%s' 2>/dev/null && break; sleep 0.1; done", log))
    local last = 0
    local lines = 0
    for line in io.lines(log) do
      if line ~= "done" then
        local n = tonumber(line)
        assert(n, "the reader failed: " .. line)
        assert(n >= last and (n - 1) % 2000 == 0, "the reader saw " .. line)
        last = n
        lines = lines + 1
      end
    end
    assert.are.equal(40, lines)
    db:close()
  end)
end)
