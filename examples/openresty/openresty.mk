# examples/openresty/openresty.mk: the LuaJIT flavour of vekterdb.core
# (for nginx's lua module and OpenResty) and what the example and its spec need.
#   make luajit    builds $(BUILD)/luajit/vekterdb/core.so from the same bindings/*.c
#   make openresty-example PREFIX=dir   sets the example up under dir

LUAJIT_INCDIR ?= /usr/include/luajit-2.1

# luajit2, nginx and what the spec needs are in the Makefile's CHECK_PACKAGES
# (`make deps-check`); the load test adds wrk
EXTRA_PACKAGES += wrk

# the Makefile's own build with LuaJIT's headers: $(BUILD)/luajit/vekterdb/core.so

.PHONY: luajit openresty-example mmap-check bench-load

luajit:
	@$(MAKE) --no-print-directory build LUA_INCDIR=$(LUAJIT_INCDIR)

# the example set up under PREFIX: the code, the LuaJIT module and nginx.conf
# rendered from nginx.conf.in (examples/openresty/setup.lua, whose options
# OPENRESTY_OPTS passes: --listen, --workers, --config, --url, --openresty, ...)
openresty-example: luajit
	@test -n "$(PREFIX)" || { echo "usage: make openresty-example PREFIX=/some/dir [OPENRESTY_OPTS='--listen 127.0.0.1:9000']" >&2; exit 2; }
	@$(LUA) examples/openresty/setup.lua --prefix "$(PREFIX)" --core "$(BUILD)/luajit/vekterdb/core.so" $(OPENRESTY_OPTS)

DEPS += $(BUILD)/mmap_check.d

# which index types FAISS maps instead of copying (see README.md)
$(BUILD)/mmap_check: examples/openresty/mmap_check.c $(BUILD)/mmap_check.d $(FAISS_C_LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS_ALL) $(DEPFLAGS) $< -o $@ $(LIBS) && touch $@

MMAP_CHECK_N ?= 100000
mmap-check: $(BUILD)/mmap_check
	OMP_NUM_THREADS=1 $(BUILD)/mmap_check $(BUILD) $(MMAP_CHECK_N)

# the search service under wrk (loadtest.sh) on the benchmark's dataset; its
# figures go to bench/results beside the benchmark's
bench-load: deps-check
	@$(MAKE) --no-print-directory build luajit $(BENCH_DIR)/gt.ivecs
	@LOADTEST_DATA=$(BENCH_DIR) LOADTEST_JSON=$(BENCH_RESULTS)/load-n$(BENCH_N).json \
	  sh examples/openresty/loadtest.sh
