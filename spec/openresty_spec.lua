-- The OpenResty example (examples/openresty) for real: a database and an IVF
-- index built here, Debian's nginx started on 127.0.0.1 with the example
-- configuration pointed at them, HTTP requests through curl, and every
-- answer compared with the same query run in this process (Lua 5.4).
-- #openresty: it needs nginx and the LuaJIT build, so make check runs it
-- (make test leaves it out).
local vekterdb = require "vekterdb"
local cjson = require "cjson"
local H = require "spec.helper"

local N, D = 3000, 16
local WORKERS = 2
local NGINX = "/usr/sbin/nginx"
local LUA_MODULE = "/usr/lib/nginx/modules/ngx_http_lua_module.so"
local BIG = 9007199254740992   -- 2^53: the largest integer both interpreters hold exactly

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- nginx, curl and the other tools run without the sanitizer pass's LD_PRELOAD
local NO_PRELOAD = "env -u LD_PRELOAD "

local function run(cmd)
  local ok = os.execute(NO_PRELOAD .. cmd .. " >/dev/null 2>&1")
  return ok == true or ok == 0
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- the LuaJIT build of vekterdb.core, beside the Lua 5.4 one in use
local function luajit_core()
  local env = os.getenv("VEKTERDB_LUAJIT_CORE")
  if env then return env end
  local so = package.searchpath("vekterdb.core", package.cpath)
  return so and (so:gsub("/lua5%.4/vekterdb/core%.so$", "/luajit/vekterdb/core.so"))
end

-- ports that something listens on (IPv4 and IPv6)
local function used_ports()
  local used = {}
  for _, f in ipairs({ "/proc/net/tcp", "/proc/net/tcp6" }) do
    for line in (read_file(f) or ""):gmatch("[^\n]+") do
      local port = line:match("^%s*%d+: [%x]+:(%x+) ")
      if port then used[tonumber(port, 16)] = true end
    end
  end
  return used
end

local function free_port()
  local used = used_ports()
  for _ = 1, 200 do
    local p = math.random(20000, 60000)
    if not used[p] then return p end
  end
  error("no free port found")
end

local function process_alive(pid)
  return pid and run("kill -0 " .. pid)
end

-- the example set up under prefix by its own generator
-- (examples/openresty/setup.lua, which `make openresty-example` runs) with
-- this test's data, port and worker count; --conf-only rewrites nginx.conf
local LUA = os.getenv("LUA") or "lua5.4"
local function setup_example(opts)
  local cmd = { NO_PRELOAD .. LUA, "examples/openresty/setup.lua", "--prefix", sh_quote(opts.prefix),
    "--config", sh_quote(opts.config), "--url", sh_quote(opts.url), "--listen", "127.0.0.1:" .. opts.port,
    "--workers", WORKERS, "--reload-interval", 1 }
  if opts.core then
    cmd[#cmd + 1] = "--core " .. sh_quote(opts.core)
  else
    cmd[#cmd + 1] = "--conf-only"
  end
  local log = opts.prefix .. ".setup.log"
  local ok = os.execute(table.concat(cmd, " ") .. " > " .. sh_quote(log) .. " 2>&1")
  assert(ok == true or ok == 0, "setup.lua failed: " .. (read_file(log) or ""))
  return read_file(log)
end

describe("the OpenResty example #openresty", function()
  local skip_reason
  if H.backend ~= "sqlite" then
    skip_reason = "the OpenResty example serves an SQLite file"
  elseif not exists(NGINX) or not exists(LUA_MODULE) then
    skip_reason = "nginx-light and libnginx-mod-http-lua are not installed (make deps installs them)"
  elseif not run("sh -c 'command -v curl'") then
    skip_reason = "curl is not installed (make deps installs it)"
  end
  if skip_reason then
    it("runs against a real nginx", function() pending(skip_reason) end)
    return
  end

  local dir, prefix, data, base, pid, db, config, index_file, rw_url
  local port

  -- one HTTP request through curl: status, body text, decoded body
  local function http(method, path, body, extra)
    local out = dir .. "/client/response"
    local cmd = { NO_PRELOAD .. "curl -s --max-time 30 -o", sh_quote(out), "-w '%{http_code}' -X", method }
    if body then
      write_file(dir .. "/client/request", body)
      cmd[#cmd + 1] = "-H 'Content-Type: application/json' --data-binary @" .. sh_quote(dir .. "/client/request")
    end
    if extra then cmd[#cmd + 1] = extra end
    cmd[#cmd + 1] = sh_quote(base .. path)
    os.remove(out)
    local p = assert(io.popen(table.concat(cmd, " ")))
    local code = p:read("a")
    p:close()
    local text = read_file(out) or ""
    local ok, decoded = pcall(cjson.decode, text)
    return tonumber(code), text, ok and decoded or nil
  end

  local function stop_nginx()
    if not process_alive(pid) then return end
    run("kill -QUIT " .. pid)
    for _ = 1, 100 do
      if not process_alive(pid) then return end
      run("sleep 0.1")
    end
    run("kill -KILL " .. pid)
  end

  local function start_nginx()
    for attempt = 1, 3 do
      port = free_port()
      base = "http://127.0.0.1:" .. port
      local conf = prefix .. "/nginx.conf"
      setup_example({ prefix = prefix, config = config, port = port,
                      url = "sqlite:///" .. data .. "/items.sqlite?mode=ro" })
      os.remove(prefix .. "/run/nginx.pid")
      -- the command setup.lua prints
      if run(NGINX .. " -p " .. sh_quote(prefix) .. " -c " .. sh_quote(conf)
             .. " -e " .. sh_quote(prefix .. "/run/error.log")) then
        for _ = 1, 50 do
          pid = tonumber(read_file(prefix .. "/run/nginx.pid") or "")
          if pid then break end
          run("sleep 0.1")
        end
        -- each worker opens the database and the index: wait until one answers
        for _ = 1, 300 do
          local code = http("GET", "/health")
          if code == 200 then return end
          run("sleep 0.1")
        end
        stop_nginx()
      end
      local log = read_file(prefix .. "/run/error.log") or ""
      if not log:find("Address already in use", 1, true) or attempt == 3 then
        error("nginx did not start; error.log:\n" .. log)
      end
    end
  end

  local function records(n)
    local r = H.rng(77)
    local out = {}
    for i = 0, n - 1 do
      out[#out + 1] = { idx = i, vector = r.vector(D), id = "id" .. i,
                        category = ({ "red", "green", "blue" })[i % 3 + 1],
                        weight = i / 7, big = BIG - i }
    end
    return out
  end

  setup(function()
    local p = assert(io.popen("mktemp -d"))
    dir = p:read("l")
    p:close()
    assert(dir and dir ~= "", "mktemp -d failed")
    prefix, data = dir .. "/nginx", dir .. "/data"
    assert(run("mkdir -p " .. sh_quote(data) .. " " .. sh_quote(dir .. "/client")))
    config = data .. "/items.json"

    -- the code nginx loads: the LuaJIT build and the Lua files, copied by
    -- the example's setup, so that the workers' user can read them wherever
    -- the checkout lives (start_nginx rewrites only nginx.conf)
    local core = luajit_core()
    assert(core and exists(core), "the LuaJIT build of vekterdb.core is missing (" .. tostring(core)
      .. "): run `make luajit`")
    local out = setup_example({ prefix = prefix, core = core, config = config, port = free_port(),
                                url = "sqlite:///" .. data .. "/items.sqlite?mode=ro" })
    assert.truthy(out:find("nginx -p " .. prefix, 1, true), out)
    assert(exists(prefix .. "/lib/vekterdb/core.so") and exists(prefix .. "/lua/vekterdb_http.lua")
      and exists(prefix .. "/lua/vekterdb/where.lua"), "setup.lua did not copy the code")

    -- the data: an SQLite file, an IVF index with saved runtime parameters
    rw_url = "sqlite:///" .. data .. "/items.sqlite"
    local w = vekterdb.new("items", { url = rw_url, columns = {
      { name = "id", type = "text", unique = true, nullable = false },
      { name = "category", type = "text" },
      { name = "weight", type = "real" },
      { name = "big", type = "integer" },
    } })
    w:insert(records(N))
    index_file = data .. "/items.index"
    w:create_index(index_file, "IVF32,Flat")
    w:set_faiss_runtime_parameters("nprobe=6")
    w:save(config)
    w:close()

    -- workers run as www-data (the example's `user`) when nginx starts as root
    local id = io.popen("id -u")
    local uid = id:read("l")
    id:close()
    if uid == "0" then assert(run("chown -R www-data: " .. sh_quote(dir))) end
    assert(run("chmod 755 " .. sh_quote(dir)))

    local ok, err = pcall(start_nginx)
    if not ok then
      stop_nginx()
      error(err, 0)
    end
    db = vekterdb.load(config, "sqlite:///" .. data .. "/items.sqlite?mode=ro")
  end)

  teardown(function()
    stop_nginx()
    if db then db:close() end
    if dir and os.getenv("VEKTERDB_KEEP_TMP") == nil then run("rm -rf " .. sh_quote(dir)) end
  end)

  local COLS = { "idx", "id", "category", "weight", "big" }

  local function same_neighbors(expected, got)
    assert.are.equal(#expected, #got)
    for j, e in ipairs(expected) do
      for _, c in ipairs(COLS) do
        assert.are.equal(e[c], got[j][c], "neighbor " .. j .. " column " .. c)
      end
      assert.are.equal(e.metric, got[j].metric, "neighbor " .. j .. " metric")
    end
  end

  local function query(seed)
    local v = H.rng(seed).vector(D)
    return v, v:totable()
  end

  it("reports its table, index and settings on /health", function()
    local code, _, body = http("GET", "/health")
    assert.are.equal(200, code)
    assert.are.equal("ok", body.status)
    assert.are.equal("items", body.table)
    assert.are.equal(N, body.records)
    assert.are.equal(N, body.ntotal)
    assert.are.equal(D, body.d)
    assert.are.equal(1, body.threads)
    assert.is_true(body.mmap)
  end)

  it("answers POST /search as db:search does in-process", function()
    for seed = 1, 8 do
      local v, t = query(seed)
      local expected = db:search(v, 10, "idx", "id", "category", "weight", "big",
                                 { k_extra_neighbors = 4 })[1].neighbors
      local code, text, body = http("POST", "/search", cjson.encode({
        vector = t, k = 10, columns = COLS, k_extra_neighbors = 4 }))
      assert.are.equal(200, code, text)
      same_neighbors(expected, body.neighbors)
    end
  end)

  it("answers a batch of vectors, in order, with the default columns", function()
    local vs, ts = {}, {}
    for i = 1, 5 do vs[i], ts[i] = query(100 + i) end
    local expected = db:search(vs, 3, "idx", "id", "category", "weight", "big")
    local code, text, body = http("POST", "/search", cjson.encode({ vectors = ts, k = 3 }))
    assert.are.equal(200, code, text)
    assert.are.equal(5, #body.results)
    for i = 1, 5 do same_neighbors(expected[i].neighbors, body.results[i].neighbors) end
    -- the default columns are every column but the vector
    assert.is_nil(body.results[1].neighbors[1].vector)
  end)

  it("returns a requested vector column as an array of its float32 values", function()
    local v, t = query(7)
    local expected = db:search(v, 2, "idx", "vector")[1].neighbors
    local code, _, body = http("POST", "/search", cjson.encode({ vector = t, k = 2, columns = { "idx", "vector" } }))
    assert.are.equal(200, code)
    assert.are.same(expected[1].vector:totable(), body.neighbors[1].vector)
  end)

  it("answers GET /neighbors as db:nearest_neighbors does in-process", function()
    local expected = db:nearest_neighbors("id", { "id5", "id2999", "id1000" }, 7, "idx", "id", "category",
                                          "weight", "big")
    local code, text, body = http("GET", "/neighbors?column=id&value=id5&value=id2999&value=id1000&k=7")
    assert.are.equal(200, code, text)
    assert.are.equal(3, #body.results)
    for i, r in ipairs(expected) do
      assert.are.equal(r.id, body.results[i].id)
      same_neighbors(r.neighbors, body.results[i].neighbors)
    end
    local by_idx = db:nearest_neighbors("idx", { 42 }, 5, "idx", "big", { k_extra_neighbors = 10 })
    code, text, body = http("GET", "/neighbors?column=idx&value=42&k=5&columns=idx,big&k_extra_neighbors=10")
    assert.are.equal(200, code, text)
    assert.are.equal(42, body.results[1].idx)
    for j, e in ipairs(by_idx[1].neighbors) do
      assert.are.equal(e.idx, body.results[1].neighbors[j].idx)
      assert.are.equal(e.big, body.results[1].neighbors[j].big)
    end
    code, text, body = http("GET", "/neighbors?column=id&value=nobody&k=3")
    assert.are.equal(200, code, text)
    assert.are.same({}, body.results)
    assert.truthy(text:find('"results":[]', 1, true))
  end)

  it("writes integers up to 2^53 exactly", function()
    local code, text = http("GET", "/neighbors?column=idx&value=0&k=1&columns=idx,big")
    assert.are.equal(200, code)
    assert.truthy(text:find('"big":9007199254740992', 1, true), text)
  end)

  describe("answers 400 with a JSON error", function()
    local good = { vector = nil, k = 5 }
    setup(function() good.vector = select(2, query(9)) end)

    local function with(changes)
      local t = { vector = good.vector, k = good.k }
      for k, v in pairs(changes) do t[k] = v end
      return cjson.encode(t)
    end

    local function expect_400(method, path, body, message)
      local code, text, decoded = http(method, path, body)
      assert.are.equal(400, code, text)
      assert.is_table(decoded, text)
      assert.is_string(decoded.error)
      if message then assert.truthy(decoded.error:find(message, 1, true), decoded.error) end
    end

    local search_cases = {
      { "for malformed JSON", '{"vector": [1, 2', "malformed JSON" },
      { "for a body that is not an object", "[1, 2, 3]", "must be a JSON object" },
      { "for an empty body", "", "missing JSON request body" },
      { "for NaN in the JSON", '{"vector": [NaN], "k": 1}', "malformed JSON" },
      { "for JSON nested too deeply", string.rep("[", 100) .. string.rep("]", 100), "malformed JSON" },
      { "for an unknown field", function() return with({ nprobe = 1000 }) end, "unknown field 'nprobe'" },
      { "for a missing vector", '{"k": 3}', "vector is required" },
      { "for a vector of the wrong dimension", '{"vector": [1, 2, 3], "k": 3}',
        "vector has dimension 3, expected " .. D },
      { "for a vector holding a string", function()
          local v = { table.unpack(good.vector) }
          v[3] = "x"
          return with({ vector = v })
        end, "vector[3] must be a finite number" },
      { "for a vector holding null", function()
          return with({ vector = cjson.null })
        end, "vector must be an array of numbers" },
      { "for an infinite element", '{"vector": [' .. string.rep("1e999,", D - 1) .. '1], "k": 1}',
        "vector[1] must be a finite number" },
      { "for a vector given as an object", '{"vector": {"1": 2}, "k": 1}', "must be an array" },
      { "for k = 0", function() return with({ k = 0 }) end, "k must be between 1 and 100" },
      { "for k above the limit", function() return with({ k = 101 }) end, "k must be between 1 and 100" },
      { "for k = 1e300", function() return with({ k = 1e300 }) end, "k must be between 1 and 100" },
      { "for a fractional k", function() return with({ k = 2.5 }) end, "k must be an integer" },
      { "for k as a string", function() return with({ k = "5" }) end, "k must be an integer" },
      { "for negative k_extra_neighbors", function() return with({ k_extra_neighbors = -1 }) end,
        "k_extra_neighbors must be between 0 and 100" },
      { "for an unknown column", function() return with({ columns = { "idx", "nope" } }) end,
        "unknown column 'nope'" },
      { "for columns that are not names", function() return with({ columns = { 1 } }) end,
        "column names" },
      { "for too many vectors", function()
          local vs = {}
          for i = 1, 17 do vs[i] = good.vector end
          return cjson.encode({ vectors = vs, k = 1 })
        end, "vectors holds 17 queries, the limit is 16" },
      { "for vectors of mixed dimensions", function()
          return cjson.encode({ vectors = { good.vector, { 1, 2 } }, k = 1 })
        end, "vectors[2] has dimension 2" },
      { "for both vector and vectors", function() return with({ vectors = { good.vector } }) end,
        "either vector or vectors" },
    }
    for _, case in ipairs(search_cases) do
      it("on POST /search " .. case[1], function()
        local body = type(case[2]) == "function" and case[2]() or case[2]
        expect_400("POST", "/search", body, case[3])
      end)
    end

    local neighbor_cases = {
      { "for an unknown column", "column=nope&value=1", "unknown column 'nope'" },
      { "for a column that is not unique", "column=category&value=red", "is not unique" },
      { "for a missing column", "value=1", "column is required" },
      { "for a missing value", "column=id", "value is required" },
      { "for an idx that is not an integer", "column=idx&value=abc", "is not an integer" },
      { "for an idx beyond 2^53", "column=idx&value=99999999999999999999", "out of range" },
      { "for k out of range", "column=id&value=id1&k=1000", "k must be between 1 and 100" },
      { "for a negative k", "column=id&value=id1&k=-3", "k must be between 1 and 100" },
      { "for k that is not a number", "column=id&value=id1&k=ten", "k must be an integer" },
      { "for an unknown parameter", "column=id&value=id1&nprobe=9", "unknown query parameter 'nprobe'" },
      { "for an unknown result column", "column=id&value=id1&columns=idx,nope", "unknown column 'nope'" },
      { "for too many values", "column=idx" .. string.rep("&value=1", 17), "the limit is 16" },
      { "for a repeated column", "column=id&column=idx&value=1", "needs one value" },
    }
    for _, case in ipairs(neighbor_cases) do
      it("on GET /neighbors " .. case[1], function()
        expect_400("GET", "/neighbors?" .. case[2], nil, case[3])
      end)
    end
  end)

  it("answers other mistakes with a JSON 404, 405 or 413", function()
    local code, _, body = http("GET", "/search")
    assert.are.equal(405, code)
    assert.is_string(body.error)
    code, _, body = http("GET", "/nothing/here")
    assert.are.equal(404, code)
    assert.is_string(body.error)
    code, _, body = http("POST", "/search", string.rep("1", 300000))
    assert.are.equal(413, code)
    assert.is_string(body.error)
  end)

  it("is still healthy after every bad request, and no worker died", function()
    local code = http("GET", "/health")
    assert.are.equal(200, code)
    local log = read_file(prefix .. "/run/error.log") or ""
    assert.falsy(log:find("exited on signal", 1, true), log)
    assert.falsy(log:find("[alert]", 1, true), log)
    assert.falsy(log:find("[crit]", 1, true), log)
  end)

  it("reloads when /admin/reload is called", function()
    local code, text, body = http("POST", "/admin/reload")
    assert.are.equal(200, code, text)
    local gen = body.generation
    assert.is_true(gen >= 1)
    -- any worker answering a request first follows the new generation
    for _ = 1, 10 do
      local _, _, h = http("GET", "/health")
      assert.are.equal(gen, h.generation)
    end
  end)

  it("reloads when the index file is replaced", function()
    -- a different index, written beside the served one and renamed over it
    run("sleep 1.1")   -- past the second of the previous reload
    local t0 = os.time()
    local w = vekterdb.new("items", { url = rw_url })
    local tmp_index = data .. "/items.index.new"
    w:create_index(tmp_index, "IVF16,Flat")
    w:close()
    assert(os.rename(tmp_index, index_file))
    local reloaded = false
    for _ = 1, 100 do
      local _, _, h = http("GET", "/health")
      if h and h.loaded_at and h.loaded_at >= t0 then
        reloaded = true
        break
      end
      run("sleep 0.1")
    end
    assert.is_true(reloaded, "no worker reloaded the index within 10 s")
    run("sleep 1.5")   -- one more stat check period: every worker has it now
    local fresh = vekterdb.load(config, "sqlite:///" .. data .. "/items.sqlite?mode=ro")
    for seed = 20, 29 do
      local v, t = query(seed)
      local expected = fresh:search(v, 10, "idx", "id", "category", "weight", "big")[1].neighbors
      local code, text, body = http("POST", "/search", cjson.encode({ vector = t, k = 10 }))
      assert.are.equal(200, code, text)
      same_neighbors(expected, body.neighbors)
    end
    fresh:close()
  end)
end)

-- the generator alone (no nginx needed): runs in make test too
describe("examples/openresty/setup.lua", function()
  local function setup_lua(args)
    local log = H.path("setup.log")
    local ok = os.execute(NO_PRELOAD .. LUA .. " examples/openresty/setup.lua " .. args .. " > " .. sh_quote(log) .. " 2>&1")
    return ok == true or ok == 0, read_file(log) or ""
  end

  it("writes nginx.conf for the prefix named, every value filled in", function()
    local prefix = H.path("srv")
    local ok, out = setup_lua("--prefix " .. sh_quote(prefix) .. " --conf-only --listen 127.0.0.1:9123 --workers 3")
    assert(ok, out)
    local conf = assert(read_file(prefix .. "/nginx.conf"))
    assert.falsy(conf:find("{{[%w_]+}}"), conf)
    assert.falsy(conf:find("/srv/vekterdb", 1, true), conf)
    for _, want in ipairs({ 'pid "' .. prefix .. '/run/nginx.pid";', 'error_log "' .. prefix .. '/run/error.log" warn;',
                            'client_body_temp_path "' .. prefix .. '/run/body";',
                            'lua_package_path "' .. prefix .. '/lua/?.lua;;";',
                            'lua_package_cpath "' .. prefix .. '/lib/?.so;;";',
                            'config = "' .. prefix .. '/data/items.json",',
                            'url = "sqlite:///' .. prefix .. '/data/items.sqlite?mode=ro",',
                            "listen 127.0.0.1:9123;", "worker_processes 3;", "user www-data;",
                            "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;" }) do
      assert.truthy(conf:find(want, 1, true), "missing " .. want .. " in\n" .. conf)
    end
    assert.truthy(out:find("nginx -p " .. prefix .. " -c " .. prefix .. "/nginx.conf", 1, true), out)
    assert.truthy(exists(prefix .. "/run") and exists(prefix .. "/data"))
  end)

  it("leaves the load_module lines out for OpenResty", function()
    local prefix = H.path("srv")
    local ok, out = setup_lua("--prefix " .. sh_quote(prefix) .. " --conf-only --openresty")
    assert(ok, out)
    assert.falsy(read_file(prefix .. "/nginx.conf"):find("load_module", 1, true))
  end)

  it("refuses a prefix nginx's syntax would misread, and unknown options", function()
    local ok, out = setup_lua("--prefix '/tmp/a b' --conf-only")
    assert.is_false(ok)
    assert.truthy(out:find("must not hold spaces", 1, true), out)
    ok, out = setup_lua("--prefix /tmp/x --colour blue")
    assert.is_false(ok)
    assert.truthy(out:find("unknown argument '--colour'", 1, true), out)
    ok, out = setup_lua("--conf-only")
    assert.is_false(ok)
    assert.truthy(out:find("--prefix DIR is required", 1, true), out)
  end)

  it("refuses a missing LuaJIT build, saying how to make it", function()
    local ok, out = setup_lua("--prefix " .. sh_quote(H.path("srv")) .. " --core /nonexistent/core.so")
    assert.is_false(ok)
    assert.truthy(out:find("make luajit", 1, true), out)
  end)
end)
