--- Where-clause builder: `db.Record.<column>:<op>(...)` and the combinators.
-- Expressions compile to parameterised SQL: every value is bound, never
-- spliced into the text, and column names are checked against the table and
-- quoted.
--
--     local R = db.Record
--     local shoes = R.category:eq("shoes")
--     local cheap = vekterdb.and_(shoes, R.price:lt(50), R.title:like("%red%"))
--     db:search(q, 10, { filter = cheap })
--     db:delete(vekterdb.or_(R.stock:eq(0), R.discontinued:eq(true)))
--     for rec in db:select(R.idx:between(100, 199)) do ... end
--
-- A where-clause (an `Expr`, `vekterdb.Expr` in messages) is taken by
-- `search` and `nearest_neighbors` (option `filter`), `nearest_neighbors`,
-- `select`, `delete` and `update`. Under Lua 5.3 and 5.4, `a & b`, `a | b`
-- and `~a` are `and_(a, b)`, `or_(a, b)` and `not_(a)`. `tostring(expr)`
-- shows its SQL and values, such as
-- `vekterdb.Expr("price" < ?1 | "50")`.
--
-- Values are numbers, strings or booleans; nil is refused (use `is_null`),
-- and so is NaN. Nobody needs to require this module: `db.Record` and
-- `vekterdb.and_`, `or_`, `not_` give all of it.
-- @module vekterdb.where

local core = require "vekterdb.core"

local M = {}

-- raises an error value (code "invalid") without a source position: the
-- public call that compiles the clause names it
local function raise(msg)
  error(core.error("invalid", msg), 0)
end

local Expr = {}
Expr.__index = Expr
Expr.__name = "vekterdb.Expr"

local function is_expr(x)
  return getmetatable(x) == Expr
end
M.is_expr = is_expr

local function node(t)
  return setmetatable(t, Expr)
end

local function check_expr(x, what)
  if not is_expr(x) then
    raise(what .. " expects where-clause expressions (db.Record.<column>:<op>(...)), got "
      .. type(x))
  end
  return x
end

--- All of the given expressions must hold (SQL `AND`).
-- @param ... one or more where-clauses (a nil among them is refused)
-- @treturn Expr the combined where-clause (the one given, when only one)
function M.and_(...)
  -- select("#"): a nil among the arguments is refused, never dropped
  local n = select("#", ...)
  local parts = { ... }
  if n == 0 then raise("and_ needs at least one expression") end
  for i = 1, n do check_expr(parts[i], "and_") end
  if #parts == 1 then return parts[1] end
  return node({ op = "and", parts = parts })
end

--- At least one of the given expressions must hold (SQL `OR`).
-- @param ... one or more where-clauses (a nil among them is refused)
-- @treturn Expr the combined where-clause (the one given, when only one)
function M.or_(...)
  -- select("#"): a nil among the arguments is refused, never dropped
  local n = select("#", ...)
  local parts = { ... }
  if n == 0 then raise("or_ needs at least one expression") end
  for i = 1, n do check_expr(parts[i], "or_") end
  if #parts == 1 then return parts[1] end
  return node({ op = "or", parts = parts })
end

--- The expression must not hold (SQL `NOT`).
-- @tparam Expr x a where-clause
-- @treturn Expr the negated where-clause
function M.not_(x)
  check_expr(x, "not_")
  return node({ op = "not", parts = { x } })
end

-- Lua 5.4 operators: a & b, a | b, ~a
Expr.__band = function(a, b) return M.and_(a, b) end
Expr.__bor = function(a, b) return M.or_(a, b) end
Expr.__bnot = function(a) return M.not_(a) end
Expr.__tostring = function(e)
  local sql, params = M.compile(e, "?")
  local shown = {}
  for i = 1, #params do shown[i] = string.format("%q", tostring(params[i])) end
  return "vekterdb.Expr(" .. sql .. " | " .. table.concat(shown, ", ") .. ")"
end

-- q: the database's quote character ('"', or '`' on MySQL)
local function quote_ident(name, q)
  q = q or '"'
  return q .. name:gsub(q, q .. q) .. q
end
M.quote_ident = quote_ident

-- Whether x is a `vekterdb.blob` value (set by the vekterdb module): a
-- where-clause may compare a column with one.
function M._is_blob(_) return false end

local function check_value(v, op)
  local t = type(v)
  if t ~= "number" and t ~= "string" and t ~= "boolean" and not M._is_blob(v) then
    raise(op .. ": values must be numbers, strings or booleans, got " .. t)
  end
  if t == "number" and v ~= v then raise(op .. ": NaN cannot be compared") end
  return v
end

local function check_list(list, op)
  if type(list) ~= "table" then
    raise(op .. " expects an array of values, got " .. type(list))
  end
  local n = #list
  local out = {}
  for i = 1, n do out[i] = check_value(list[i], op) end
  return out
end

--- A column of the table, as `db.Record.<column>` gives it; each operator
-- makes a where-clause (`Expr`) on it. Indexing `db.Record` with a name the
-- table does not have raises an error, and so does assigning to it.
-- `tostring(column)` is "vekterdb.Column(name)".
-- @type Column
local Column = {}
Column.__index = Column
Column.__name = "vekterdb.Column"

local function compare(sym)
  return function(self, v)
    if v == nil then
      raise("comparing " .. self.name .. " with nil: use is_null() or is_not_null()")
    end
    return node({ op = "cmp", col = self.name, sym = sym, values = { check_value(v, sym) } })
  end
end

--- The column equals a value (SQL `=`; a NULL column never matches).
-- @function Column:eq
-- @param v a number, string or boolean (nil is refused: use `is_null`)
-- @treturn Expr the where-clause
Column.eq = compare("=")
--- The column differs from a value (SQL `<>`; a NULL column never matches).
-- @function Column:ne
-- @param v a number, string or boolean
-- @treturn Expr the where-clause
Column.ne = compare("<>")
--- The column is less than a value (SQL `<`).
-- @function Column:lt
-- @param v a number, string or boolean
-- @treturn Expr the where-clause
Column.lt = compare("<")
--- The column is at most a value (SQL `<=`).
-- @function Column:le
-- @param v a number, string or boolean
-- @treturn Expr the where-clause
Column.le = compare("<=")
--- The column is greater than a value (SQL `>`).
-- @function Column:gt
-- @param v a number, string or boolean
-- @treturn Expr the where-clause
Column.gt = compare(">")
--- The column is at least a value (SQL `>=`).
-- @function Column:ge
-- @param v a number, string or boolean
-- @treturn Expr the where-clause
Column.ge = compare(">=")

--- The column equals one of the values (SQL `IN`). An empty list matches
-- nothing. `nearest_neighbors` splits a long list into several queries;
-- elsewhere the database's limit on bound values per statement applies.
-- @param list an array of numbers, strings or booleans
-- @treturn Expr the where-clause
function Column:in_(list)
  return node({ op = "in", col = self.name, values = check_list(list, "in_") })
end

--- The column equals none of the values (SQL `NOT IN`; a NULL column never
-- matches). An empty list matches every record.
-- @param list an array of numbers, strings or booleans
-- @treturn Expr the where-clause
function Column:not_in(list)
  return node({ op = "not_in", col = self.name, values = check_list(list, "not_in") })
end

--- The column lies between two bounds, both included (SQL `BETWEEN`).
-- @param lo the lower bound (a number, string or boolean)
-- @param hi the upper bound
-- @treturn Expr the where-clause
function Column:between(lo, hi)
  if lo == nil or hi == nil then raise("between needs two bounds") end
  return node({ op = "between", col = self.name,
                values = { check_value(lo, "between"), check_value(hi, "between") } })
end

--- The column matches an SQL `LIKE` pattern: `%` any run of characters,
-- `_` one character. SQLite compares ASCII letters without regard to case,
-- PostgreSQL with it.
--
--     db.Record.title:like("100!%%", "!")   -- titles starting with "100%"
-- @string pattern the pattern
-- @string[opt] escape one character that makes the next `%` or `_` literal
-- (SQL `ESCAPE`)
-- @treturn Expr the where-clause
function Column:like(pattern, escape)
  if type(pattern) ~= "string" then raise("like expects a string pattern") end
  -- (SQLite reads the escape as C text: a NUL byte is no character to it)
  if escape ~= nil and (type(escape) ~= "string" or #escape ~= 1 or escape == "\0") then
    raise("like: escape must be a single character other than NUL")
  end
  return node({ op = "like", col = self.name, values = { pattern }, escape = escape })
end

--- The column is NULL.
-- @treturn Expr the where-clause
function Column:is_null()
  return node({ op = "null", col = self.name, values = {} })
end

--- The column is not NULL (`db.Record.idx:is_not_null()` matches every
-- record).
-- @treturn Expr the where-clause
function Column:is_not_null()
  return node({ op = "not_null", col = self.name, values = {} })
end

Column.__tostring = function(c) return "vekterdb.Column(" .. c.name .. ")" end

-- The `db.Record` proxy: indexing it with a column name gives a column
-- handle; unknown names raise.
function M.record(columns, table_name)
  local known = {}
  for _, c in ipairs(columns) do known[c.name] = true end
  return setmetatable({}, {
    __index = function(_, name)
      if not known[name] then
        raise("table " .. table_name .. " has no column '" .. tostring(name) .. "'")
      end
      return setmetatable({ name = name }, Column)
    end,
    __newindex = function() raise("db.Record is read-only") end,
    __tostring = function() return "vekterdb.Record(" .. table_name .. ")" end,
  })
end

-- The SQL text of each comparison: an expression is a plain table anyone can
-- copy and change, so compile() takes nothing from it into the text but a
-- quoted column name and what this table maps its fields to.
local SQL_OF_SYM = { ["="] = "=", ["<>"] = "<>", ["<"] = "<", ["<="] = "<=", [">"] = ">", [">="] = ">=" }

-- Compiles an expression to SQL text and an array of values.
-- Expressions are checked as they are read (a table changed or made by hand
-- is refused with "invalid where-clause: ...", never spliced into the SQL).
-- @param e expression
-- @param ph placeholder style: "?" gives ?1 ?2 ..., "$" gives $1 $2 ...
-- @param known optional set of column names to check against
-- @param convert optional function(column, value) giving the value to bind
-- for a comparison with that column (not for like patterns): the stored
-- form of a DateTime or Date column's time, a blob for a blob column
-- @param quote optional quote character of identifiers ('"' by default, '`' on MySQL)
function M.compile(e, ph, known, convert, quote)
  check_expr(e, "compile")
  local params = {}
  local function invalid(what, v)
    if v ~= nil then what = what .. " " .. string.format("%q", tostring(v):sub(1, 40)) end
    raise("invalid where-clause: " .. what)
  end
  local function bind(v, column)
    local t = type(v)
    if t ~= "number" and t ~= "string" and t ~= "boolean" and not M._is_blob(v) then
      invalid("a value must be a number, a string or a boolean, got " .. t)
    end
    if v ~= v then invalid("NaN cannot be compared") end
    if convert and column then v = convert(column, v) end
    params[#params + 1] = v
    return ph .. #params
  end
  local function col(name)
    if type(name) ~= "string" then invalid("a column name must be a string, got " .. type(name)) end
    if known and not known[name] then raise("unknown column '" .. name .. "'") end
    return quote_ident(name, quote)
  end
  local function values(n, count)
    if type(n.values) ~= "table" then invalid("values must be an array, got " .. type(n.values)) end
    if count and #n.values ~= count then
      invalid(string.format("%s takes %d values, got %d", n.op, count, #n.values))
    end
    return n.values
  end
  local path = {}   -- the nodes being emitted: a table that holds itself is refused
  local emit
  local function sub(n)
    if type(n) ~= "table" then invalid("a part must be an expression, got " .. type(n)) end
    if path[n] then invalid("an expression contains itself") end
    path[n] = true
    local sql = emit(n)
    path[n] = nil
    return sql
  end
  function emit(n)
    local op = n.op
    if op == "and" or op == "or" then
      if type(n.parts) ~= "table" or #n.parts == 0 then invalid(op .. " needs at least one expression") end
      local parts = {}
      for i = 1, #n.parts do parts[i] = sub(n.parts[i]) end
      return "(" .. table.concat(parts, op == "and" and " AND " or " OR ") .. ")"
    elseif op == "not" then
      if type(n.parts) ~= "table" or #n.parts ~= 1 then invalid("not takes one expression") end
      return "(NOT " .. sub(n.parts[1]) .. ")"
    elseif op == "cmp" then
      local sym = SQL_OF_SYM[n.sym]
      if not sym then invalid("unknown comparison operator", n.sym) end
      return col(n.col) .. " " .. sym .. " " .. bind(values(n, 1)[1], n.col)
    elseif op == "in" or op == "not_in" then
      local c = col(n.col)   -- checked even when the list is empty
      if #values(n) == 0 then return op == "in" and "(1 = 0)" or "(1 = 1)" end
      local marks = {}
      for i = 1, #n.values do marks[i] = bind(n.values[i], n.col) end
      return c .. (op == "in" and " IN (" or " NOT IN (") .. table.concat(marks, ", ") .. ")"
    elseif op == "between" then
      values(n, 2)
      return col(n.col) .. " BETWEEN " .. bind(n.values[1], n.col) .. " AND " .. bind(n.values[2], n.col)
    elseif op == "like" then
      if type(values(n, 1)[1]) ~= "string" then invalid("like needs a string pattern") end
      local s = col(n.col) .. " LIKE " .. bind(n.values[1])
      if n.escape ~= nil then
        if type(n.escape) ~= "string" or #n.escape ~= 1 or n.escape == "\0" then
          invalid("like: escape must be a single character other than NUL")
        end
        s = s .. " ESCAPE " .. bind(n.escape)
      end
      return s
    elseif op == "null" then
      return col(n.col) .. " IS NULL"
    elseif op == "not_null" then
      return col(n.col) .. " IS NOT NULL"
    end
    invalid("unknown expression node", op)
  end
  return sub(e), params
end

return M
