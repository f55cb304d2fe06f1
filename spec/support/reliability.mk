# spec/support/reliability.mk: sanitizer, valgrind and fuzzing builds
# (included by the Makefile).
#   make test-asan       C tests and busted suite with AddressSanitizer + UBSan
#   make test-valgrind   C tests under valgrind memcheck: no byte definitely lost
#   make fuzz FUZZ_SECONDS=60   each libFuzzer target for that long
# fuzz_index runs with leak detection off: FAISS leaks the parts of an index
# it had read when it rejects a file half way, which is FAISS's, not ours.
# It also allocates whatever sizes a file claims before reading them, so a
# hostile index file can ask for gigabytes: index files are trusted input.

EXTRA_PACKAGES += valgrind clang libclang-rt-14-dev

SAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
ASAN_BUILD = build-asan

.PHONY: asan-build test-asan test-valgrind fuzz fuzz-build

# the sanitizer flavour of the module and C tests, in $(ASAN_BUILD); spec/run.sh runs it
asan-build:
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) OPT="-O1 -g $(SAN_FLAGS)" \
	  LIBFLAG="-shared $(SAN_FLAGS)" build ctest

# only the sanitizer pass (make test runs it too, after the plain one)
test-asan: deps asan-build
	@VEKTERDB_TEST_ONLY_ASAN=1 sh spec/run.sh

VALGRIND = valgrind --quiet --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite \
	--show-leak-kinds=definite --suppressions=spec/support/valgrind.supp

test-valgrind: deps
	@$(MAKE) --no-print-directory build ctest
	@status=0; for t in $(CTESTS); do \
	  echo "== valgrind $$t"; \
	  $(VALGRIND) $$t > $(BUILD)/$$(basename $$t).valgrind.tap 2>&1 || status=1; \
	  grep -E '^not ok|definitely lost|ERROR SUMMARY|Invalid|uninitialised' $(BUILD)/$$(basename $$t).valgrind.tap; \
	done; \
	if [ $$status -ne 0 ]; then echo "valgrind found problems"; exit 1; fi; echo "valgrind: clean"

# ---------- libFuzzer ----------
FUZZ_SECONDS ?= 60
FUZZ_BUILD = build-fuzz
FUZZ_TARGETS = $(patsubst spec/fuzz/%.c,$(FUZZ_BUILD)/%,$(wildcard spec/fuzz/fuzz_*.c))
FUZZ_ENGINE_C = engine/codec.c engine/url.c engine/error.c engine/util.c

$(FUZZ_BUILD)/fuzz_%: spec/fuzz/fuzz_%.c $(FUZZ_ENGINE_C) $(ENGINE_HDR)
	@mkdir -p $(dir $@)
	clang -std=c11 -g -O1 -D_GNU_SOURCE -Iengine -fsanitize=fuzzer,address,undefined \
	  $< $(FUZZ_ENGINE_C) -o $@ -lzstd

# index files go through FAISS itself: the whole engine, FAISS not instrumented
$(FUZZ_BUILD)/fuzz_index: spec/fuzz/fuzz_index.c $(ENGINE_LIB) $(FAISS_C_LIB)
	@mkdir -p $(dir $@)
	clang -std=c11 -g -O1 -D_GNU_SOURCE -Iengine -fsanitize=fuzzer,address \
	  $< -o $@ $(ENGINE_LIB) $(LIBS)

fuzz-build: deps $(FUZZ_TARGETS)

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  name=$$(basename $$t); corpus=$(FUZZ_BUILD)/corpus-$$name; mkdir -p $$corpus; \
	  cp spec/fuzz/seeds/$$name/* $$corpus/ 2>/dev/null || true; \
	  echo "== $$name for $(FUZZ_SECONDS)s"; \
	  ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=$$( [ $$name = fuzz_index ] && echo 0 || echo 1 ) \
	  $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -malloc_limit_mb=2048 -rss_limit_mb=3072 \
	      $$( [ -f spec/fuzz/$$name.dict ] && echo -dict=spec/fuzz/$$name.dict ) $$corpus \
	      2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Done' || exit 1; \
	done
