-- Search nodes following one PostgreSQL table (README "Search nodes"): a
-- writer process inserts, deletes and rebuilds (each rebuild a new index
-- generation kept in the database); two node processes start from the URL
-- alone (vekterdb.follow, no index file given) and search every record the
-- writer acknowledged; node 2 restarts every few seconds, downloading the
-- newest generation while the writer saves newer ones.  Every acknowledged
-- record must become searchable on both nodes, no deleted record may ever be
-- returned after its delete was acknowledged, and the time from the
-- writer's insert call (its commit comes before it returns) to each node
-- finding a record is reported.
--   VEKTERDB_NODES_SECONDS   how long the writer runs (default 15)
-- Worker code: spec/support/node_worker.lua.
local vekterdb = require "vekterdb"
local H = require "spec.helper"
local S = require "spec.support.stress_common"

if H.backend ~= "postgresql" then
  describe("search nodes following one table #stress", function()
    pending("runs only in the postgresql run (VEKTERDB_TEST_BACKEND=postgresql)")
  end)
  return
end

local SECONDS = tonumber(os.getenv("VEKTERDB_NODES_SECONDS") or "15")
local LUA = os.getenv("VEKTERDB_TEST_LUA") or "lua5.4"
local sh_quote, sh, alive = H.sh_quote, H.sh, H.alive

local function percentile(sorted, p)
  if #sorted == 0 then return 0 / 0 end
  return sorted[math.max(1, math.ceil(#sorted * p))]
end

describe("a writer and two search nodes in separate processes #stress", function()
  it("find every acknowledged record on both nodes, in bounded time, and never a deleted one", function()
    local dir = H.path("nodes")
    assert(os.execute("mkdir -p " .. sh_quote(dir)))
    local pids = {}
    finally(function()
      for _, p in ipairs(pids) do
        if alive(p.pid) then os.execute("kill -9 " .. p.pid .. " 2>/dev/null") end
      end
      os.execute("rm -rf " .. sh_quote(dir))
    end)
    local url, name = H.url(), H.table_name("nodes")
    local index_file = dir .. "/writer.index"
    local db = vekterdb.new(name, { url = url, columns = { { name = "id", type = "text", index = true } } })
    local seeds = {}
    for i = 1, 200 do seeds[i] = { id = "s-" .. i, vector = S.vector_of("s-" .. i) } end
    db:insert(seeds)
    db:create_index(index_file, "IVF4,Flat", { metric = "l2" })
    db:keep_index_in_database(2)
    db:close()

    local deadline = os.time() + SECONDS + 2
    local function spawn(label, args)
      local out = sh(("%s spec/support/node_worker.lua %s >%s 2>&1 & echo $!"):format(LUA, args,
        sh_quote(dir .. "/" .. label .. ".stderr")))
      pids[#pids + 1] = { pid = assert(tonumber(out:match("%d+")), out), label = label }
    end
    -- the nodes first: they follow from the URL and wait for the writer
    spawn("node1", ("node 1 %s %s %s %d"):format(sh_quote(url), sh_quote(name), sh_quote(dir), deadline))
    spawn("node2", ("node 2 %s %s %s %d 3"):format(sh_quote(url), sh_quote(name), sh_quote(dir), deadline))
    spawn("writer", ("writer %s %s %s %s %d"):format(sh_quote(url), sh_quote(name), sh_quote(index_file),
      sh_quote(dir), deadline))
    local give_up = deadline + 60
    while os.time() < give_up do
      local any = false
      for _, p in ipairs(pids) do if alive(p.pid) then any = true end end
      if not any then break end
      sh("sleep 0.5")
    end
    for _, p in ipairs(pids) do
      assert(not alive(p.pid), p.label .. " still running a minute after the deadline")
    end

    local function result(label)
      local counts, msgs = S.read_result(dir .. "/" .. label .. ".result")
      assert(counts, label .. " wrote no result: " .. sh("tail -n 5 " .. sh_quote(dir .. "/" .. label .. ".stderr")))
      return counts, msgs
    end
    local w, wmsgs = result("writer")
    assert(w.failed == 0, "the writer failed: " .. table.concat(wmsgs, " | "))
    assert(w.batches >= SECONDS, "only " .. w.batches .. " batches")
    assert(w.deletes >= 5, "only " .. w.deletes .. " deletes")
    assert(w.rebuilds >= 3, "only " .. w.rebuilds .. " rebuilds")
    local lines = {}
    for n = 1, 2 do
      local c, msgs = result("node" .. n)
      assert(c.failed == 0, ("node%d failed: %s"):format(n, table.concat(msgs, " | ")))
      assert(c.deleted_returned == 0, ("node%d returned deleted records: %s"):format(n, table.concat(msgs, " | ")))
      local lat, missing, early = {}, {}, 0
      for line in io.lines(("%s/node%d.seen"):format(dir, n)) do
        local id, t, after_ack = line:match("^seen (%S+) (%S+) (%S+)$")
        if id then
          lat[#lat + 1] = math.max(0, tonumber(t))
          if tonumber(after_ack) < 0 then early = early + 1 end
        else
          missing[#missing + 1] = line:match("^missing (%S+)$")
        end
      end
      assert(#missing == 0, ("node%d never found %d acknowledged records: %s"):format(n, #missing,
        table.concat(missing, ",", 1, math.min(#missing, 10))))
      assert(#lat >= w.records - w.deletes, ("node%d found %d of %d records"):format(n, #lat, w.records))
      table.sort(lat)
      local max = lat[#lat]
      lines[#lines + 1] = ("node%d: %d records found, from the writer's insert call: median %.1f ms, "
        .. "p99 %.1f ms, max %.1f ms (%d found before the insert returned); %d searches, %d restarts")
        :format(n, #lat, 1000 * percentile(lat, 0.5), 1000 * percentile(lat, 0.99), 1000 * max, early,
        c.searches, c.restarts)
      -- bounded: a node hears of every commit (or falls back to the query)
      assert(max < 2, ("node%d took %.2f s to find a record"):format(n, max))
      if n == 2 then assert(c.restarts >= 2, "node 2 restarted only " .. c.restarts .. " times") end
    end
    print(("\nsearch nodes %ds: writer batches=%d records=%d deletes=%d rebuilds=%d\n  %s")
      :format(SECONDS, w.batches, w.records, w.deletes, w.rebuilds, table.concat(lines, "\n  ")))
  end)
end)
