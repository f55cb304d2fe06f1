-- LuaRocks: `luarocks make` in a checkout builds the C engine and the Lua
-- module with the project's Makefile and installs them into the tree, with
-- the `vekterdb` command-line tool. Nothing is downloaded: the build uses the
-- Debian packages `make deps` installs (FAISS, OpenBLAS, SQLite, libpq, zstd,
-- HDF5) and the FAISS C API library that `make build` leaves in build/faiss_c
-- (BUILD=dir in the environment picks another build folder).
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

dependencies = {
  "lua >= 5.1",
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
