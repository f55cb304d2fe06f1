# VekterDB: C engine, Lua module, tests.
#   make build   the Lua 5.4 module: $(BUILD)/lua5.4/vekterdb/core.so (another
#                Lua: LUA_VERSION=5.1|5.3, or LUA_INCDIR, see below)
#   make demo    install the build's missing packages, build, run examples/quickstart.lua
#   make rock    the release's source rock (README.md, Install)
#   make test    the everyday loop (about 1 minute on 2 cores): lint, the C
#                tests, the specs on SQLite and on PostgreSQL, without the
#                specs tagged #slow, #stress or #openresty
#   make check   everything (about 20 minutes; CI runs it): make test's parts
#                with every tag, LuaJIT, OpenResty, AddressSanitizer + UBSan,
#                valgrind
# Both end with one line "N passed, N failed" (spec/run.sh).
#
# Everything the module's build needs is here; the fragments included at the
# end (bench, OpenResty/LuaJIT, PostgreSQL helpers, sanitizers and fuzzing,
# docs and lint) only add targets, and `make build` works without any of them.
#
# LuaRocks and distributions drive the build through LUA_INCDIR, LIBFLAG,
# INST_LIBDIR and INST_LUADIR, and optionally INST_BINDIR (see `make install`).

# Which Lua the module is built for: the headers in LUA_INCDIR decide (what
# LuaRocks passes), LUA_VERSION names the default headers when LUA_INCDIR is
# not given.  Lua 5.1, 5.3, 5.4 and LuaJIT 2.1 (LUA_INCDIR=/usr/include/luajit-2.1):
# each gets its own folder $(BUILD)/$(LUA_FLAVOUR) for the binding; the
# engine and FAISS objects are shared.  LUA_VERSION ends up as the headers'.
LUA_INCDIR ?= /usr/include/lua$(or $(LUA_VERSION),5.4)
LUA_HEADER_VERSION := $(shell awk '$$1 == "\#define" && $$2 == "LUA_VERSION_NUM" { print int($$3 / 100) "." $$3 % 100 }' $(LUA_INCDIR)/lua.h 2>/dev/null)
ifneq ($(LUA_HEADER_VERSION),)
ifeq ($(origin LUA_VERSION),command line)
ifneq ($(LUA_VERSION),$(LUA_HEADER_VERSION))
$(error LUA_VERSION=$(LUA_VERSION), but $(LUA_INCDIR)/lua.h is Lua $(LUA_HEADER_VERSION))
endif
endif
LUA_VERSION := $(LUA_HEADER_VERSION)
endif
LUA_VERSION ?= 5.4
# (LuaJIT's folder named before its headers are installed: `make deps-build LUA_INCDIR=...luajit-2.1`)
LUA_FLAVOUR := $(if $(or $(wildcard $(LUA_INCDIR)/luajit.h),$(findstring luajit,$(LUA_INCDIR))),luajit,lua$(LUA_VERSION))
LUA ?= $(if $(filter luajit,$(LUA_FLAVOUR)),luajit,lua$(LUA_VERSION))
LIBFLAG ?= -shared
BUSTED ?= busted

CC ?= cc
CXX ?= g++
OPT ?= -O2 -g
WARN = -Wall -Wextra -Werror -Wmissing-prototypes

BUILD ?= build

# libpq's header lives outside the default include path on Debian
ifndef PG_INCDIR
PG_INCDIR := $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
endif

# MariaDB Connector/C (the MySQL and MariaDB driver)
ifndef MYSQL_CFLAGS
MYSQL_CFLAGS := $(shell mariadb_config --cflags 2>/dev/null || echo -I/usr/include/mariadb)
endif
ifndef MYSQL_LIBS
MYSQL_LIBS := $(shell mariadb_config --libs 2>/dev/null || echo -lmariadb)
endif

# HDF5 (the vector-file readers): Debian keeps it under hdf5/serial, and
# pkg-config knows where when it is there.  `make VK_HDF5=0 ...` builds
# without it (the HDF5 readers then refuse).
VK_HDF5 ?= 1
ifeq ($(VK_HDF5),0)
HDF5_CFLAGS := -DVK_NO_HDF5
HDF5_LIBS :=
else
ifndef HDF5_CFLAGS
HDF5_CFLAGS := $(shell pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial)
endif
ifndef HDF5_LIBS
HDF5_LIBS := $(shell pkg-config --libs hdf5 2>/dev/null || echo -L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5)
endif
endif

# The engine: every .c and .cpp in engine/ and in its sub-folders (tools/
# holds scripts), headers found in any of them.  No file is named here: what
# each object includes comes from the compiler (DEPFLAGS, below).
ENGINE_DIRS := engine $(filter-out engine/tools,$(patsubst %/,%,$(wildcard engine/*/)))
ENGINE_INC := $(addprefix -I,$(ENGINE_DIRS))
ENGINE_C := $(foreach d,$(ENGINE_DIRS),$(wildcard $(d)/*.c))
ENGINE_CXX := $(foreach d,$(ENGINE_DIRS),$(wildcard $(d)/*.cpp))
ENGINE_HDRS := $(foreach d,$(ENGINE_DIRS),$(wildcard $(d)/*.h))

CFLAGS_ALL = -std=c11 $(OPT) -fPIC $(WARN) -fopenmp -D_GNU_SOURCE $(ENGINE_INC) -I$(PG_INCDIR) $(MYSQL_CFLAGS) $(HDF5_CFLAGS) $(EXTRA_CFLAGS)
CXXFLAGS_ALL = -std=c++17 $(OPT) -fPIC -Wall -Wextra -Werror -fopenmp $(ENGINE_INC) $(EXTRA_CFLAGS)

# Header dependencies: every compile writes TARGET.d next to its target
# (-MMD: the headers it included; -MP: an empty rule per header, so a header
# renamed or deleted does not stop the build).  A target whose .d is missing
# (built before this rule existed) is rebuilt once; `touch` keeps the target
# newer than its .d.
DEPFLAGS = -MMD -MP -MT $@ -MF $@.d

# FAISS_PREFIX: use an installed libfaiss_c (and libfaiss) instead of building the C API
ifdef FAISS_PREFIX
FAISS_C_LIB = $(FAISS_PREFIX)/lib/libfaiss_c.a
FAISS_LIBS = $(FAISS_C_LIB) -L$(FAISS_PREFIX)/lib -lfaiss
CFLAGS_ALL += -I$(FAISS_PREFIX)/include
CXXFLAGS_ALL += -I$(FAISS_PREFIX)/include
else
# FAISS_C_DIR: where the C API is built (other flavours, such as the
# sanitizer build, share the default build's: it is compiled the same way)
FAISS_C_DIR ?= $(BUILD)/faiss_c
FAISS_C_LIB = $(FAISS_C_DIR)/libfaiss_c.a
# FAISS_BUILD: which libfaiss.a the module links.  "avx2" (the default on a
# CPU with AVX2, FMA and F16C) is FAISS 1.7.3 compiled from the same Debian
# source with FAISS's own avx2 level, in $(FAISS_C_DIR)/avx2 (about 2.5
# minutes on 2 cores, once); "generic" is Debian's libfaiss.a, which runs on
# any x86-64.  A module built for avx2 refuses to load on a CPU without it.
FAISS_BUILD ?= $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo && \
	grep -qw f16c /proc/cpuinfo && echo avx2 || echo generic)
ifeq ($(FAISS_BUILD),avx2)
FAISS_AVX2_LIB = $(FAISS_C_DIR)/avx2/lib/libfaiss.a
FAISS_LIBS = $(FAISS_C_LIB) $(FAISS_AVX2_LIB)
CFLAGS_ALL += -DVK_FAISS_AVX2
else ifeq ($(FAISS_BUILD),generic)
FAISS_LIBS = $(FAISS_C_LIB) /usr/lib/x86_64-linux-gnu/libfaiss.a
else
$(error FAISS_BUILD must be avx2 or generic, not '$(FAISS_BUILD)')
endif
# the engine knows which build it links (vk_faiss_build): a build folder
# switched to the other FAISS_BUILD compiles it again
FAISS_STAMP := $(BUILD)/obj/faiss-build
$(shell mkdir -p $(BUILD)/obj && { echo $(FAISS_BUILD) | cmp -s - $(FAISS_STAMP) || echo $(FAISS_BUILD) > $(FAISS_STAMP); })
endif
LIBS = $(FAISS_LIBS) -lopenblas -lsqlite3 -lpq $(MYSQL_LIBS) -lzstd -lcrypto $(HDF5_LIBS) -fopenmp -lstdc++ -lm -lpthread

ENGINE_CXX_OBJ = $(ENGINE_CXX:engine/%.cpp=$(BUILD)/obj/%.o)
ENGINE_OBJ = $(ENGINE_C:engine/%.c=$(BUILD)/obj/%.o) $(ENGINE_CXX_OBJ)
ENGINE_LIB = $(BUILD)/libvekterdb.a

BIND_C = $(wildcard bindings/*.c)
BIND_HDRS = $(wildcard bindings/*.h)
BIND_OBJ = $(BIND_C:bindings/%.c=$(BUILD)/$(LUA_FLAVOUR)/obj/%.o)
CORE_SO = $(BUILD)/$(LUA_FLAVOUR)/vekterdb/core.so

CTESTS = $(patsubst spec/c/%.c,$(BUILD)/ctest/%,$(wildcard spec/c/test_*.c))

# the .d files of every compiled target (the fragments add theirs)
DEPS = $(ENGINE_OBJ:=.d) $(BIND_OBJ:=.d) $(CTESTS:=.d)

# Debian packages, installed only when missing.
# `make build` and `make demo`: the compiler, FAISS, OpenBLAS, the Lua built
# for (LUA_PACKAGES) with lua-cjson (save/load), zstd, SQLite, and the headers
# of what the module links (libpq, MariaDB Connector/C, HDF5, OpenSSL's libcrypto); dpkg-dev and
# ca-certificates fetch FAISS's source for its C API (engine/tools/faiss-capi.sh);
# cmake builds FAISS at its avx2 level (FAISS_BUILD=avx2, engine/tools/faiss-avx2.sh)
LUA_PACKAGES = $(or $(LUA_PACKAGES_$(LUA_FLAVOUR)),lua$(LUA_VERSION) liblua$(LUA_VERSION)-dev)
LUA_PACKAGES_lua5.1 = lua5.1 liblua5.1-0-dev
LUA_PACKAGES_luajit = luajit2 libluajit2-5.1-dev
BUILD_PACKAGES = gcc g++ make cmake libfaiss-dev libopenblas-dev $(LUA_PACKAGES) lua-cjson \
	libzstd-dev libsqlite3-dev libpq-dev libmariadb-dev libhdf5-dev libssl-dev dpkg-dev ca-certificates
# `make test`: busted, the PostgreSQL and MariaDB servers the specs start
# (SQLAlchemy and PyMySQL: the Python side of the MySQL interop spec), lint
TEST_PACKAGES = lua-busted postgresql mariadb-server mariadb-client python3-sqlalchemy \
	python3-pymysql lua-check cppcheck
# `make check`: valgrind; OpenResty's LuaJIT and Debian's nginx with its lua
# module, curl and lfs (the OpenResty spec; luajit2 conflicts with Debian's
# `luajit` package: install only luajit2); luarocks and the other Luas (the
# #slow luarocks spec installs the rock for each).
# The fragments add what their other targets need (EXTRA_PACKAGES).
CHECK_PACKAGES = valgrind luajit2 libluajit2-5.1-dev nginx-light libnginx-mod-http-lua curl \
	lua-filesystem luarocks lua5.1 liblua5.1-0-dev lua5.3 liblua5.3-dev
DEBIAN_PACKAGES = $(BUILD_PACKAGES) $(TEST_PACKAGES)

export LUA_PATH := $(CURDIR)/?.lua;$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(LUA_PATH);;
export LUA_CPATH := $(CURDIR)/$(BUILD)/$(LUA_FLAVOUR)/?.so;$(LUA_CPATH);;

.PHONY: all deps deps-build deps-check build demo test check ctest spec clean install lua-headers rock

all: build

# install_packages LIST: apt-get install the packages of LIST not installed yet
define install_packages
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f '$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing >/dev/null; \
	fi
endef

# what the build and the demo need
deps-build:
	$(call install_packages,$(BUILD_PACKAGES))

# ... and `make test`
deps:
	$(call install_packages,$(DEBIAN_PACKAGES))

# ... and `make check` and the fragments' targets
deps-check:
	$(call install_packages,$(DEBIAN_PACKAGES) $(CHECK_PACKAGES) $(EXTRA_PACKAGES))

build: $(CORE_SO)

# the headers the binding is compiled with: there, and of a Lua we build for
lua-headers:
	@case "$(LUA_HEADER_VERSION)" in \
	  5.1|5.3|5.4) ;; \
	  "") case "$(LUA_FLAVOUR)" in lua5.1|lua5.3|lua5.4|luajit) ;; \
	      *) echo "VekterDB builds for Lua 5.1, 5.3, 5.4 and LuaJIT 2.1, not Lua $(LUA_VERSION)" >&2; exit 1 ;; esac; \
	      echo "no Lua headers in $(LUA_INCDIR) (lua.h): install them (make deps-build with the same LUA_VERSION or LUA_INCDIR) or set LUA_INCDIR" >&2; exit 1 ;; \
	  *) echo "$(LUA_INCDIR)/lua.h is Lua $(LUA_HEADER_VERSION): VekterDB builds for Lua 5.1, 5.3, 5.4 and LuaJIT 2.1" >&2; exit 1 ;; \
	esac

ifndef FAISS_PREFIX
$(FAISS_C_LIB):
	CXX=$(CXX) sh engine/tools/faiss-capi.sh $(FAISS_C_DIR)

# the avx2 libfaiss.a, from the source faiss-capi.sh fetched
$(FAISS_AVX2_LIB): | $(FAISS_C_LIB)
	CXX=$(CXX) sh engine/tools/faiss-avx2.sh $(FAISS_C_DIR)/avx2 $(FAISS_C_DIR)
endif

$(BUILD)/obj/%.o: engine/%.c $(BUILD)/obj/%.o.d
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS_ALL) $(DEPFLAGS) -c $< -o $@ && touch $@

$(BUILD)/obj/%.o: engine/%.cpp $(BUILD)/obj/%.o.d
	@mkdir -p $(dir $@)
	@echo "  CXX     $<"
	@$(CXX) $(CXXFLAGS_ALL) $(DEPFLAGS) -c $< -o $@ && touch $@

$(ENGINE_OBJ): $(FAISS_STAMP)

$(ENGINE_LIB): $(ENGINE_OBJ)
	@rm -f $@
	@echo "  AR      $@"
	@ar rcs $@ $^

$(BUILD)/$(LUA_FLAVOUR)/obj/%.o: bindings/%.c $(BUILD)/$(LUA_FLAVOUR)/obj/%.o.d | lua-headers
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS_ALL) $(DEPFLAGS) -I$(LUA_INCDIR) -fvisibility=hidden -c $< -o $@ && touch $@

$(CORE_SO): $(BIND_OBJ) $(ENGINE_LIB) $(FAISS_C_LIB) $(FAISS_AVX2_LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(LIBFLAG) -o $@ $(BIND_OBJ) $(ENGINE_LIB) $(LIBS)

$(BUILD)/ctest/%: spec/c/%.c $(BUILD)/ctest/%.d $(ENGINE_LIB) $(FAISS_C_LIB) $(FAISS_AVX2_LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS_ALL) $(DEPFLAGS) -Ispec/c $< -o $@ $(ENGINE_LIB) $(LIBS) && touch $@

# busted by hand on the module `make build` made: make spec SPEC=spec/filter_spec.lua
# (PostgreSQL: eval "$$(make -s pg-start)", then BACKEND=postgresql)
SPEC ?= spec
spec: build
	@VEKTERDB_TEST_BACKEND=$(or $(BACKEND),sqlite) $(BUSTED) --lua=$(LUA) $(SPEC)

demo: deps-build
	@$(MAKE) --no-print-directory build
	$(LUA) examples/quickstart.lua

ctest: $(CTESTS)

# spec/run.sh builds what it runs, runs it, and prints the closing line
test: deps
	@sh spec/run.sh test

check: deps-check
	@sh spec/run.sh check

install: build
	@test -n "$(INST_LIBDIR)" -a -n "$(INST_LUADIR)" || { echo "set INST_LIBDIR and INST_LUADIR"; exit 1; }
	mkdir -p $(INST_LIBDIR)/vekterdb $(INST_LUADIR)/vekterdb
	cp $(CORE_SO) $(INST_LIBDIR)/vekterdb/core.so
	cp lua/vekterdb.lua $(INST_LUADIR)/vekterdb.lua
	cp lua/vekterdb/*.lua $(INST_LUADIR)/vekterdb/
	@# the command-line tool, when a bin folder is given (LuaRocks installs it
	@# itself from the rockspec's install.bin)
	@if [ -n "$(INST_BINDIR)" ]; then mkdir -p $(INST_BINDIR) && cp bin/vekterdb $(INST_BINDIR)/vekterdb; fi

# the release: vekterdb-$(VK_VERSION)-1.src.rock from vekterdb-$(VK_VERSION)-1.rockspec,
# with FAISS's C API sources inside (bin/rock.sh), written into ROCK_DIR (the
# checkout's root unless told): `luarocks install` builds it offline
VK_VERSION := $(shell sed -n 's/^\#define VK_VERSION "\(.*\)"$$/\1/p' engine/vekterdb.h)
ROCK_DIR ?= .
rock: $(FAISS_C_LIB)
	@sh bin/rock.sh $(VK_VERSION) $(or $(FAISS_C_DIR),$(BUILD)/faiss_c) $(BUILD)/rock $(ROCK_DIR)

clean:
	rm -rf $(BUILD)/obj $(BUILD)/lua* $(BUILD)/ctest $(BUILD)/libvekterdb.a $(BUILD)/rock

# parts of the build kept beside the code they serve: optional targets only
-include spec/support/pg.mk
-include bench/bench.mk
-include examples/openresty/openresty.mk
-include spec/support/reliability.mk
-include bin/tools.mk

# the header dependencies the compiler found; a missing .d file makes its
# target out of date (the empty rule), so it is rebuilt and its .d written
$(DEPS): ;
include $(wildcard $(DEPS))
