-- vekterdb.progress: bar and plain reports, driven by a fake clock.
local progress = require "vekterdb.progress"

local function sink()
  local s = { text = "" }
  function s:write(...) for _, v in ipairs({ ... }) do self.text = self.text .. v end return self end
  return s
end

local function clock()
  local c = { t = 100 }
  return c, function() return c.t end
end

describe("vekterdb.progress", function()
  it("redraws one bar line per phase with percentage, rate and ETA", function()
    local out = sink()
    local c, now = clock()
    local p = progress.new({ stream = out, mode = "bar", clock = now, width = 10 })
    p(0, 1000, "add")
    c.t = 102
    p(500, 1000, "add")
    c.t = 102.01
    p(510, 1000, "add")          -- too soon after the last redraw: skipped
    c.t = 104
    p(1000, 1000, "add")
    local lines = {}
    for l in out.text:gmatch("\r([^\r]*)") do lines[#lines + 1] = l end
    assert.are.equal(3, #lines)
    assert.matches("^add  %[#####%.....%]   50%.0%%  500/1,000  250/s  ETA 0:02\27%[K$", lines[2])
    assert.matches("^add  %[##########%]  100%.0%%  1,000/1,000  250/s  in 0:04\27%[K\n$", lines[3])
  end)

  it("writes plain lines at the start, at most every plain_interval seconds, and at the end", function()
    local out = sink()
    local c, now = clock()
    local p = progress.new({ stream = out, mode = "plain", clock = now, label = "import" })
    p(0, 100, "insert")
    for i = 1, 99 do
      c.t = c.t + 0.5
      p(i, 100, "insert")
    end
    c.t = c.t + 0.5
    p(100, 100, "insert")
    p(100, 100, "insert")        -- already finished: nothing more
    local n = select(2, out.text:gsub("\n", ""))
    assert.are.equal(1 + 4 + 1, n)   -- start, every 10 s over 49.5 s, end
    assert.is_nil(out.text:find("\r", 1, true))
    assert.matches("import insert  100%.0%%  100/100  2/s  in 0:50\n$", out.text)
  end)

  it("shows a count, a rate and the time elapsed when the total is unknown", function()
    local out = sink()
    local c, now = clock()
    local p = progress.new({ stream = out, mode = "plain", clock = now })
    p(0, nil, "read")
    c.t = 120
    p(30000, nil, "read")
    assert.matches("read  30,000  1500/s  0:20 elapsed\n$", out.text)
  end)

  it("starts a new line for a new phase and stays silent when off", function()
    local out = sink()
    local c, now = clock()
    local p = progress.new({ stream = out, mode = "bar", clock = now })
    p(0, 10, "train")
    c.t = 101
    p(0, 10, "add")
    assert.matches("train.*\n\radd", out.text)
    local quiet = sink()
    progress.new({ stream = quiet, mode = "off" })(5, 10, "x")
    assert.are.equal("", quiet.text)
  end)

  it("formats counts, rates and durations", function()
    assert.are.equal("1,234,567", progress._count(1234567))
    assert.are.equal("999", progress._count(999))
    assert.are.equal("12.3k/s", progress._rate(12345))
    assert.are.equal("1.50M/s", progress._rate(1.5e6))
    assert.are.equal("1:02:03", progress._duration(3723))
    assert.are.equal("0:07", progress._duration(7))
  end)
end)

describe("the progress option of database operations", function()
  local H = require "spec.helper"

  local function recorder()
    local calls = {}
    return calls, function(done, total, phase) calls[#calls + 1] = { done, total, phase } end
  end

  it("insert reports after each committed batch, with the total of an array", function()
    local db = H.new()
    local calls, fn = recorder()
    assert.are.equal(25, db:insert(H.records(25, 4), { batch_size = 10, progress = fn }))
    assert.are.same({ { 10, 25, "insert" }, { 20, 25, "insert" }, { 25, 25, "insert" } }, calls)
    db:close()
  end)

  it("insert from an iterator reports a nil total, and nothing for no records", function()
    local db = H.new()
    local recs, i = H.records(5, 4), 0
    local calls, fn = recorder()
    db:insert(function() i = i + 1; return recs[i] end, { batch_size = 2, progress = fn })
    assert.are.same({ { 2, nil, "insert" }, { 4, nil, "insert" }, { 5, nil, "insert" } }, calls)
    local none, fn2 = recorder()
    assert.are.equal(0, db:insert({}, { progress = fn2 }))
    assert.are.same({}, none)
    db:close()
  end)

  it("progress = true uses vekterdb.progress; other values are refused", function()
    -- the same table as the module's: what the library requires
    local real, made = progress.new, 0
    local calls, fn = recorder()
    progress.new = function() made = made + 1; return fn end
    local db = H.new()
    local ok, err = pcall(function()
      db:insert(H.records(3, 4), { progress = true })
      db:create_index(H.path("p.index"), "Flat", { progress = true })
    end)
    progress.new = real
    assert(ok, err)
    assert.are.equal(2, made)   -- insert and the sync of create_index (Flat needs no training)
    assert.are.same({ 3, 3, "insert" }, calls[1])
    assert.matches("progress must be true, false or a function",
                   H.error_of(db.insert, db, H.records(1, 4), { progress = "yes" }))
    db:close()
  end)
end)
