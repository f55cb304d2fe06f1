-- A filter used again on an unchanged table reuses what the last call read
-- (its count, its matches' vectors, its ids as a selector), and any write by
-- any handle in between is seen by the next search (docs/filtered-search.md,
-- "Reusing a filter's evaluation").
local vekterdb = require "vekterdb"
local H = require "spec.helper"

local N, D = 6000, 8
-- MySQL has no cheap change stamp (engine/search_plan.c): every filter is
-- evaluated afresh there, so the plans stay "check"; the results must agree all the same
local REUSE = H.backend ~= "mysql"
local BROAD_PLAN = REUSE and "selector" or "check"

local function l2(a, b)
  local s = 0
  for j = 1, D do
    local x = a[j] - b[j]
    s = s + x * x
  end
  return s
end

describe("a filter used again", function()
  local db, url, name, file, vecs

  before_each(function()
    db, url = H.new({ file = true, columns = { { name = "bucket", type = "integer", index = true } } })
    name = db.table_name
    local r = H.rng(5)
    vecs = {}
    local i = -1
    db:insert(function()
      i = i + 1
      if i >= N then return nil end
      local v = r.vector(D)
      vecs[i] = v:totable()
      return { idx = i, vector = v, bucket = i % 100 }
    end, { batch_size = 3000 })
    file = H.path("reuse.index")
    os.remove(file)
    db:create_index(file, "Flat", { metric = "l2" })
  end)

  after_each(function()
    db:close()
    os.remove(file)
  end)

  -- the exact k nearest among the live records keep() accepts
  local function brute(q, k, keep, live)
    local all = {}
    for idx, v in pairs(live) do
      if keep(idx) then all[#all + 1] = { idx, l2(v, q) } end
    end
    table.sort(all, function(x, y) return x[2] < y[2] or (x[2] == y[2] and x[1] < y[1]) end)
    local out = {}
    for j = 1, math.min(k, #all) do out[j] = all[j][1] end
    return out
  end

  local function idxs(res)
    local out = {}
    for j, n in ipairs(res[1].neighbors) do out[j] = n.idx end
    return out
  end

  it("turns a broad filter to a selector once checking candidates cost as much as reading its ids", function()
    local f = db.Record.bucket:lt(50)
    local keep = function(i) return i % 100 < 50 end
    local r = H.rng(9)
    local plans = {}
    for q = 1, 30 do
      local qv = r.vector(D)
      local plan, res = db:explain_search(qv, 10, "idx", { filter = f })
      plans[q] = plan.plan
      assert.are.same(brute(qv:totable(), 10, keep, vecs), idxs(res))
    end
    assert.are.equal("check", plans[1])
    assert.are.equal(BROAD_PLAN, plans[30])
    -- the same filter written differently is another filter: checked again
    assert.are.equal("check", db:explain_search(r.vector(D), 10, { filter = db.Record.bucket:le(49) }).plan)
  end)

  it("sees another handle's update, delete and insert at the next search", function()
    local b = vekterdb.new(name, { url = url })
    local narrow, broad = db.Record.bucket:eq(7), db.Record.bucket:lt(50)
    local live = {}
    for i, v in pairs(vecs) do live[i] = v end
    local bucket = {}
    for i = 0, N - 1 do bucket[i] = i % 100 end
    local function check(q)
      for _, c in ipairs({ { narrow, function(i) return bucket[i] == 7 end },
                           { broad, function(i) return bucket[i] < 50 end } }) do
        local res = db:search(q, 10, "idx", { filter = c[1] })
        assert.are.same(brute(q, 10, c[2], live), idxs(res))
      end
    end
    -- what the two filters read is kept: the broad one turns to a selector
    local r = H.rng(10)
    for _ = 1, 30 do check(r.vector(D):totable()) end
    assert.are.equal(BROAD_PLAN, db:explain_search(vecs[0], 10, { filter = broad }).plan)

    -- B moves records 8 and 58 into the filters
    assert.are.equal(2, b:update(b.Record.idx:in_({ 8, 58 }), { bucket = 7 }))
    bucket[8], bucket[58] = 7, 7
    check(vecs[8])
    check(vecs[58])
    assert.are.equal(8, idxs(db:search(vecs[8], 1, "idx", { filter = narrow }))[1])
    assert.are.equal(58, idxs(db:search(vecs[58], 1, "idx", { filter = broad }))[1])
    -- the table changed: the broad filter is checked again, not taken from the cache
    assert.are.equal("check", db:explain_search(vecs[0], 10, { filter = db.Record.bucket:lt(50) }).plan)

    -- B deletes them again
    for _ = 1, 30 do check(r.vector(D):totable()) end
    assert.are.equal(2, b:delete(b.Record.idx:in_({ 8, 58 })))
    live[8], live[58] = nil, nil
    check(vecs[8])
    check(vecs[58])

    -- B inserts a record next to record 8, in both filters
    for _ = 1, 30 do check(r.vector(D):totable()) end
    local v = vekterdb.vector(D)
    for j = 1, D do v[j] = vecs[8][j] + 1e-3 end
    b:insert({ { idx = N, vector = v, bucket = 7 } })
    live[N], bucket[N] = v:totable(), 7
    check(vecs[8])
    assert.are.equal(N, idxs(db:search(vecs[8], 1, "idx", { filter = narrow }))[1])
    assert.are.equal(N, idxs(db:search(vecs[8], 1, "idx", { filter = broad }))[1])
    b:close()
  end)

  it("sees another process's update and delete at the next search", function()
    local narrow = db.Record.bucket:eq(7)
    local function top(q, f) return idxs(db:search(q, 1, "idx", { filter = f })) [1] end
    -- another process runs one change on the table
    local lua = os.getenv("VEKTERDB_TEST_LUA") or "lua5.4"
    local function other(code)
      local script = ('local v = require "vekterdb"; local b = v.new(%q, { url = %q }); %s; b:close()')
                       :format(name, url, code)
      local out = H.sh(lua .. " -e " .. H.sh_quote(script) .. " 2>&1; echo rc=$?")
      assert(out:find("rc=0", 1, true), out)
    end
    for _ = 1, 5 do assert.are_not.equal(8, top(vecs[8], narrow)) end
    other("b:update(b.Record.idx:eq(8), { bucket = 7 })")
    assert.are.equal(8, top(vecs[8], narrow))
    for _ = 1, 5 do assert.are.equal(8, top(vecs[8], narrow)) end
    other("b:delete(b.Record.idx:eq(8))")
    assert.are_not.equal(8, top(vecs[8], narrow))
    assert.are.equal(10, #db:search(vecs[8], 10, "idx", { filter = narrow })[1].neighbors)
  end)
end)
