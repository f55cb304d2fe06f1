-- wrk script: POST /search with the bodies of queries.jsonl (the script's
-- argument), in turn; each wrk thread starts at a different line.
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

local bodies = {}
local next_body = 1

function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  next_body = ((id or 1) * 97) % #bodies + 1
end

function request()
  local body = bodies[next_body]
  next_body = next_body % #bodies + 1
  return wrk.format("POST", "/search", { ["Content-Type"] = "application/json" }, body)
end
