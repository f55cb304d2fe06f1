--- Progress reporting for long operations (`insert`, `create_index`,
-- `train_index`, `sync_index_to_db`, the command-line tool).
--
-- `progress.new()` returns a `function(done, total, phase)` to pass as the
-- `progress` option. On a terminal it redraws one line per phase: a bar, the
-- percentage, the count, the rate and the time left. Anywhere else (a log
-- file, a pipe) it writes plain lines, one when a phase starts, then at most
-- one every `plain_interval` seconds, and one when it ends. The environment
-- variable `VEKTERDB_PROGRESS` (`bar`, `plain` or `off`) overrides the choice.
--
--     db:create_index("t.index", "IVF1000,PQ16", { progress = require("vekterdb.progress").new() })
-- @module vekterdb.progress

local core = require "vekterdb.core"

local M = {}

--- Seconds between two redraws of a bar.
M.bar_interval = 0.1
--- Seconds between two plain lines of the same phase.
M.plain_interval = 10

-- 1234567 -> "1,234,567"
local function count(n)
  local s = string.format("%d", math.floor(n + 0.5))
  local sign, digits = s:match("^(-?)(%d+)$")
  digits = digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return sign .. digits
end
M._count = count

-- records per second, short: "850/s", "12.3k/s", "1.25M/s"
local function rate(r)
  if r >= 1e6 then return string.format("%.2fM/s", r / 1e6) end
  if r >= 1e4 then return string.format("%.1fk/s", r / 1e3) end
  return string.format("%.0f/s", r)
end
M._rate = rate

-- seconds -> "0:07", "12:34", "1:02:03"
local function duration(s)
  if s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  local h, m = math.floor(s / 3600), math.floor((s % 3600) / 60)
  if h > 0 then return string.format("%d:%02d:%02d", h, m, s % 60) end
  return string.format("%d:%02d", m, s % 60)
end
M._duration = duration

-- the text of one report
local function line(phase, done, total, elapsed, width, with_bar)
  local r = elapsed > 0 and done / elapsed or 0
  local parts = { phase }
  if total and total > 0 then
    local frac = math.min(1, math.max(0, done / total))
    if with_bar then
      local full = math.floor(frac * width + 0.5)
      parts[#parts + 1] = "[" .. string.rep("#", full) .. string.rep(".", width - full) .. "]"
    end
    parts[#parts + 1] = string.format("%5.1f%%", frac * 100)
    parts[#parts + 1] = count(done) .. "/" .. count(total)
    parts[#parts + 1] = rate(r)
    if done >= total then
      parts[#parts + 1] = "in " .. duration(elapsed)
    elseif r > 0 then
      parts[#parts + 1] = "ETA " .. duration((total - done) / r)
    end
  else
    parts[#parts + 1] = count(done)
    parts[#parts + 1] = rate(r)
    parts[#parts + 1] = duration(elapsed) .. " elapsed"
  end
  return table.concat(parts, "  ")
end

--- A progress reporter.
-- @tparam[opt] table opts
--
--  * `stream`: where to write (io.stderr)
--  * `mode`: "bar", "plain" or "off" (default: `VEKTERDB_PROGRESS`, else
--    "bar" when the stream is a terminal and TERM is not "dumb", else "plain")
--  * `label`: text put before each phase, such as the command's name
--  * `width`: characters of the bar (30)
--  * `clock`: a function returning seconds (a monotonic clock)
-- @return `function(done, total, phase)`; total may be nil or 0 when unknown
function M.new(opts)
  opts = opts or {}
  local out = opts.stream or io.stderr
  local mode = opts.mode or os.getenv("VEKTERDB_PROGRESS")
  if mode ~= "bar" and mode ~= "plain" and mode ~= "off" then
    local ok, tty = pcall(core.isatty, out)
    mode = (ok and tty and os.getenv("TERM") ~= "dumb") and "bar" or "plain"
  end
  if mode == "off" then return function() end end
  local clock = opts.clock or core.monotime
  local width = opts.width or 30
  local bar = mode == "bar"
  local interval = bar and M.bar_interval or M.plain_interval
  local current, started, last, finished, open_line

  local function close_line()
    if open_line then
      out:write("\n")
      open_line = false
    end
  end

  return function(done, total, phase)
    phase = tostring(phase or "working")
    if opts.label then phase = opts.label .. " " .. phase end
    local now = clock()
    if phase ~= current then
      close_line()
      current, started, last, finished = phase, now, nil, false
    end
    if finished then return end
    local complete = total ~= nil and total > 0 and done >= total
    if total == 0 and done == 0 then   -- nothing to do: say so once
      out:write(bar and "\r" or "", phase, "  nothing to do", bar and "\27[K\n" or "\n")
      open_line, finished = false, true
      return
    end
    if not complete and last and now - last < interval then return end
    last = now
    local text = line(phase, done, total, now - started, width, bar)
    if bar then
      out:write("\r", text, "\27[K")
      open_line = true
      if complete then close_line() end
    else
      out:write(text, "\n")
    end
    if complete then finished = true end
    if out.flush then out:flush() end
  end
end

return M
