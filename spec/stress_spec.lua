-- Many processes on one table at once: 3 writers inserting batches (the
-- engine assigns idx), a deleter, a maintainer (rebuild_index and
-- sync_index_to_db over and over) and 2 searchers, each a separate lua5.4
-- process with its own handle on the same table and the same index file
-- ("IVF4,Flat", searched with nprobe=4, so every answer is exact). Workers
-- log what was acknowledged, after the call returned; searchers check every
-- answer against the logs read before the search; at the end every
-- acknowledged record must be in the table once and be found, and no deleted
-- one may ever have come back.
--   VEKTERDB_STRESS_SECONDS   how long the workers run (default 20)
--   VEKTERDB_STRESS_PROFILE   "full" (default), or "writers": the 3 writers
--                             alone on a table without an index (checks the
--                             harness and the plain insert path)
--   VEKTERDB_STRESS_KEEP=1    keep the folder of logs and results
-- On PostgreSQL with VEKTERDB_TEST_BACKEND=postgresql, on a file SQLite
-- database (WAL) otherwise. Worker code: spec/support/stress_worker.lua.
local vekterdb = require "vekterdb"
local H = require "spec.helper"
local S = require "spec.support.stress_common"

local SECONDS = tonumber(os.getenv("VEKTERDB_STRESS_SECONDS") or "20")
local PROFILE = os.getenv("VEKTERDB_STRESS_PROFILE") or "full"
local KEEP = os.getenv("VEKTERDB_STRESS_KEEP") == "1"
local LUA = os.getenv("VEKTERDB_TEST_LUA") or "lua5.4"
local SEEDS = 300
local K = S.K

local sh_quote, sh, alive = H.sh_quote, H.sh, H.alive

local function tail(path, n)
  return sh(("tail -n %d %s 2>/dev/null"):format(n, sh_quote(path)))
end

describe("writers, a deleter, a maintainer and searchers in separate processes #stress #slow", function()
  it("keep every acknowledged record once, find it, and never return a deleted one", function()
    assert(PROFILE == "full" or PROFILE == "writers", "VEKTERDB_STRESS_PROFILE: full or writers")
    local with_index = PROFILE == "full"
    local dir = H.path("stress")
    assert(os.execute("mkdir -p " .. sh_quote(dir)))
    local pids = {}
    finally(function()
      -- every worker still running is killed, one by one, by its pid
      for _, w in ipairs(pids) do
        if alive(w.pid) then os.execute("kill -9 " .. w.pid .. " 2>/dev/null") end
      end
      if KEEP then
        print("stress: logs and results kept in " .. dir)
      else
        os.execute("rm -rf " .. sh_quote(dir))
      end
    end)

    local url = H.backend ~= "sqlite" and H.url()
      or ("sqlite:///" .. dir .. "/stress.db")
    local name = H.table_name("stress")
    local index_file = with_index and (dir .. "/stress.index") or "-"

    -- the table, its seed records (acknowledged like the writers' ones) and the index
    local db = vekterdb.new(name, {
      url = url,
      columns = {
        { name = "id", type = "text", index = true },       -- not unique: a doubled record shows
        { name = "deletable", type = "integer" },
      },
    })
    local seeds, seed_ids = {}, {}
    for i = 1, SEEDS do
      local id = "s-" .. i
      seeds[i] = { id = id, deletable = 0, vector = S.vector_of(id) }
      seed_ids[i] = id
    end
    assert.are.equal(SEEDS, db:insert(seeds))
    local seed_log = assert(io.open(dir .. "/seed.log", "wb"))
    S.append(seed_log, "ack", seed_ids)
    seed_log:close()
    if with_index then db:create_index(index_file, "IVF4,Flat", { metric = "l2" }) end
    -- PostgreSQL: every save (writers, syncs, rebuilds, all at once) also
    -- stores the file in the database, for the search node checked at the end
    local follows = with_index and H.backend == "postgresql"
    if follows then db:keep_index_in_database(2) end
    db:close()

    -- the workers
    local workers = { { "writer", 1 }, { "writer", 2 }, { "writer", 3 } }
    if with_index then
      for _, w in ipairs({ { "deleter", 1 }, { "maintainer", 1 }, { "searcher", 1 }, { "searcher", 2 } }) do
        workers[#workers + 1] = w
      end
    end
    local deadline = os.time() + SECONDS + 1
    for _, w in ipairs(workers) do
      local role, num = w[1], w[2]
      local stderr = ("%s/%s%d.stderr"):format(dir, role, num)
      local out = sh(("%s spec/support/stress_worker.lua %s %d %s %s %s %s %d >%s 2>&1 & echo $!"):format(
        LUA, role, num, sh_quote(url), sh_quote(name), sh_quote(index_file), sh_quote(dir), deadline,
        sh_quote(stderr)))
      pids[#pids + 1] = { pid = assert(tonumber(out:match("%d+")), out), role = role, num = num,
                          stderr = stderr, result = ("%s/%s%d.result"):format(dir, role, num) }
    end
    -- wait for them (a writer may be waiting on a lock when the time is up)
    local give_up = deadline + 90
    while os.time() < give_up do
      local any = false
      for _, w in ipairs(pids) do
        if alive(w.pid) then any = true end
      end
      if not any then break end
      sh("sleep 0.5")
    end
    local problems = {}
    for _, w in ipairs(pids) do
      if alive(w.pid) then
        problems[#problems + 1] = ("%s%d still running %ds after the deadline: killed"):format(w.role, w.num, 90)
        os.execute("kill -9 " .. w.pid .. " 2>/dev/null")
      end
    end

    -- the workers' counts
    local total, messages = {}, {}
    for _, kind in ipairs(S.FAILURES) do total[kind] = 0 end
    for _, w in ipairs(pids) do
      local counts, msgs = S.read_result(w.result)
      if not counts then
        problems[#problems + 1] = ("%s%d wrote no result; its stderr: %s"):format(w.role, w.num, tail(w.stderr, 5))
      else
        for k, v in pairs(counts) do total[k] = (total[k] or 0) + v end
        -- a few of each worker's messages, so that one busy worker does not hide the others
        for i = 1, math.min(#msgs, 4) do messages[#messages + 1] = msgs[i] end
      end
      local err = tail(w.stderr, 5)
      if err:find("%S") and not err:find("^%s*$") then
        messages[#messages + 1] = ("%s%d stderr: %s"):format(w.role, w.num, err:gsub("\n", " | "))
      end
    end

    -- what the logs say was acknowledged and deleted
    local order, deleted, unknown = {}, {}, {}
    local logs = { dir .. "/seed.log", dir .. "/deleted.log" }
    for n = 1, 3 do logs[#logs + 1] = ("%s/writer%d.log"):format(dir, n) end
    S.log_reader(logs, function(kind, ids)
      for _, id in ipairs(ids) do
        if kind == "ack" then
          order[#order + 1] = id
        elseif kind == "del" then
          deleted[id] = true
        elseif kind == "unknown" then
          unknown[id] = true
        end
      end
    end).poll()

    -- the final checks, from a fresh handle
    local final = {
      missing_from_table = 0, deleted_in_table = 0, doubled = 0,
      final_missing_from_search = 0, final_short_result = 0, final_deleted_returned = 0,
    }
    local function note(kind, msg)
      final[kind] = final[kind] + 1
      if final[kind] <= 5 then messages[#messages + 1] = "final " .. kind .. ": " .. msg end
    end
    local opts = { url = url }
    if with_index then opts.faiss_index = index_file end
    vekterdb.log.level = "error"     -- the index may lag behind the table
    local ok, check = pcall(vekterdb.new, name, opts)
    vekterdb.log.level = "warn"
    if not ok then
      problems[#problems + 1] = "the final handle did not open: " .. tostring(check)
    else
      local t = H.quote(name)
      local present = {}
      for _, row in ipairs(check:execute("SELECT id FROM " .. t)) do present[row[1]] = true end
      local doubled = check:execute("SELECT id, COUNT(*) FROM " .. t .. " GROUP BY id HAVING COUNT(*) > 1")
      for _, row in ipairs(doubled) do note("doubled", ("%s is in the table %s times"):format(row[1], tostring(row[2]))) end
      local live = {}
      for _, id in ipairs(order) do
        if deleted[id] then
          if present[id] then note("deleted_in_table", id .. " was deleted and is still in the table") end
        elseif not unknown[id] then
          if present[id] then live[#live + 1] = id else note("missing_from_table", "acknowledged record " .. id .. " is not in the table") end
        end
      end
      if with_index then
        -- every acknowledged live record's own vector, in blocks of queries
        local block = 256
        for first = 1, #live, block do
          local ids, queries = {}, {}
          for i = first, math.min(first + block - 1, #live) do
            ids[#ids + 1] = live[i]
            queries[#queries + 1] = S.vector_of(live[i])
          end
          local sok, res = pcall(check.search, check, queries, K, "id", { search_parameters = "nprobe=4" })
          if not sok then
            problems[#problems + 1] = "the final search raised: " .. tostring(res)
            break
          end
          for i, id in ipairs(ids) do
            local nb = res[i].neighbors
            if #nb ~= math.min(K, #live) then note("final_short_result", ("%s: %d neighbors"):format(id, #nb)) end
            local top = nb[1]
            if not top or top.id ~= id or top.metric > 1e-5 then
              note("final_missing_from_search", ("acknowledged record %s missing from search (top hit %s)")
                :format(id, top and tostring(top.id) or "none"))
            end
            for _, n in ipairs(nb) do
              if deleted[n.id] then note("final_deleted_returned", ("%s returned for %s"):format(n.id, id)) end
            end
          end
        end
      end
      check:close()
      if follows then
        -- a search node from the URL alone finds the same records
        local nok, node = pcall(vekterdb.follow, url, name, { cache_dir = dir .. "/node-cache" })
        if not nok then
          problems[#problems + 1] = "the search node did not start: " .. tostring(node)
        else
          for i = 1, #live, math.max(1, math.floor(#live / 200)) do
            local res = node:search(S.vector_of(live[i]), 1, "id", { search_parameters = "nprobe=4" })
            local top = res[1].neighbors[1]
            if not top or top.id ~= live[i] then
              note("final_missing_from_search", "the search node lacks " .. live[i])
            end
          end
          node:close()
        end
      end
    end

    -- one line of figures
    local function c(k) return total[k] or 0 end
    print(("\nstress %s %s %ds: batches=%d records=%d failed_batches=%d deletes=%d deleted=%d failed_deletes=%d "
      .. "rebuilds=%d syncs=%d failed_maintenance=%d searches=%d nearest_neighbors=%d failed_searches=%d "
      .. "failed_opens=%d missing_from_search=%d short_results=%d deleted_returned=%d | final: "
      .. "missing_from_table=%d doubled=%d deleted_in_table=%d missing_from_search=%d short=%d deleted_returned=%d")
      :format(H.backend, PROFILE, SECONDS, c("batches"), c("records"), c("failed_batch"), c("deletes"),
        c("deleted_records"), c("failed_delete"), c("rebuilds"), c("syncs"), c("failed_maintenance"),
        c("searches"), c("nearest_neighbors"), c("failed_search"), c("failed_open"), c("missing_from_search"),
        c("short_result"), c("deleted_returned"), final.missing_from_table, final.doubled, final.deleted_in_table,
        final.final_missing_from_search, final.final_short_result, final.final_deleted_returned))

    -- the verdict: no failure of any kind, and enough work that it means something
    local function detail()
      local out = {}
      for i = 1, math.min(#problems, 10) do out[#out + 1] = problems[i] end
      for i = 1, math.min(#messages, 30) do out[#out + 1] = messages[i] end
      return table.concat(out, "\n  ")
    end
    local bad = {}
    for _, kind in ipairs(S.FAILURES) do
      if c(kind) > 0 then bad[#bad + 1] = ("%s=%d"):format(kind, c(kind)) end
    end
    for _, kind in ipairs({ "missing_from_table", "doubled", "deleted_in_table", "final_missing_from_search",
                            "final_short_result", "final_deleted_returned" }) do
      if final[kind] > 0 then bad[#bad + 1] = ("%s=%d"):format(kind, final[kind]) end
    end
    if #problems > 0 then bad[#bad + 1] = ("problems=%d"):format(#problems) end
    assert(#bad == 0, "failures: " .. table.concat(bad, " ") .. "\n  " .. detail())
    -- not vacuous: about one batch a second per writer at the very least
    local min_batches = math.max(10, SECONDS)
    assert(c("batches") >= min_batches, ("only %d batches were inserted (expected >= %d)"):format(c("batches"), min_batches))
    if with_index then
      assert(c("deletes") >= 5, ("only %d deletes"):format(c("deletes")))
      assert(c("rebuilds") >= 3, ("only %d rebuilds"):format(c("rebuilds")))
      assert(c("syncs") >= 3, ("only %d syncs"):format(c("syncs")))
      assert(c("searches") >= 10 * SECONDS, ("only %d searches"):format(c("searches")))
      assert(c("nearest_neighbors") >= SECONDS, ("only %d nearest_neighbors calls"):format(c("nearest_neighbors")))
    end
  end)
end)
