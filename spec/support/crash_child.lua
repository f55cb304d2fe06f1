-- spec/support/crash_child.lua URL TABLE INDEX_FILE PROGRESS_FILE
-- Inserts batches of 50 records forever (the parent kills it) and appends
-- "committed N" to PROGRESS_FILE after each insert call returns.
local vekterdb = require "vekterdb"
local url, name, index_file, progress = arg[1], arg[2], arg[3], arg[4]
local db = vekterdb.new(name, { url = url, faiss_index = index_file })
vekterdb.log.level = "error"
db:sync_index_to_db()
local out = assert(io.open(progress, "a"))
local d = 16
while true do
  local first = db:count()
  local recs = {}
  for i = 0, 99 do
    local v = vekterdb.vector(d)
    for j = 1, d do v[j] = math.sin((first + i) * 0.37 + j) end
    recs[#recs + 1] = { idx = first + i, vector = v }
  end
  db:insert(recs, { batch_size = 50 })
  out:write("committed ", first + 100, "\n")
  out:flush()
end
