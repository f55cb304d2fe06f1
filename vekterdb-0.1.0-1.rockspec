-- LuaRocks, the released version: `make rock` packs this rockspec with its
-- source archive into vekterdb-0.1.0-1.src.rock, which
-- `luarocks install ./vekterdb-0.1.0-1.src.rock` builds and installs with no
-- network (FAISS's C API sources are in the archive, under vendor/). The
-- version is the C engine's VK_VERSION (vekterdb._VERSION); make rock checks
-- that they agree. The build is the one of vekterdb-scm-1.rockspec (read its
-- notes): the two differ only in version and source.
rockspec_format = "3.0"
package = "vekterdb"
version = "0.1.0-1"

source = {
  -- in the .src.rock beside this file (or beside it in a folder, for
  -- `luarocks build vekterdb-0.1.0-1.rockspec`)
  url = "vekterdb-0.1.0.tar.gz",
  dir = "vekterdb-0.1.0",
}

description = {
  summary = "An SQL table of records paired with a FAISS index, for Lua",
  detailed = [[
VekterDB keeps records in an SQL table (SQLite or PostgreSQL) and pairs it
with any FAISS index a factory string describes. FAISS proposes candidates,
VekterDB reranks them by the exact metric from the stored vectors and returns
records as Lua tables. Includes readers for .fvecs/.ivecs/.bvecs, .npy and
ann-benchmarks HDF5 files, and the `vekterdb` command-line tool.
]],
  license = "MIT",
  labels = { "database", "vector", "faiss", "ann", "sqlite" },
}

-- built and tested on Lua 5.1, 5.3, 5.4 and LuaJIT 2.1 (which LuaRocks
-- counts as 5.1); not Lua 5.2. db:save() and vekterdb.load() also need the
-- lua-cjson module, left out here so that an install works offline
-- (Debian: lua-cjson; or `luarocks install lua-cjson`).
dependencies = {
  "lua >= 5.1, < 5.5, ~= 5.2",
}

build = {
  type = "make",
  -- the same variables for the build and the install pass, so `make install`
  -- finds everything up to date
  variables = {
    LUA_INCDIR = "$(LUA_INCDIR)",
    LIBFLAG = "$(LIBFLAG)",
    EXTRA_CFLAGS = "$(CFLAGS)",
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
  },
  build_target = "build",
  install_target = "install",
  install = {
    bin = { vekterdb = "bin/vekterdb" },
  },
  copy_directories = { "examples" },
}
