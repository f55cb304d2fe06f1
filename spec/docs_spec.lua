-- The API reference (`make docs`: LDoc with config.ld) covers every public
-- function, method and option, shows each one's parameters and returns, and
-- leaves the internals out.  The public names are listed at run time, from
-- the modules and the metatables of their objects, so a function added
-- without documentation fails here.
local vekterdb = require "vekterdb"
local H = require "spec.helper"

-- the repository's root: LDoc reads config.ld and the sources from there
local root = debug.getinfo(1, "S").source:match("^@(.*)/spec/[^/]*$") or "."

-- Names a module exports for the library's own use, kept out of the
-- reference on purpose (vekterdb.lua compiles where-clauses with them).
local INTERNAL = {
  ["vekterdb.where"] = { is_expr = true, quote_ident = true, compile = true, record = true },
}

-- The userdata classes and the LDoc types that document their methods (a
-- Vector has every Matrix method: the Vector type says so).
local CLASS_DOCS = {
  Vector = { "Vector", "Matrix" },
  Matrix = { "Matrix" },
  Index = { "Index" },
  VectorFile = { "VectorFile" },
  VectorWriter = { "VectorWriter" },
}

-- Options tables in lua/vekterdb.lua (local NAME_OPTS = set_of({ ... })) and
-- the function whose reference must name every one of them.
local OPTIONS_OF = {
  NEW_OPTS = "new",
  INSERT_OPTS = "DB:insert",
  MATRIX_OPTS = "DB:insert_matrix",
  CREATE_OPTS = "DB:create_index",
  SYNC_OPTS = "DB:sync_index_to_db",
  SEARCH_OPTS = "DB:search",
  LOAD_OPTS = "load",
  FOLLOW_OPTS = "follow",
}

local ENTITIES = { lt = "<", gt = ">", amp = "&", quot = '"', ldquo = '"', rdquo = '"',
                   lsquo = "'", rsquo = "'", hellip = "...", nbsp = " ", mdash = "-", ndash = "-" }

-- the text a reader sees: tags dropped, entities decoded, blanks folded
local function text_of(html)
  local t = html:gsub("<[^>]*>", " ")
  t = t:gsub("&#(%d+);", function(n)
    n = tonumber(n)
    return n < 128 and string.char(n) or "?"
  end)
  t = t:gsub("&(%a+);", function(e) return ENTITIES[e] or ("&" .. e .. ";") end)
  return (t:gsub("%s+", " "))
end

local function sh_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- Runs LDoc into a fresh folder; returns its output and the pages:
-- { [page name] = { html =, items = { [anchor] = html of the item } } }.
-- (The sanitizer runs preload libasan for the specs: LDoc's Lua does not
-- need it.)
local function build_reference()
  local dir = H.tmpdir() .. "/reference"
  assert(os.execute("rm -rf " .. sh_quote(dir) .. " && mkdir -p " .. sh_quote(dir)))
  local p = io.popen("cd " .. sh_quote(root) .. " && env -u LD_PRELOAD ldoc --fatalwarnings"
    .. " --config config.ld --dir " .. sh_quote(dir) .. " . 2>&1")
  local out = p:read("*a")
  p:close()
  local pages = {}
  local names = { index = "index.html", errors = "topics/errors.md.html" }
  for _, m in ipairs({ "vekterdb", "vekterdb.where", "vekterdb.io", "vekterdb.source",
                       "vekterdb.progress" }) do
    names[m] = "modules/" .. m .. ".html"
  end
  for name, file in pairs(names) do
    local html = read(dir .. "/" .. file)
    if html then
      local items = {}
      -- each item: from its anchor to the next one (or the page's end)
      local pos = {}
      for at, anchor in html:gmatch('()<a name = "([^"]+)"></a>') do pos[#pos + 1] = { at, anchor } end
      for i, a in ipairs(pos) do
        items[a[2]] = html:sub(a[1], pos[i + 1] and pos[i + 1][1] - 1 or #html)
      end
      pages[name] = { html = html, items = items }
    end
  end
  return out, pages
end

-- the methods table a userdata's metatable holds (whatever its key)
local function methods_of(obj)
  local mt = getmetatable(obj)
  local out = {}
  for _, t in pairs(mt) do
    if type(t) == "table" then
      for name, f in pairs(t) do
        if type(name) == "string" and type(f) == "function" and not name:match("^_") then
          out[#out + 1] = name
        end
      end
    end
  end
  table.sort(out)
  return out
end

-- the DB class's method table: the upvalue DB of the objects' __index
local function db_methods(db)
  local index = getmetatable(db).__index
  local methods = type(index) == "table" and index or nil
  for i = 1, math.huge do
    if methods or type(index) ~= "function" then break end
    local name, value = debug.getupvalue(index, i)
    if name == nil then break end
    if name == "DB" and type(value) == "table" then methods = value end
  end
  assert(methods, "could not find the DB methods (getmetatable(db).__index's upvalue DB)")
  local out = {}
  for name, f in pairs(methods) do
    if type(f) == "function" and not name:match("^_") then out[#out + 1] = name end
  end
  table.sort(out)
  return out
end

describe("the API reference (make docs)", function()
  local out, pages

  setup(function()
    out, pages = build_reference()
  end)

  it("builds without a warning", function()
    local notices = { "^reading configuration from ", "^found master module", "^%*%*%*closing section",
                      "^output written to " }
    local extra = {}
    for line in out:gmatch("[^\n]+") do
      local known = false
      for _, n in ipairs(notices) do known = known or line:find(n) ~= nil end
      if not known then extra[#extra + 1] = line end
    end
    assert.are.same({}, extra)
    assert.is_not_nil(pages.vekterdb, "no page for module vekterdb:\n" .. out)
  end)

  -- missing[#missing + 1] = what, unless the page has an item for anchor
  local function expect(missing, page, anchor, what)
    if not (pages[page] and pages[page].items[anchor]) then
      missing[#missing + 1] = (what or anchor) .. " (in " .. page .. ")"
    end
  end

  it("documents every public function of vekterdb and its submodules", function()
    local missing = {}
    for name, v in pairs(vekterdb) do
      if not name:match("^_") then
        if type(v) == "function" then
          expect(missing, "vekterdb", name, "vekterdb." .. name)
        elseif type(v) == "table" then
          local namespace = false
          for k, f in pairs(v) do
            if type(f) == "function" and type(k) == "string" and not k:match("^_")
               and name ~= "log" then
              namespace = true
              expect(missing, "vekterdb", name .. "." .. k, "vekterdb." .. name .. "." .. k)
            end
          end
          if not namespace then   -- a settings table: its fields are listed
            expect(missing, "vekterdb", name, "vekterdb." .. name)
            local item = pages.vekterdb and pages.vekterdb.items[name] or ""
            for k in pairs(v) do
              -- (a metatable's metamethods are no settings: vekterdb.Error)
              if not tostring(k):match("^__")
                 and not item:find('<span class="parameter">' .. k .. "</span>", 1, true) then
                missing[#missing + 1] = "vekterdb." .. name .. "." .. k .. " (a field)"
              end
            end
          end
        end
      end
    end
    for _, m in ipairs({ "vekterdb.where", "vekterdb.io", "vekterdb.source", "vekterdb.progress" }) do
      for name, v in pairs(require(m)) do
        local internal = INTERNAL[m] and INTERNAL[m][name]
        if not name:match("^_") and not internal and type(v) ~= "table" then
          expect(missing, m, name, m .. "." .. name)
        end
      end
    end
    assert.are.same({}, missing)
  end)

  it("documents every method of a DB and of a where-clause column", function()
    local db = vekterdb.new("docs_spec", { columns = { { name = "title", type = "text" } } })
    local missing = {}
    for _, name in ipairs(db_methods(db)) do expect(missing, "vekterdb", "DB:" .. name) end
    local column = getmetatable(db.Record.title).__index
    for name, f in pairs(column) do
      if type(f) == "function" and not name:match("^_") then
        expect(missing, "vekterdb.where", "Column:" .. name)
      end
    end
    db:close()
    assert.are.same({}, missing)
  end)

  it("documents every method of the C module's objects", function()
    local vio = require "vekterdb.io"
    local file = H.path("docs.fvecs")
    vio.write_fvecs(file, vekterdb.matrix({ { 1, 2 }, { 3, 4 } }))
    local f = vio.open(file)
    local w = vio.writer(H.path("docs-w.fvecs"), 2)
    local objects = {
      Vector = vekterdb.vector({ 1, 2 }),
      Matrix = vekterdb.matrix(2, 2),
      Index = vekterdb.faiss.index_factory(2, "Flat"),
      VectorFile = f,
      VectorWriter = w,
    }
    local missing = {}
    for class, obj in pairs(objects) do
      local page = (class == "VectorFile" or class == "VectorWriter") and "vekterdb.io" or "vekterdb"
      local methods = methods_of(obj)
      assert.is_true(#methods > 0, "no methods found for " .. class)
      for _, name in ipairs(methods) do
        local found = false
        for _, doc_class in ipairs(CLASS_DOCS[class]) do
          found = found or (pages[page] and pages[page].items[doc_class .. ":" .. name]) ~= nil
        end
        if not found then missing[#missing + 1] = class .. ":" .. name .. " (in " .. page .. ")" end
      end
    end
    w:abort()
    f:close()
    assert.are.same({}, missing)
  end)

  it("names every option of the calls that take an options table", function()
    local src = assert(read(root .. "/lua/vekterdb.lua"))
    local missing, seen = {}, {}
    for var, list in src:gmatch("local (%u+_OPTS) = set_of%(%{(.-)%}%)") do
      local fn = OPTIONS_OF[var]
      assert.is_not_nil(fn, var .. ": which function documents these options? (OPTIONS_OF)")
      seen[var] = true
      local item = pages.vekterdb.items[fn]
      assert.is_not_nil(item, fn .. " is not in the reference")
      local text = text_of(item)
      for opt in list:gmatch('"([%w_]+)"') do
        if not text:find(opt, 1, true) then missing[#missing + 1] = fn .. " option " .. opt end
      end
    end
    for var in pairs(OPTIONS_OF) do
      assert.is_true(seen[var] ~= nil, var .. " is no longer in lua/vekterdb.lua: update OPTIONS_OF")
    end
    assert.are.same({}, missing)
  end)

  it("describes every parameter and what every function returns", function()
    local bare, no_return = {}, {}
    for page, p in pairs(pages) do
      for anchor, item in pairs(p.items) do
        -- a parameter's entry: its name, its type, then words
        for name, rest in item:gmatch('<li><span class="parameter">([^<]*)</span>(.-)</li>') do
          rest = rest:gsub('<span class="types">.-</span>', ""):gsub("%(<em>optional</em>%)", "")
            :gsub("%(<em>default</em>[^)]*%)", "")
          if not text_of(rest):find("%w") then bare[#bare + 1] = page .. ": " .. anchor .. " " .. name end
        end
        local is_function = item:match("<strong>[^<]*%(") ~= nil
        if is_function and not item:find("<h3>Returns:</h3>", 1, true) then
          no_return[#no_return + 1] = page .. ": " .. anchor
        end
      end
    end
    table.sort(bare)
    table.sort(no_return)
    assert.are.same({}, bare)
    assert.are.same({}, no_return)
  end)

  it("leaves the internals out", function()
    local shown = {}
    for page, p in pairs(pages) do
      for anchor in pairs(p.items) do
        local last = anchor:match("[^:.]+$") or anchor
        if last:match("^_") or (INTERNAL[page] and INTERNAL[page][last]) then
          shown[#shown + 1] = page .. ": " .. anchor
        end
      end
    end
    assert.are.same({}, shown)
  end)

  it("keeps text in angle brackets and parameters that run over several lines", function()
    local save = text_of(pages.vekterdb.items["DB:save"])
    assert.matches("<table_name>.json", save, 1, true)
    local delete = text_of(pages.vekterdb.items["DB:delete"])
    assert.matches("<table>__vekterdb_deleted", delete, 1, true)
    -- new's opts: the last lines of the parameter stay in the parameter
    local new = pages.vekterdb.items.new
    local opts = new:match('<span class="parameter">opts</span>(.-)</li>%s*</ul>%s*</li>')
      or new:match('<span class="parameter">opts</span>(.*)<h3>Returns')
    assert.is_not_nil(opts)
    assert.matches("trust_index_file", text_of(opts), 1, true)
    assert.matches("mmap", text_of(opts), 1, true)
    -- search's return shape
    assert.matches("neighbors = { { column = value, ..., metric = m }", text_of(pages.vekterdb.items["DB:search"]), 1, true)
  end)

  it("has the section on errors with their codes", function()
    local errors = assert(pages.errors, "no Errors topic").html
    local text = text_of(errors)
    for _, code in ipairs({ "constraint", "locked", "connection", "not_found", "invalid" }) do
      assert.matches("<code>" .. code .. "</code>", errors, 1, true)
    end
    assert.matches("tostring(err)", text, 1, true)
    assert.matches("errors.md.html", pages.vekterdb.html, 1, true)
  end)
end)
