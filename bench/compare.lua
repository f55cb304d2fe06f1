-- bench/compare.lua: two benchmark results side by side (two FAISS builds).
--   lua5.4 bench/compare.lua A.json B.json [out.md]
-- Prints the figures both runs have: VekterDB's time and its bound in each,
-- and how much faster B is than A.
local cjson = require "cjson"

local function load(path)
  local f = assert(io.open(path, "rb"), "cannot open " .. path)
  local r = cjson.decode(f:read("a"))
  f:close()
  return r
end

local a_path, b_path, out_path = arg[1], arg[2], arg[3]
if not a_path or not b_path then
  io.stderr:write("usage: lua5.4 bench/compare.lua A.json B.json [out.md]\n")
  os.exit(2)
end
local a, b = load(a_path), load(b_path)

local function by_name(r)
  local t = {}
  for _, f in ipairs(r.figures) do t[f.name] = f end
  return t
end
local fa, fb = by_name(a), by_name(b)

local lines = {}
local function p(fmt, ...) lines[#lines + 1] = string.format(fmt, ...) end
local function fmt(v, unit)
  if v == nil or v == cjson.null then return "-" end
  if unit == "records/s" then return string.format("%.0f/s", v) end
  if unit == "MB" then return string.format("%.1f MB", v) end
  return string.format("%.3f s", v)
end

p("%s FAISS (A) and %s FAISS (B): %d x %d, %d queries, %d cores", a.faiss_build, b.faiss_build,
  a.sizes.n, a.sizes.d, a.sizes.nq, a.machine.cores)
p("")
p("| %-44s | %11s | %11s | %11s | %11s | %7s |", "figure", "VekterDB A", "bound A", "VekterDB B",
  "bound B", "B vs A")
p("|%s|%s|%s|%s|%s|%s|", ("-"):rep(46), ("-"):rep(13), ("-"):rep(13), ("-"):rep(13), ("-"):rep(13),
  ("-"):rep(9))
for _, f in ipairs(a.figures) do
  local g = fb[f.name]
  if g and f.unit ~= "MB" then
    -- speed-up of VekterDB's figure: times divide, rates the other way
    local speed = f.unit == "records/s" and g.vekterdb / f.vekterdb or f.vekterdb / g.vekterdb
    p("| %-44s | %11s | %11s | %11s | %11s | %6.2fx |", f.name, fmt(f.vekterdb, f.unit),
      fmt(f.bound, f.unit), fmt(g.vekterdb, g.unit), fmt(g.bound, g.unit), speed)
  end
end
local rb = {}
for _, r in ipairs(b.search or {}) do rb[r.k .. "/" .. r.k_extra] = r end
if #(a.search or {}) > 0 then
  p("")
  p("| %-3s | %-7s | %9s | %9s | %9s | %9s | %7s | %7s |", "k", "k_extra", "q/s A", "FAISS A",
    "q/s B", "FAISS B", "R@1 A", "R@1 B")
  p("|%s|%s|%s|%s|%s|%s|%s|%s|", ("-"):rep(5), ("-"):rep(9), ("-"):rep(11), ("-"):rep(11),
    ("-"):rep(11), ("-"):rep(11), ("-"):rep(9), ("-"):rep(9))
  for _, r in ipairs(a.search) do
    local s = rb[r.k .. "/" .. r.k_extra]
    if s then
      p("| %-3d | %-7d | %9.0f | %9.0f | %9.0f | %9.0f | %7.4f | %7.4f |", r.k, r.k_extra, r.qps,
        r.faiss_qps, s.qps, s.faiss_qps, r.r1, s.r1)
    end
  end
end
local text = table.concat(lines, "\n")
print(text)
if out_path then
  local f = assert(io.open(out_path, "w"))
  f:write(text, "\n")
  f:close()
end
