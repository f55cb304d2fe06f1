-- bench/common.lua: what every benchmark script reads the same way
local M = {}

--- the environment variable name, or default when it is unset or empty
function M.env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

return M
