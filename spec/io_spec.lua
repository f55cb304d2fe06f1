-- Vector files from Lua: round trips, chunked reads and malformed files.
local vekterdb = require "vekterdb"
local vio = require "vekterdb.io"
local H = require "spec.helper"

local function matrix(n, d, seed)
  local r = H.rng(seed or 5)
  local m = vekterdb.matrix(n, d)
  for i = 1, n do m[i] = r.vector(d) end
  return m
end

local function write_file(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function le32(v) return string.pack("<i4", v) end

describe("vector file round trips", function()
  local m = matrix(257, 16)

  for _, ext in ipairs({ "fvecs", "npy" }) do
    it("writes and reads back an ." .. ext .. " file", function()
      local p = H.path("m." .. ext)
      assert.are.equal(257, vio["write_" .. ext](p, m))
      local back = vio["read_" .. ext](p)
      assert.are.equal(257, #back)
      assert.are.equal(16, back.d)
      assert.is_true(back == m)
      local f = vio.open(p)
      assert.are.equal(ext, f.format)
      assert.are.equal("float32", f.dtype)
      assert.are.equal(257, f.rows)
      assert.are.equal(16, f.dim)
      assert.are.equal(257, #f)
      assert.matches("vekterdb.VectorFile%(.*m%." .. ext .. ", float32, 257 x 16%)", tostring(f))
      f:close()
    end)
  end

  it("reads a row range with 0-based first rows, cut at the end", function()
    local p = H.path("range.fvecs")
    vio.write_fvecs(p, m)
    local part = vio.read_fvecs(p, 10, 5)
    assert.are.equal(5, #part)
    assert.are.same(m[11]:totable(), part[1]:totable())
    assert.are.same(m[15]:totable(), part[5]:totable())
    assert.are.equal(7, #vio.read_fvecs(p, 250, 100))
    assert.are.equal(0, #vio.read_fvecs(p, 257))
    assert.matches("row 300 is past the end: the file holds 257 rows",
                   H.error_of(vio.read_fvecs, p, 300))
    assert.matches("first row must be a non%-negative integer", H.error_of(vio.read_fvecs, p, -1))
  end)

  it("streams a file in chunks", function()
    local p = H.path("chunks.npy")
    vio.write_npy(p, m)
    local f = vio.open(p)
    local firsts, rows = {}, 0
    for c, first in f:chunks(100) do
      firsts[#firsts + 1] = first
      assert.are.same(m[first + 1]:totable(), c[1]:totable())
      rows = rows + #c
    end
    assert.are.same({ 0, 100, 200 }, firsts)
    assert.are.equal(257, rows)
    local n = 0
    for c in f:chunks(10, 250, 5) do n = n + #c end
    assert.are.equal(5, n)
    f:close()
    assert.matches("attempt to use a closed vector file", H.error_of(f.read, f))
  end)

  it("writes through a writer in pieces, and the file appears only when closed", function()
    local p = H.path("pieces.fvecs")
    local w = vio.writer(p, 16)
    assert.are.equal(1, w:write(m[1]))
    assert.are.equal(3, w:write({ m[2], m[3]:totable() }))
    assert.is_nil(io.open(p, "rb"))
    assert.are.equal(3, w:close())
    assert.are.equal(3, #vio.read_fvecs(p))
    assert.matches("closed vector writer", H.error_of(w.write, w, m[1]))
    local p2 = H.path("aborted.npy")
    local w2 = vio.writer(p2, 16)
    w2:write(m[1])
    w2:abort()
    assert.is_nil(io.open(p2, "rb"))
    local w3 = vio.writer(H.path("y.npy"), 16)
    assert.matches("dimension 8, expected 16", H.error_of(w3.write, w3, vekterdb.vector(8)))
    w3:abort()
  end)

  it("reads TEXMEX .ivecs as ids and .bvecs as floats", function()
    local p = H.path("gt.ivecs")
    write_file(p, le32(3) .. le32(5) .. le32(6) .. le32(7) .. le32(3) .. le32(8) .. le32(9) .. le32(10))
    assert.are.same({ { 5, 6, 7 }, { 8, 9, 10 } }, vio.read_ivecs(p))
    assert.are.equal("integer", math.type(vio.read_ivecs(p)[1][1]))
    assert.are.same({ { 5, 6, 7 }, { 8, 9, 10 } }, vio.read(p))
    assert.are.same({ 8, 9, 10 }, vio.read(p, { as_float = true })[2]:totable())
    local b = H.path("b.bvecs")
    write_file(b, le32(2) .. "\255\0" .. le32(2) .. "\1\2")
    assert.are.same({ { 255, 0 }, { 1, 2 } }, vio.read_bvecs(b):totable())
  end)

  it("reads and writes ann-benchmarks HDF5 datasets", function()
    if not vio.hdf5_available() then pending("built without HDF5") return end
    local p = H.path("ann.hdf5")
    assert.are.equal(257, vio.write_hdf5(p, "train", m))
    vio.write_hdf5(p, "test", matrix(3, 16, 9), true)
    vio.write_hdf5(p, "neighbors", { { 1, 2 }, { 3, 4 }, { 5, 6 } }, true)
    vio.write_hdf5(p, "distances", vekterdb.matrix({ { 0.5, 1 }, { 2, 3 }, { 4, 5 } }), true)
    assert.is_true(vio.read_hdf5(p, "train") == m)
    assert.are.same({ { 3, 4 }, { 5, 6 } }, vio.read_hdf5(p, "neighbors", 1))
    assert.are.equal(0.5, vio.read_hdf5(p, "distances")[1][1])
    local f = vio.open(p)
    assert.are.equal("train", f.dataset)
    assert.are.equal("hdf5", f.format)
    f:close()
    f = vio.open(p, { dataset = "neighbors" })
    assert.is_true(f.is_integer)
    f:close()
    f = vio.open(p, { dataset = "test" })
    assert.matches("not integer ids", H.error_of(f.read_ids, f))
    f:close()
    assert.matches("already has a dataset 'test'", H.error_of(vio.write_hdf5, p, "test", m, true))
    -- int64 when a value needs it
    local big = H.path("big.hdf5")
    vio.write_hdf5(big, "ids", { { 2 ^ 40, 1 } })
    assert.are.same({ { 2 ^ 40, 1 } }, vio.read_hdf5(big, "ids"))
  end)
end)

describe("malformed vector files", function()
  local m = matrix(4, 8)

  it("refuses a truncated .fvecs file, naming the row size", function()
    local p = H.path("t.fvecs")
    vio.write_fvecs(p, m)
    local bytes = read_file(p)
    write_file(p, bytes:sub(1, #bytes - 3))
    assert.matches("truncated or not an %.fvecs file: 141 bytes is not a whole number of rows of 36 bytes",
                   H.error_of(vio.read_fvecs, p))
  end)

  it("refuses an .fvecs file whose header is wrong", function()
    local p = H.path("h.fvecs")
    write_file(p, le32(0) .. le32(0))
    assert.matches("declares dimension 0", H.error_of(vio.read_fvecs, p))
    write_file(p, "")
    assert.matches("empty file", H.error_of(vio.read_fvecs, p))
    -- a row in the middle that disagrees
    vio.write_fvecs(p, m)
    local bytes = read_file(p)
    write_file(p, bytes:sub(1, 36) .. le32(9) .. bytes:sub(41))
    assert.matches("row 1 declares dimension 9, the first row 8", H.error_of(vio.read_fvecs, p))
    -- the rows before it are still there
    assert.are.equal(1, #vio.read_fvecs(p, 0, 1))
  end)

  it("reads a float64 .npy (numpy's default) as float32, and says so once per file", function()
    local p = H.path("f64.npy")
    local h = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }"
    h = h .. string.rep(" ", 64 - 10 - #h - 1) .. "\n"
    write_file(p, "\147NUMPY\1\0" .. string.pack("<I2", #h) .. h
      .. string.pack("<dddddd", 1, 2.5, -3, 4, 1e300, 0.1))
    local lines = {}
    local old = vekterdb.log.sink
    vekterdb.log.sink = function(level, msg) lines[#lines + 1] = level .. ": " .. msg end
    local ok, err = pcall(function()
      local f = vio.open(p)
      assert.are.equal("float64", f.dtype)
      assert.are.equal(3, f.rows)
      local seen = {}
      for chunk in f:chunks(1) do seen[#seen + 1] = chunk[1]:totable() end
      f:close()
      assert.are.same({ { 1, 2.5 }, { -3, 4 } }, { seen[1], seen[2] })
      assert.are.equal(math.huge, seen[3][1])            -- beyond float32: infinite, as numpy's astype
      assert.is_true(math.abs(seen[3][2] - 0.1) < 1e-7)
      assert.are.same({ 1, 2.5 }, vio.read_npy(p)[1]:totable())
    end)
    vekterdb.log.sink = old
    assert(ok, err)
    -- one warning for each opening (vio.open, then read_npy), none per chunk
    assert.are.equal(2, #lines)
    assert.are.equal("warn: " .. p .. " holds float64 values: they are read as float32 (VekterDB's vectors "
      .. "are float32)", lines[1])
  end)

  it("refuses .npy files with a wrong magic, dtype, order, shape or size", function()
    local p = H.path("bad.npy")
    local function npy(dict, data)
      local h = dict .. "\n"
      write_file(p, "\147NUMPY\1\0" .. string.pack("<I2", #h) .. h .. (data or ""))
    end
    local data = string.rep("\0", 24)
    npy("{'descr': '>f8', 'fortran_order': False, 'shape': (3, 1), }", data)
    assert.matches("unsupported %.npy dtype '>f8'", H.error_of(vio.read_npy, p))
    npy("{'descr': '<c8', 'fortran_order': False, 'shape': (3, 1), }", data)
    assert.matches("unsupported %.npy dtype '<c8'", H.error_of(vio.read_npy, p))
    npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", data)
    assert.matches("Fortran", H.error_of(vio.read_npy, p))
    npy("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", data)
    assert.matches("is 1%-D; expected a 2%-D array", H.error_of(vio.read_npy, p))
    npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }", data)
    assert.matches("truncated %.npy file: shape %(4, 3%) of float32 needs 48 data bytes, the file holds 24",
                   H.error_of(vio.read_npy, p))
    write_file(p, "not numpy at all")
    assert.matches("not an %.npy file", H.error_of(vio.read_npy, p))
    assert.matches("No such file", H.error_of(vio.read_npy, H.path("missing.npy")))
  end)

  it("refuses HDF5 files that are truncated, not HDF5, or lack the dataset", function()
    if not vio.hdf5_available() then pending("built without HDF5") return end
    local p = H.path("a.hdf5")
    vio.write_hdf5(p, "train", matrix(100, 8))
    local bytes = read_file(p)
    local cut = H.path("cut.hdf5")
    write_file(cut, bytes:sub(1, math.floor(#bytes / 2)))
    assert.matches("truncated or damaged", H.error_of(vio.read_hdf5, cut, "train"))
    assert.matches("has no dataset 'test'; it holds: train", H.error_of(vio.read_hdf5, p, "test"))
    local junk = H.path("junk.hdf5")
    write_file(junk, string.rep("x", 1000))
    assert.matches("not an HDF5 file", H.error_of(vio.read_hdf5, junk, "train"))
  end)

  it("needs a format when the extension gives none", function()
    local p = H.path("vectors.bin")
    write_file(p, "x")
    assert.matches("cannot tell the format from the file name", H.error_of(vio.open, p))
    assert.matches("unknown vector file format 'csv'",
                   H.error_of(vio.open, p, { format = "csv" }))
  end)
end)
