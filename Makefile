# VekterDB: C engine, Lua module, tests.
#   make build   the Lua 5.4 module: $(BUILD)/lua5.4/vekterdb/core.so
#   make demo    install what is missing, build, run examples/quickstart.lua
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

LUA ?= lua5.4
LUA_VERSION ?= 5.4
LUA_INCDIR ?= /usr/include/lua$(LUA_VERSION)
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

CFLAGS_ALL = -std=c11 $(OPT) -fPIC $(WARN) -D_GNU_SOURCE $(ENGINE_INC) -I$(PG_INCDIR) $(MYSQL_CFLAGS) $(HDF5_CFLAGS) $(EXTRA_CFLAGS)
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
FAISS_LIBS = $(FAISS_C_LIB) /usr/lib/x86_64-linux-gnu/libfaiss.a
endif
LIBS = $(FAISS_LIBS) -lopenblas -lsqlite3 -lpq $(MYSQL_LIBS) -lzstd -lcrypto $(HDF5_LIBS) -fopenmp -lstdc++ -lm -lpthread

ENGINE_CXX_OBJ = $(ENGINE_CXX:engine/%.cpp=$(BUILD)/obj/%.o)
ENGINE_OBJ = $(ENGINE_C:engine/%.c=$(BUILD)/obj/%.o) $(ENGINE_CXX_OBJ)
ENGINE_LIB = $(BUILD)/libvekterdb.a

BIND_C = $(wildcard bindings/*.c)
BIND_HDRS = $(wildcard bindings/*.h)
BIND_OBJ = $(BIND_C:bindings/%.c=$(BUILD)/lua$(LUA_VERSION)/obj/%.o)
CORE_SO = $(BUILD)/lua$(LUA_VERSION)/vekterdb/core.so

CTESTS = $(patsubst spec/c/%.c,$(BUILD)/ctest/%,$(wildcard spec/c/test_*.c))

# the .d files of every compiled target (the fragments add theirs)
DEPS = $(ENGINE_OBJ:=.d) $(BIND_OBJ:=.d) $(CTESTS:=.d)

# Debian packages, installed only when missing.
# `make build`:
BUILD_PACKAGES = gcc g++ make libfaiss-dev libopenblas-dev liblua5.4-dev lua5.4 \
	libzstd-dev libsqlite3-dev libpq-dev libmariadb-dev libhdf5-dev libssl-dev dpkg-dev ca-certificates
# `make test`: busted, the PostgreSQL server the specs start, lint
TEST_PACKAGES = lua-busted lua-cjson postgresql mariadb-server mariadb-client python3-sqlalchemy \
	python3-pymysql lua-check cppcheck
# `make check`: valgrind; OpenResty's LuaJIT and Debian's nginx with its lua
# module, curl and lfs (the OpenResty spec; luajit2 conflicts with Debian's
# `luajit` package: install only luajit2); luarocks (the #slow luarocks spec).
# The fragments add what their other targets need (EXTRA_PACKAGES).
CHECK_PACKAGES = valgrind luajit2 libluajit2-5.1-dev nginx-light libnginx-mod-http-lua curl \
	lua-filesystem luarocks
DEBIAN_PACKAGES = $(BUILD_PACKAGES) $(TEST_PACKAGES)

export LUA_PATH := $(CURDIR)/?.lua;$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(LUA_PATH);;
export LUA_CPATH := $(CURDIR)/$(BUILD)/lua$(LUA_VERSION)/?.so;$(LUA_CPATH);;

.PHONY: all deps deps-check build demo test check ctest spec clean install

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

# what the build and `make test` need
deps:
	$(call install_packages,$(DEBIAN_PACKAGES))

# ... and `make check` and the fragments' targets
deps-check:
	$(call install_packages,$(DEBIAN_PACKAGES) $(CHECK_PACKAGES) $(EXTRA_PACKAGES))

build: $(CORE_SO)

ifndef FAISS_PREFIX
$(FAISS_C_LIB):
	CXX=$(CXX) sh engine/tools/faiss-capi.sh $(FAISS_C_DIR)
endif

$(BUILD)/obj/%.o: engine/%.c $(BUILD)/obj/%.o.d
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS_ALL) $(DEPFLAGS) -c $< -o $@ && touch $@

$(BUILD)/obj/%.o: engine/%.cpp $(BUILD)/obj/%.o.d
	@mkdir -p $(dir $@)
	@echo "  CXX     $<"
	@$(CXX) $(CXXFLAGS_ALL) $(DEPFLAGS) -c $< -o $@ && touch $@

$(ENGINE_LIB): $(ENGINE_OBJ)
	@rm -f $@
	@echo "  AR      $@"
	@ar rcs $@ $^

$(BUILD)/lua$(LUA_VERSION)/obj/%.o: bindings/%.c $(BUILD)/lua$(LUA_VERSION)/obj/%.o.d
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS_ALL) $(DEPFLAGS) -I$(LUA_INCDIR) -fvisibility=hidden -c $< -o $@ && touch $@

$(CORE_SO): $(BIND_OBJ) $(ENGINE_LIB) $(FAISS_C_LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(LIBFLAG) -o $@ $(BIND_OBJ) $(ENGINE_LIB) $(LIBS)

$(BUILD)/ctest/%: spec/c/%.c $(BUILD)/ctest/%.d $(ENGINE_LIB) $(FAISS_C_LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS_ALL) $(DEPFLAGS) -Ispec/c $< -o $@ $(ENGINE_LIB) $(LIBS) && touch $@

# busted by hand on the module `make build` made: make spec SPEC=spec/filter_spec.lua
# (PostgreSQL: eval "$$(make -s pg-start)", then BACKEND=postgresql)
SPEC ?= spec
spec: build
	@VEKTERDB_TEST_BACKEND=$(or $(BACKEND),sqlite) $(BUSTED) --lua=$(LUA) $(SPEC)

demo: deps
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

clean:
	rm -rf $(BUILD)/obj $(BUILD)/lua* $(BUILD)/ctest $(BUILD)/libvekterdb.a

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
