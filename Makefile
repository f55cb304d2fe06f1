# VekterDB: C engine, Lua module, tests.
#   make demo    install what is missing, build, run examples/quickstart.lua
#   make test    install what is missing, build, run every C test and spec
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
CFLAGS_ALL = -std=c11 $(OPT) -fPIC $(WARN) -D_GNU_SOURCE -Iengine -I/usr/include/postgresql $(EXTRA_CFLAGS)
CXXFLAGS_ALL = -std=c++17 $(OPT) -fPIC -Wall -Wextra -Werror -fopenmp -Iengine $(EXTRA_CFLAGS)

BUILD ?= build
# FAISS_PREFIX: use an installed libfaiss_c (and libfaiss) instead of building the C API
ifdef FAISS_PREFIX
FAISS_C_LIB = $(FAISS_PREFIX)/lib/libfaiss_c.a
FAISS_LIBS = $(FAISS_C_LIB) -L$(FAISS_PREFIX)/lib -lfaiss
CFLAGS_ALL += -I$(FAISS_PREFIX)/include
CXXFLAGS_ALL += -I$(FAISS_PREFIX)/include
else
FAISS_C_LIB = $(BUILD)/faiss_c/libfaiss_c.a
FAISS_LIBS = $(FAISS_C_LIB) /usr/lib/x86_64-linux-gnu/libfaiss.a
endif
LIBS = $(FAISS_LIBS) -lopenblas -lsqlite3 -lpq -lzstd -lcrypto -fopenmp -lstdc++ -lm -lpthread

ENGINE_C = $(wildcard engine/*.c)
ENGINE_OBJ = $(ENGINE_C:engine/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/faiss_ext.o
ENGINE_LIB = $(BUILD)/libvekterdb.a
ENGINE_HDR = $(wildcard engine/*.h)

BIND_C = $(wildcard bindings/*.c)
BIND_OBJ = $(BIND_C:bindings/%.c=$(BUILD)/lua$(LUA_VERSION)/obj/%.o)
CORE_SO = $(BUILD)/lua$(LUA_VERSION)/vekterdb/core.so

CTESTS = $(patsubst spec/c/%.c,$(BUILD)/ctest/%,$(wildcard spec/c/test_*.c))

DEBIAN_PACKAGES = gcc g++ make libfaiss-dev libopenblas-dev liblua5.4-dev lua5.4 \
	libzstd-dev libsqlite3-dev libpq-dev libssl-dev lua-cjson lua-busted dpkg-dev ca-certificates \
	postgresql $(EXTRA_PACKAGES)

export LUA_PATH := $(CURDIR)/?.lua;$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(LUA_PATH);;
export LUA_CPATH := $(CURDIR)/$(BUILD)/lua$(LUA_VERSION)/?.so;$(LUA_CPATH);;

.PHONY: all deps build demo test ctest spec clean install

all: build

# Debian packages the build and the tests need; installed only when missing
deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f '$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing >/dev/null; \
	fi

build: $(CORE_SO)

$(BUILD)/faiss_c/libfaiss_c.a:
	CXX=$(CXX) sh engine/tools/faiss-capi.sh $(BUILD)/faiss_c

$(BUILD)/obj/%.o: engine/%.c $(ENGINE_HDR)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/obj/faiss_ext.o: engine/faiss_ext.cpp $(ENGINE_HDR)
	@mkdir -p $(dir $@)
	@echo "  CXX     $<"
	@$(CXX) $(CXXFLAGS_ALL) -c $< -o $@

$(ENGINE_LIB): $(ENGINE_OBJ)
	@rm -f $@
	@echo "  AR      $@"
	@ar rcs $@ $^

$(BUILD)/lua$(LUA_VERSION)/obj/%.o: bindings/%.c bindings/lvk.h bindings/compat.h engine/vekterdb.h
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS_ALL) -I$(LUA_INCDIR) -fvisibility=hidden -c $< -o $@

$(CORE_SO): $(BIND_OBJ) $(ENGINE_LIB) $(FAISS_C_LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(LIBFLAG) -o $@ $(BIND_OBJ) $(ENGINE_LIB) $(LIBS)

$(BUILD)/ctest/%: spec/c/%.c spec/c/ctest.h $(ENGINE_LIB) $(FAISS_C_LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS_ALL) -Ispec/c $< -o $@ $(ENGINE_LIB) $(LIBS)

demo: deps
	@$(MAKE) --no-print-directory build
	$(LUA) examples/quickstart.lua

ctest: $(CTESTS)

test: deps
	@$(MAKE) --no-print-directory build ctest
	@sh spec/run.sh

install: build
	@test -n "$(INST_LIBDIR)" -a -n "$(INST_LUADIR)" || { echo "set INST_LIBDIR and INST_LUADIR"; exit 1; }
	mkdir -p $(INST_LIBDIR)/vekterdb $(INST_LUADIR)/vekterdb
	cp $(CORE_SO) $(INST_LIBDIR)/vekterdb/core.so
	cp lua/vekterdb.lua $(INST_LUADIR)/vekterdb.lua
	cp lua/vekterdb/*.lua $(INST_LUADIR)/vekterdb/
	@# the command-line tool, when a bin folder is given (LuaRocks installs it
	@# itself from the rockspec's install.bin)
	@if [ -n "$(INST_BINDIR)" ]; then mkdir -p $(INST_BINDIR) && cp bin/vekterdb $(INST_BINDIR)/vekterdb; fi

# parts of the build kept beside the code they serve
-include spec/support/pg.mk
-include bench/bench.mk
-include examples/openresty/openresty.mk
-include spec/support/reliability.mk
-include bin/tools.mk

clean:
	rm -rf $(BUILD)/obj $(BUILD)/lua* $(BUILD)/ctest $(BUILD)/libvekterdb.a
