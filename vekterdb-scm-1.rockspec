-- LuaRocks: `luarocks make` in a checkout builds the C engine and the Lua
-- module with the project's Makefile and installs them into the tree, with
-- the `vekterdb` command-line tool, for the Lua LuaRocks targets: Lua 5.1,
-- 5.3, 5.4 (`luarocks --lua-version 5.x make`) or LuaJIT 2.1 (README.md,
-- Install). The Makefile reads the Lua version from the headers in
-- LUA_INCDIR. Nothing is downloaded from LuaRocks' servers: the build uses
-- the Debian packages `make deps-build` installs (FAISS, OpenBLAS, SQLite,
-- libpq, zstd, HDF5) and builds FAISS's C API from Debian's faiss source
-- into build/faiss_c once (BUILD=dir in the environment picks another build
-- folder). vekterdb-<version>-1.rockspec is the released version's (`make rock`).
rockspec_format = "3.0"
package = "vekterdb"
version = "scm-1"

source = {
  url = "git+file:///dev/null/vekterdb",   -- `luarocks make` builds the checkout it runs in
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
