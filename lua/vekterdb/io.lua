--- Vector files: TEXMEX `.fvecs`/`.ivecs`/`.bvecs`, NumPy `.npy` and
-- ann-benchmarks HDF5 files, read into `vekterdb.matrix` values by row range
-- or chunk by chunk (so a file larger than memory can be streamed), and
-- writers for `.fvecs`, `.npy` and HDF5 datasets. The work is done in C
-- (`engine/io_vecs.c`, `engine/io_hdf5.c`); this module documents it and adds
-- the format-neutral `read`.
--
-- Rows are numbered from 0, like idx values: row r of a file becomes the
-- record with idx r when the file is imported from its start. A malformed file
-- (wrong magic, truncated, inconsistent row headers, unsupported dtype, a
-- dataset that is not 2-D) raises an error naming the file and the problem.
--
--     local vio = require "vekterdb.io"
--     local f = vio.open("sift_base.fvecs")
--     for m, first in f:chunks(10000) do ... end   -- m: a 10000 x 128 matrix
--     local gt = vio.read_hdf5("sift-128-euclidean.hdf5", "neighbors")  -- arrays of ids
-- @module vekterdb.io

local core = require "vekterdb.core"

local M = {}

-- raises error e named after call (the function of this module the caller
-- called), as the Lua module names its errors
local function rethrow(e, call)
  if getmetatable(e) == core.Error and e.call ~= call then
    local msg = e.message
    if e.call and msg:sub(1, #e.call + 2) == e.call .. ": " then msg = msg:sub(#e.call + 3) end
    e.message, e.call = call .. ": " .. msg, call
  end
  error(e, 0)
end

--- Opens a vector file for reading: only its header is read here, the rows
-- when asked for (see `VectorFile`).
-- @string path the file; its extension gives the format unless `opts.format` does
-- @tparam[opt] table opts `format` ("fvecs", "ivecs", "bvecs", "npy", "hdf5"),
-- `dataset` (HDF5 only; default "train")
-- @treturn VectorFile the open file; a missing or malformed file raises an
-- error
function M.open(path, opts)
  local ok, f = pcall(core.open_vectors, path, opts)
  if not ok then rethrow(f, "open") end
  return f
end

--- Reads rows of any supported file: a matrix, or arrays of integers for an
-- integer file (.ivecs, "neighbors") unless `opts.as_float`.
-- @string path the file
-- @tparam[opt] table opts `format` and `dataset` as in `open`, `first`
-- (0-based row, 0), `count` (rows; default: to the end), `as_float` (true:
-- an integer file as a float32 matrix too)
-- @return a `vekterdb.matrix`, or `{ {id, ...}, ... }` for an integer file
function M.read(path, opts)
  opts = opts or {}
  local ok, f = pcall(core.open_vectors, path, { format = opts.format, dataset = opts.dataset })
  if not ok then rethrow(f, "read") end
  local res
  ok, res = pcall(function()
    if f.is_integer and not opts.as_float then return f:read_ids(opts.first, opts.count) end
    return f:read(opts.first, opts.count)
  end)
  f:close()
  if not ok then rethrow(res, "read") end
  return res
end

--- Rows of an `.fvecs` file as a matrix.
-- @function read_fvecs
-- @string path the file
-- @int[opt=0] first 0-based row
-- @int[opt] count rows (default: to the end)
-- @return a `vekterdb.matrix`
M.read_fvecs = core.read_fvecs

--- Rows of a `.bvecs` file (uint8 values) as a float32 matrix.
-- @function read_bvecs
-- @string path the file
-- @int[opt=0] first 0-based row
-- @int[opt] count rows (default: to the end)
-- @return a `vekterdb.matrix`
M.read_bvecs = core.read_bvecs

--- Rows of an `.ivecs` file as arrays of integers (ground-truth ids).
-- @function read_ivecs
-- @string path the file
-- @int[opt=0] first 0-based row
-- @int[opt] count rows (default: to the end)
-- @return `{ {id, ...}, ... }`, one array per row
M.read_ivecs = core.read_ivecs

--- Rows of a 2-D `.npy` array as a matrix (float32, C order; integer arrays
-- convert).
-- @function read_npy
-- @string path the file
-- @int[opt=0] first 0-based row
-- @int[opt] count rows (default: to the end)
-- @return a `vekterdb.matrix`
M.read_npy = core.read_npy

--- Rows of one dataset of an HDF5 file: a matrix for floating-point data
-- ("train", "test", "distances"), arrays of integers for integer data
-- ("neighbors").
-- @function read_hdf5
-- @string path the file
-- @string dataset the dataset's name
-- @int[opt=0] first 0-based row
-- @int[opt] count rows (default: to the end)
-- @return a `vekterdb.matrix`, or `{ {id, ...}, ... }` for integer data
M.read_hdf5 = core.read_hdf5

--- Starts writing an `.fvecs` or `.npy` file of dimension `d`.
-- `w:write(m)` appends the rows of a matrix (or a vector, or an array of
-- vectors), `w:close()` finishes the file and moves it into place (the rows
-- go to a temporary file until then), `w:abort()` drops it. As a `<close>`
-- variable it is kept on a normal exit and dropped on an error.
-- @function writer
-- @string path the file
-- @int d dimension
-- @string[opt] format "fvecs" or "npy" (default: from the extension)
-- @treturn VectorWriter the writer
M.writer = core.vector_writer

--- Writes a whole matrix to an `.fvecs` file; returns the row count.
-- The file is written to a temporary file and renamed into place.
-- @function write_fvecs
-- @string path the file
-- @param m a `vekterdb.matrix` (or a vector, or an array of vectors)
-- @treturn int the rows written
M.write_fvecs = core.write_fvecs

--- Writes a whole matrix to a `.npy` file (float32, C order).
-- The file is written to a temporary file and renamed into place.
-- @function write_npy
-- @string path the file
-- @param m a `vekterdb.matrix` (or a vector, or an array of vectors)
-- @treturn int the rows written
M.write_npy = core.write_npy

--- Writes one dataset to an HDF5 file: a matrix as float32, arrays of
-- integers as int32 (int64 when a value needs it).
-- @function write_hdf5
-- @string path the file
-- @string dataset the dataset's name
-- @param data a matrix or an array of arrays of integers
-- @bool[opt] append add to an existing file instead of creating it
-- @treturn int the rows written
M.write_hdf5 = core.write_hdf5

--- True when the module was built with HDF5 (`make VK_HDF5=0` builds
-- without it; the HDF5 functions then raise an error).
-- @function hdf5_available
-- @treturn bool whether HDF5 files can be read and written
M.hdf5_available = core.hdf5_available

--- An open vector file (`vekterdb.VectorFile`), from `open`. Rows are
-- read when asked for, so a file larger than memory streams through.
--
--  * `f.rows` and `#f`: the number of rows; `f.dim` (or `f.d`): the
--    dimension
--  * `f.format`: "fvecs", "ivecs", "bvecs", "npy" or "hdf5"
--  * `f.dtype`: the stored type, such as "float32", "int32", "uint8"
--  * `f.path`; `f.dataset` (HDF5 only, else nil)
--  * `f.is_integer`: true for integer data (ids): read it with `read_ids`
--
-- A closed file raises "attempt to use a closed vector file". A VectorFile
-- is also a to-be-closed value (`local f <close> = vio.open(...)`).
-- @type VectorFile

--- Rows as a float32 matrix (integer data is converted).
-- @function VectorFile:read
-- @int[opt=0] first 0-based row; past the end raises an error
-- @int[opt] count rows (default: to the end; cut at the end)
-- @return a `vekterdb.matrix`

--- Rows of integer data as arrays of integers.
-- @function VectorFile:read_ids
-- @int[opt=0] first 0-based row
-- @int[opt] count rows (default: to the end)
-- @return `{ {id, ...}, ... }`; a file of floating-point data raises an error

--- Iterates over the rows in chunks.
--
--     for m, first in f:chunks(10000) do db:insert_matrix(m, { idx = first }) end
-- @function VectorFile:chunks
-- @int[opt=10000] size rows per chunk
-- @int[opt=0] first 0-based row to start at
-- @int[opt] count rows in all (default: to the end)
-- @return an iterator returning a `vekterdb.matrix` and the 0-based row of
-- its first row, for a generic `for`

--- Closes the file; closing twice is allowed.
-- @function VectorFile:close
-- @return nothing

--- A vector file being written (`vekterdb.VectorWriter`), from `writer`.
-- The rows go to a temporary file, which appears under its name on `close`.
-- `w.rows`: the rows written so far; `w.dim` (or `w.d`): the dimension.
--
--     local w <close> = vio.writer("out.fvecs", 128)
--     for m in f:chunks(10000) do w:write(m) end
-- @type VectorWriter

--- Appends rows.
-- @function VectorWriter:write
-- @param m a `vekterdb.matrix`, a vector or an array of vectors, of the
-- writer's dimension
-- @treturn int the rows written so far

--- Finishes the file and moves it into place.
-- @function VectorWriter:close
-- @treturn int the rows written

--- Drops what was written (the file never appears); calling it again, or
-- after `close`, does nothing.
-- @function VectorWriter:abort
-- @return nothing

return M
