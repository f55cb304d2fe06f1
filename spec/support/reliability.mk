# spec/support/reliability.mk: sanitizer, valgrind and fuzzing builds
# (included by the Makefile).
#   make test-asan       C tests and busted suite with AddressSanitizer + UBSan
#   make test-valgrind   C tests under valgrind memcheck: no byte definitely lost
# (make check runs both: spec/run.sh's asan and valgrind parts)
#   make fuzz FUZZ_SECONDS=60   each libFuzzer target for that long
#   make fuzz-faiss      FAISS's own reader on mutated index files
# faiss_reader runs with leak detection off: FAISS leaks the parts of an
# index it had read when it rejects a file half way, and allocates whatever
# sizes a file claims.  A table never hands FAISS a file it did not save
# (engine/account_trust.c); fuzz_index checks that.
# fuzz_config and fuzz_where run with leak detection off too: Lua's collector
# frees an input's garbage during later inputs, so nearly every input ends
# with more allocations than frees and libFuzzer reruns it under a full
# LeakSanitizer scan (fuzz_where: 38 instead of 630 inputs a second) that
# only ever sees garbage not collected yet.

# valgrind is in the Makefile's CHECK_PACKAGES; the fuzz targets need clang
EXTRA_PACKAGES += clang libclang-rt-14-dev

SAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
ASAN_BUILD = build-asan

.PHONY: asan-build test-asan test-valgrind fuzz fuzz-build fuzz-faiss

# the sanitizer flavour of the module and C tests, in $(ASAN_BUILD) (FAISS's
# C API, compiled the same way, is the default build's); spec/run.sh runs it
asan-build:
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) FAISS_C_DIR=$(FAISS_C_DIR) \
	  OPT="-O1 -g $(SAN_FLAGS)" LIBFLAG="-shared $(SAN_FLAGS)" build ctest

# only the sanitizer pass (make check runs it too)
test-asan: deps-check
	@sh spec/run.sh asan

# only the C tests under valgrind memcheck (make check runs it too; the
# valgrind options are spec/run.sh's)
test-valgrind: deps-check
	@sh spec/run.sh valgrind

# ---------- libFuzzer ----------
FUZZ_SECONDS ?= 60
FUZZ_BUILD = build-fuzz
FUZZ_TARGETS = $(patsubst spec/fuzz/%.c,$(FUZZ_BUILD)/%,$(wildcard spec/fuzz/fuzz_*.c))
# the engine sources the small targets (fuzz_codec, fuzz_url) compile: the
# only engine file names in the build, so fuzzing them stays cheap; update
# them when those files move (make fuzz-build says which is missing)
FUZZ_ENGINE_C = engine/base_codec.c engine/base_url.c engine/base_error.c engine/base_util.c

$(FUZZ_BUILD)/fuzz_%: spec/fuzz/fuzz_%.c $(FUZZ_ENGINE_C) $(ENGINE_HDRS)
	@mkdir -p $(dir $@)
	clang -std=c11 -g -O1 -D_GNU_SOURCE $(ENGINE_INC) -fsanitize=fuzzer,address,undefined \
	  $< $(FUZZ_ENGINE_C) -o $@ -lzstd

# index files opened for a table (fuzz_index), and handed straight to FAISS's
# reader (faiss_reader, `make fuzz-faiss`): the whole engine, FAISS not
# instrumented (spec/fuzz/new_limit.cpp: allocations over 16 MiB fail while
# FAISS reads, as a mutated size field would otherwise make it allocate that
# much, and leak it)
$(FUZZ_BUILD)/new_limit.o: spec/fuzz/new_limit.cpp
	@mkdir -p $(dir $@)
	clang++ -std=c++17 -g -O1 -fsanitize=address -c $< -o $@

$(FUZZ_BUILD)/fuzz_index $(FUZZ_BUILD)/faiss_reader: $(FUZZ_BUILD)/%: spec/fuzz/%.c spec/fuzz/index_input.h $(FUZZ_BUILD)/new_limit.o \
		$(ENGINE_LIB) $(FAISS_C_LIB)
	clang -std=c11 -g -O1 -D_GNU_SOURCE $(ENGINE_INC) -DVK_SRC_DIR='"$(CURDIR)"' -fsanitize=fuzzer,address \
	  $< $(FUZZ_BUILD)/new_limit.o -o $@ $(ENGINE_LIB) $(LIBS)

# fuzz_config and fuzz_where host a Lua 5.4 interpreter that runs
# lua/vekterdb.lua over a copy of the C module (bindings and engine) compiled
# here with clang for fuzzing: $(CORE_SO) comes first for the FAISS C API and
# the engine's C++ objects that copy links. liblua5.4 (and FAISS) are not instrumented:
# coverage guidance comes from the harness's own decoding of the input and
# from the C module, not from the Lua VM. HDF5 is left out: they read no
# vector files.
FUZZ_LUA_TARGETS = $(FUZZ_BUILD)/fuzz_config $(FUZZ_BUILD)/fuzz_where
FUZZ_CMOD_DIR = $(FUZZ_BUILD)/lua$(LUA_VERSION)
FUZZ_CORE_SO = $(FUZZ_CMOD_DIR)/vekterdb/core.so
FUZZ_LUA_SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined

$(FUZZ_CORE_SO): $(CORE_SO) $(BIND_C) $(ENGINE_C) $(ENGINE_HDRS) $(BIND_HDRS)
	@mkdir -p $(dir $@)
	clang -std=c11 -g -O1 -fPIC -shared -D_GNU_SOURCE -DVK_NO_HDF5 $(ENGINE_INC) -I$(PG_INCDIR) \
	  -I$(LUA_INCDIR) -fvisibility=hidden -fsanitize=fuzzer-no-link $(FUZZ_LUA_SAN) \
	  $(BIND_C) $(ENGINE_C) $(ENGINE_CXX_OBJ) -o $@ $(LIBS)

$(FUZZ_LUA_TARGETS): $(FUZZ_BUILD)/%: spec/fuzz/%.c spec/fuzz/lua_host.h $(FUZZ_CORE_SO)
	@mkdir -p $(dir $@)
	clang -std=c11 -g -O1 -D_GNU_SOURCE -I$(LUA_INCDIR) -fsanitize=fuzzer $(FUZZ_LUA_SAN) \
	  -DVK_SRC_DIR='"$(CURDIR)"' -DVK_CMOD_DIR='"$(CURDIR)/$(FUZZ_CMOD_DIR)"' $< -o $@ -llua$(LUA_VERSION)

fuzz-build: deps-check $(FUZZ_TARGETS)

# FAISS's own reader on mutated files: crashes FAISS 1.7.3 (docs/reliability.md)
fuzz-faiss: deps-check $(FUZZ_BUILD)/faiss_reader
	@$(MAKE) --no-print-directory fuzz FUZZ_TARGETS=$(FUZZ_BUILD)/faiss_reader

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  name=$$(basename $$t); corpus=$(FUZZ_BUILD)/corpus-$$name; mkdir -p $$corpus; \
	  seeds=$$(echo $$name | sed 's/^faiss_reader$$/fuzz_index/'); \
	  cp spec/fuzz/seeds/$$seeds/* $$corpus/ 2>/dev/null || true; \
	  echo "== $$name for $(FUZZ_SECONDS)s"; \
	  ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=$$(case $$name in faiss_reader|fuzz_config|fuzz_where) echo 0;; *) echo 1;; esac) \
	  $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -malloc_limit_mb=2048 -rss_limit_mb=3072 \
	      -artifact_prefix=$(FUZZ_BUILD)/$$name- \
	      $$( [ -f spec/fuzz/$$name.dict ] && echo -dict=spec/fuzz/$$name.dict ) $$corpus \
	      > $(FUZZ_BUILD)/$$name.log 2>&1; rc=$$?; \
	  grep -E 'stat::number_of_executed_units|stat::average_exec_per_sec|ERROR|SUMMARY|Done' $(FUZZ_BUILD)/$$name.log; \
	  if [ $$rc -ne 0 ]; then echo "$$name failed (exit status $$rc): $(FUZZ_BUILD)/$$name.log"; status=1; fi; \
	done; exit $${status:-0}
