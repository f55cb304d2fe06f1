# bench/bench.mk: the benchmark suite (included by the Makefile)
#   make bench                 the 100k benchmark: table on stdout, JSON in bench/results/
#   make bench BENCH_N=1000000 the 1M one
#   make bench-data            only the cached dataset (build/bench-data/)
#   make bench-other-faiss     the benchmark on the other FAISS build (generic when the default is avx2),
#                              side by side with the last run on the default build
#   make bench-both            both, one after the other, then side by side

BENCH_N ?= 100000
BENCH_NQ ?= 10000
BENCH_D ?= 128
BENCH_DATA ?= build/bench-data
BENCH_RESULTS ?= bench/results
BENCH_DIR = $(BENCH_DATA)/d$(BENCH_D)-n$(BENCH_N)-q$(BENCH_NQ)
BENCH_GEN = $(BUILD)/bench/gen_data
BENCH_SO = $(BUILD)/bench/vkbench.so

.PHONY: bench bench-data

# (gen_data.c and datagen.c include datagen.h alone, besides FAISS's and the
# system's headers)
$(BENCH_GEN): bench/gen_data.c bench/datagen.c bench/datagen.h $(ENGINE_LIB) $(FAISS_C_LIB) $(FAISS_AVX2_LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS_ALL) -Ibench bench/gen_data.c bench/datagen.c -o $@ $(LIBS)

# cached: rebuilding the generator does not invalidate the data
$(BENCH_DIR)/gt.ivecs: | $(BENCH_GEN)
	@mkdir -p $(BENCH_DIR)
	$(BENCH_GEN) -n $(BENCH_N) -q $(BENCH_NQ) -d $(BENCH_D) $(BENCH_DIR)

bench-data: $(BENCH_DIR)/gt.ivecs

DEPS += $(BENCH_SO).d

$(BENCH_SO): bench/vkbench.c $(BENCH_SO).d $(ENGINE_LIB) $(FAISS_C_LIB) $(FAISS_AVX2_LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS_ALL) $(DEPFLAGS) -I$(LUA_INCDIR) -Ibindings -fvisibility=hidden $(LIBFLAG) \
	  bench/vkbench.c -o $@ $(ENGINE_LIB) $(LIBS) && touch $@

# which FAISS this build links: the label of the results ("debian" is
# Debian's generic libfaiss.a)
ifdef FAISS_PREFIX
BENCH_FAISS ?= $(patsubst faiss-%,%,$(notdir $(FAISS_PREFIX)))
else ifeq ($(FAISS_BUILD),avx2)
BENCH_FAISS ?= avx2
else
BENCH_FAISS ?= debian
endif

# The PostgreSQL rows run on BENCH_PG_URL when it is set, otherwise on a
# throw-away cluster (spec/support/pg.sh, in $(BUILD)/bench-pg) stopped and
# removed at the end; BENCH_PG=0 leaves them out.
BENCH_PG ?= 1
# The MySQL rows likewise: BENCH_MYSQL_URL, or a throw-away MariaDB
# (spec/support/mysql.sh, in $(BUILD)/bench-mysql); BENCH_MYSQL=0 leaves them out.
BENCH_MYSQL ?= 1
BENCH_RUN = BENCH_DATA_DIR=$(BENCH_DIR) BENCH_WORK=$(BUILD)/bench-work BENCH_RESULTS=$(BENCH_RESULTS) \
	  BENCH_FAISS=$(BENCH_FAISS) LUA_CPATH="$(CURDIR)/$(BUILD)/bench/?.so;$(LUA_CPATH)" \
	  $(LUA) bench/bench.lua

bench: build $(BENCH_SO) $(BENCH_DIR)/gt.ivecs
	@if [ -z "$(BENCH_MYSQL_URL)" ] && [ "$(BENCH_MYSQL)" = 1 ]; then \
	  trap 'BUILD=$(BUILD)/bench-mysql sh spec/support/mysql.sh stop' EXIT; \
	  myenv=$$(BUILD=$(BUILD)/bench-mysql sh spec/support/mysql.sh start) || exit 1; eval "$$myenv"; \
	  export BENCH_MYSQL_URL="$$VEKTERDB_TEST_MYSQL_URL" \
	    BENCH_MYSQL_LABEL="a throw-away MariaDB 10.11 on this machine (innodb_flush_log_at_trx_commit=2)"; \
	elif [ "$(BENCH_MYSQL)" = 1 ]; then export BENCH_MYSQL_URL="$(BENCH_MYSQL_URL)"; fi; \
	if [ -n "$(BENCH_PG_URL)" ] || [ "$(BENCH_PG)" != 1 ]; then \
	  BENCH_PG_URL="$(BENCH_PG_URL)" $(BENCH_RUN); \
	else \
	  trap 'BUILD=$(BUILD)/bench-pg sh spec/support/pg.sh stop; BUILD=$(BUILD)/bench-mysql sh spec/support/mysql.sh stop' EXIT; \
	  pgenv=$$(BUILD=$(BUILD)/bench-pg sh spec/support/pg.sh start) || exit 1; eval "$$pgenv"; \
	  BENCH_PG_URL="$$VEKTERDB_TEST_PG_URL" \
	  BENCH_PG_LABEL="a throw-away PostgreSQL 15 cluster on this machine (fsync off)" $(BENCH_RUN); \
	fi

# The other FAISS build, in a build folder of its own (the FAISS sources
# and C API stay shared): FAISS_BUILD=generic when the default is avx2
BENCH_OTHER_FAISS = $(if $(filter avx2,$(FAISS_BUILD)),generic,avx2)
BENCH_OTHER_BUILD ?= build-$(BENCH_OTHER_FAISS)
.PHONY: bench-other-faiss bench-both bench-compare
bench-other-faiss:
	@$(MAKE) --no-print-directory BUILD=$(BENCH_OTHER_BUILD) FAISS_C_DIR=$(FAISS_C_DIR) \
	  FAISS_BUILD=$(BENCH_OTHER_FAISS) bench
	@$(MAKE) --no-print-directory bench-compare

bench-both: bench bench-other-faiss

# the latest results of the two builds at BENCH_N, side by side
bench-compare:
	@$(LUA) bench/compare.lua bench/results/latest-n$(BENCH_N)-debian.json \
	  bench/results/latest-n$(BENCH_N)-avx2.json bench/results/compare-n$(BENCH_N).md

# The original's SIFT-1M tutorial, step by step (bench/tutorial.lua), on the
# 1M x 128 generated dataset (BENCH_TUTORIAL_DATA: another folder with
# train.fvecs, test.fvecs and gt.ivecs, e.g. converted from
# sift-128-euclidean.hdf5):
#   make bench-tutorial        on this build's FAISS
#   make bench-tutorial-both   then on the other FAISS build too
BENCH_TUTORIAL_N ?= 1000000
BENCH_TUTORIAL_DATA ?= $(BENCH_DATA)/d128-n$(BENCH_TUTORIAL_N)-q10000
.PHONY: bench-tutorial bench-tutorial-other bench-tutorial-both
$(BENCH_TUTORIAL_DATA)/gt.ivecs: | $(BENCH_GEN)
	@mkdir -p $(BENCH_TUTORIAL_DATA)
	$(BENCH_GEN) -n $(BENCH_TUTORIAL_N) -q 10000 -d 128 $(BENCH_TUTORIAL_DATA)

bench-tutorial: build $(BENCH_SO) $(BENCH_TUTORIAL_DATA)/gt.ivecs
	BENCH_DATA_DIR=$(BENCH_TUTORIAL_DATA) BENCH_WORK=$(BUILD)/bench-tutorial BENCH_RESULTS=$(BENCH_RESULTS) \
	  BENCH_FAISS=$(BENCH_FAISS) LUA=$(LUA) LUA_CPATH="$(CURDIR)/$(BUILD)/bench/?.so;$(LUA_CPATH)" \
	  $(LUA) bench/tutorial.lua

bench-tutorial-other:
	@$(MAKE) --no-print-directory BUILD=$(BENCH_OTHER_BUILD) FAISS_C_DIR=$(FAISS_C_DIR) \
	  FAISS_BUILD=$(BENCH_OTHER_FAISS) BENCH_TUTORIAL_DATA=$(BENCH_TUTORIAL_DATA) bench-tutorial

bench-tutorial-both: bench-tutorial bench-tutorial-other

# ---------------------------------------------------------------------------
# make bench-10m: 10,000,000 x 128 vectors inserted, indexed twice (IVF-PQ in
# memory, IVF-SQ8 with its lists on disk) and searched, each phase in a
# process of its own so that its peak resident memory is its own
# (bench/scale.sh, bench/scale.lua; docs/scale.md).
#   make bench-10m BENCH_SCALE_N=1000000   the same at 1M (minutes)
# The dataset is cached in build/bench-data/scale-d128-n<N>-q1000 (5.3 GB at
# 10M); the table and the indexes go to build/bench-scale/n<N> and are
# removed at the end unless BENCH_SCALE_KEEP=1; BENCH_SCALE_PHASES="index-disk
# search-disk" runs those phases again on a kept table.
BENCH_SCALE_N ?= 10000000
BENCH_SCALE_NQ ?= 1000
BENCH_SCALE_DIR = $(BENCH_DATA)/scale-d$(BENCH_D)-n$(BENCH_SCALE_N)-q$(BENCH_SCALE_NQ)
BENCH_SCALE_GEN = $(BUILD)/bench/gen_scale

$(BENCH_SCALE_GEN): bench/gen_scale.c bench/scale_gt.c bench/scale_gt.h bench/datagen.c bench/datagen.h \
	  $(ENGINE_LIB) $(FAISS_C_LIB) $(FAISS_AVX2_LIB)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS_ALL) -Ibench bench/gen_scale.c bench/scale_gt.c bench/datagen.c -o $@ $(LIBS)

.PHONY: bench-10m bench-scale-data
bench-scale-data: build $(BENCH_SCALE_GEN)
	@BENCH_SCALE_N=$(BENCH_SCALE_N) BENCH_SCALE_NQ=$(BENCH_SCALE_NQ) BENCH_SCALE_DATA=$(BENCH_SCALE_DIR) \
	  BENCH_SCALE_GEN=$(BENCH_SCALE_GEN) sh bench/scale.sh data

bench-10m: build $(BENCH_SO) $(BENCH_SCALE_GEN)
	@BENCH_SCALE_N=$(BENCH_SCALE_N) BENCH_SCALE_NQ=$(BENCH_SCALE_NQ) BENCH_SCALE_DATA=$(BENCH_SCALE_DIR) \
	  BENCH_SCALE_GEN=$(BENCH_SCALE_GEN) BENCH_SCALE_WORK=$(BUILD)/bench-scale/n$(BENCH_SCALE_N) \
	  BENCH_RESULTS=$(BENCH_RESULTS) BENCH_FAISS=$(BENCH_FAISS) LUA="$(LUA)" \
	  LUA_CPATH="$(CURDIR)/$(BUILD)/bench/?.so;$(LUA_CPATH)" sh bench/scale.sh all
