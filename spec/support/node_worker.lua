-- One process of spec/nodes_stress_spec.lua (search nodes following one
-- PostgreSQL table):
--   lua5.4 spec/support/node_worker.lua writer <url> <table> <index_file> <dir> <deadline>
--   lua5.4 spec/support/node_worker.lua node <n> <url> <table> <dir> <deadline> <restart_s>
-- The writer inserts records "w-<n>" one small batch at a time, deletes some
-- older ones and rebuilds (a new index generation in the database), and logs
-- each acknowledged call after it returned: "ack <id> <monotonic time of the
-- call> <of its return>", "del <id>".  A node follows the table from the URL alone (no index file
-- given), waits for changes, and searches every record the log acknowledged
-- (and the next ids the writer will use, so that it sees a record before the
-- writer's log line); it writes when it first found each record, and
-- counts every deleted record a search returned.  Node 2 restarts (a new
-- vekterdb.follow, downloading the newest generation) every restart_s
-- seconds, while the writer rebuilds and saves.
local vekterdb = require "vekterdb"
local core = require "vekterdb.core"
local S = require "spec.support.stress_common"

local now = core.monotime
local role = arg[1]
-- one FAISS thread per process: four processes share the machine's cores
vekterdb.set_num_threads(1)

local function sleep(s) os.execute(("sleep %.3f"):format(s)) end

if role == "writer" then
  local url, name, index_file, dir, deadline = arg[2], arg[3], arg[4], arg[5], tonumber(arg[6])
  local db = vekterdb.new(name, { url = url, faiss_index = index_file })
  local log = assert(io.open(dir .. "/writer.log", "ab"))
  local counts = { batches = 0, records = 0, deletes = 0, rebuilds = 0, failed = 0 }
  local messages = {}
  local n, live, it = 0, {}, 0
  while os.time() < deadline do
    it = it + 1
    local batch = {}
    for _ = 1, 1 + it % 3 do
      n = n + 1
      local id = "w-" .. n
      batch[#batch + 1] = { id = id, vector = S.vector_of(id) }
    end
    local t0 = now()
    local ok, err = pcall(db.insert, db, batch)
    local t = now()
    if ok then
      counts.batches = counts.batches + 1
      for _, r in ipairs(batch) do
        log:write(("ack %s %.6f %.6f\n"):format(r.id, t0, t))
        live[#live + 1] = r.id
        counts.records = counts.records + 1
      end
      log:flush()
    else
      counts.failed = counts.failed + 1
      messages[#messages + 1] = "insert: " .. tostring(err)
    end
    if it % 4 == 0 and #live > 20 then
      -- an older record (nodes have found it by now, most likely)
      local id = table.remove(live, 1 + (it * 13) % 10)
      local dok, derr = pcall(db.delete, db, db.Record.id:eq(id))
      if dok and derr == 1 then
        counts.deletes = counts.deletes + 1
        log:write(("del %s\n"):format(id))
        log:flush()
      else
        counts.failed = counts.failed + 1
        messages[#messages + 1] = "delete: " .. tostring(derr)
      end
    end
    if it % 10 == 0 then
      -- a new generation (kept in the database) while nodes may be downloading
      local rok, rerr = pcall(db.rebuild_index, db)
      if rok then counts.rebuilds = counts.rebuilds + 1 else
        counts.failed = counts.failed + 1
        messages[#messages + 1] = "rebuild: " .. tostring(rerr)
      end
    end
    sleep(0.03)
  end
  log:close()
  db:close()
  S.write_result(dir .. "/writer.result", counts, messages)
  return
end

assert(role == "node", "role: writer or node")
local num, url, name, dir, deadline, restart = tonumber(arg[2]), arg[3], arg[4], arg[5], tonumber(arg[6]),
  tonumber(arg[7])
local cache = ("%s/cache%d"):format(dir, num)
local counts = { searches = 0, deleted_returned = 0, failed = 0, restarts = 0, found = 0 }
local messages = {}
local function open()
  return vekterdb.follow(url, name, { cache_dir = cache })
end
local node = open()
local opened = now()

local ack_time, acked, deleted, found_at = {}, {}, {}, {}
local maxn = 0
local pos = 0
local function poll_log()
  local f = io.open(dir .. "/writer.log", "rb")
  if not f then return end
  f:seek("set", pos)
  local data = f:read("*a") or ""
  f:close()
  local consumed = 0
  for line, stop in data:gmatch("([^\n]*)\n()") do
    local id, t0, t1 = line:match("^ack (%S+) (%S+) (%S+)$")
    if id then
      ack_time[id] = { tonumber(t0), tonumber(t1) }
      acked[#acked + 1] = id
      maxn = math.max(maxn, tonumber(id:match("%d+")))
    else
      local d = line:match("^del (%S+)$")
      if d then deleted[d] = true end
    end
    consumed = stop - 1
  end
  pos = pos + consumed
end

local final_round = false
while true do
  local ok, err = pcall(node.wait_for_changes, node, 0.01)
  if not ok then
    counts.failed = counts.failed + 1
    messages[#messages + 1] = "wait_for_changes: " .. tostring(err)
  end
  poll_log()
  -- the ids to look for: acknowledged and not yet found, the next few
  -- the writer will use, and every deleted one (must not come back)
  local ids = {}
  for _, id in ipairs(acked) do
    if not found_at[id] and not deleted[id] then ids[#ids + 1] = id end
  end
  for i = maxn + 1, maxn + 3 do ids[#ids + 1] = "w-" .. i end
  local dels = {}
  for id in pairs(deleted) do dels[#dels + 1] = id end
  local nlive = #ids
  for _, id in ipairs(dels) do ids[#ids + 1] = id end
  local queries = {}
  for i, id in ipairs(ids) do queries[i] = S.vector_of(id) end
  local sok, res = pcall(node.search, node, queries, 1, "id", { search_parameters = "nprobe=4" })
  local t = now()
  if not sok then
    counts.failed = counts.failed + 1
    messages[#messages + 1] = "search: " .. tostring(res)
  else
    counts.searches = counts.searches + 1
    for i, id in ipairs(ids) do
      local top = res[i].neighbors[1]
      local hit = top and top.id == id and top.metric < 1e-5
      if i <= nlive then
        if hit and not found_at[id] then found_at[id] = t end
      elseif top and top.id == id then
        counts.deleted_returned = counts.deleted_returned + 1
        messages[#messages + 1] = "deleted record " .. id .. " returned"
      end
    end
  end
  if final_round then break end
  if os.time() >= deadline then
    -- the writer has stopped: one last look at everything it acknowledged
    sleep(1.5)
    final_round = true
  elseif restart and now() - opened > restart then
    node:close()
    local rok, n2 = pcall(open)
    if rok then node = n2 else
      counts.failed = counts.failed + 1
      messages[#messages + 1] = "follow: " .. tostring(n2)
      node = open()
    end
    opened = now()
    counts.restarts = counts.restarts + 1
  end
end
node:close()

-- "seen <id> <seconds from the writer's insert call> <from its return>" per
-- found record: the commit happened in between (the insert also saves the
-- index after it), so the first is an upper bound of commit to node
local out = assert(io.open(("%s/node%d.seen"):format(dir, num), "wb"))
for _, id in ipairs(acked) do
  if found_at[id] then
    counts.found = counts.found + 1
    out:write(("seen %s %.6f %.6f\n"):format(id, found_at[id] - ack_time[id][1], found_at[id] - ack_time[id][2]))
  elseif not deleted[id] then
    out:write(("missing %s\n"):format(id))
  end
end
out:close()
S.write_result(("%s/node%d.result"):format(dir, num), counts, messages)
