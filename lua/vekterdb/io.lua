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

--- Opens a vector file for reading.
-- The returned `vekterdb.VectorFile` has fields `rows`, `dim`, `format`,
-- `dtype`, `path`, `dataset`, `is_integer`, `#f` (rows), and methods
-- `f:read([first [, count]])` (a matrix), `f:read_ids([first [, count]])`
-- (arrays of integers, for integer files), `f:chunks(size [, first [, count]])`
-- (an iterator of `matrix, first_row`) and `f:close()` (also `<close>`).
-- @string path the file; its extension gives the format unless `opts.format` does
-- @tab[opt] opts `format` ("fvecs", "ivecs", "bvecs", "npy", "hdf5"),
-- `dataset` (HDF5 only; default "train")
-- @return a vekterdb.VectorFile
function M.open(path, opts)
  local ok, f = pcall(core.open_vectors, path, opts)
  if not ok then rethrow(f, "open") end
  return f
end

--- Reads rows of any supported file: a matrix, or arrays of integers for an
-- integer file (.ivecs, "neighbors") unless `opts.as_float`.
-- @string path the file
-- @tab[opt] opts `format`, `dataset`, `first` (0-based row), `count`, `as_float`
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
-- @string path
-- @int[opt=0] first 0-based row
-- @int[opt] count rows (default: to the end)
M.read_fvecs = core.read_fvecs

--- Rows of a `.bvecs` file (uint8 values) as a float32 matrix.
-- @function read_bvecs
M.read_bvecs = core.read_bvecs

--- Rows of an `.ivecs` file as arrays of integers (ground-truth ids).
-- @function read_ivecs
M.read_ivecs = core.read_ivecs

--- Rows of a 2-D `.npy` array as a matrix (float32, C order; integer arrays
-- convert).
-- @function read_npy
M.read_npy = core.read_npy

--- Rows of one dataset of an HDF5 file: a matrix for floating-point data
-- ("train", "test", "distances"), arrays of integers for integer data
-- ("neighbors").
-- @function read_hdf5
-- @string path
-- @string dataset
-- @int[opt=0] first
-- @int[opt] count
M.read_hdf5 = core.read_hdf5

--- Starts writing an `.fvecs` or `.npy` file of dimension `d`.
-- `w:write(m)` appends the rows of a matrix (or a vector, or an array of
-- vectors), `w:close()` finishes the file and moves it into place (the rows
-- go to a temporary file until then), `w:abort()` drops it. As a `<close>`
-- variable it is kept on a normal exit and dropped on an error.
-- @function writer
-- @string path
-- @int d dimension
-- @string[opt] format "fvecs" or "npy" (default: from the extension)
M.writer = core.vector_writer

--- Writes a whole matrix to an `.fvecs` file; returns the row count.
-- @function write_fvecs
M.write_fvecs = core.write_fvecs

--- Writes a whole matrix to a `.npy` file (float32, C order).
-- @function write_npy
M.write_npy = core.write_npy

--- Writes one dataset to an HDF5 file: a matrix as float32, arrays of
-- integers as int32 (int64 when a value needs it).
-- @function write_hdf5
-- @string path
-- @string dataset
-- @param data a matrix or an array of arrays of integers
-- @bool[opt] append add to an existing file instead of creating it
M.write_hdf5 = core.write_hdf5

--- True when the module was built with HDF5.
-- @function hdf5_available
M.hdf5_available = core.hdf5_available

return M
