# bin/tools.mk: the Lua ecosystem's part of the build, included by the
# Makefile: the API reference and lint.  (HDF5's flags, `make VK_HDF5=0`,
# and the other packages lint needs are the Makefile's own.)
#   make docs    API reference from the Lua sources (LDoc) into $(BUILD)/docs;
#                fails on any LDoc warning
#   make lint    luacheck on lua/ bin/ spec/ examples/, cppcheck on engine/
#                bindings/, the engine's layers, and `make docs` without a warning

# `make lint` (and so `make test`) builds the reference: LDoc and the
# Markdown it formats with (Discount) are test packages
TEST_PACKAGES += lua-ldoc lua-discount

# ---------- API reference ----------
LDOC ?= ldoc

.PHONY: docs lint lint-lua lint-c lint-layers lint-docs

# config.ld names the sources (lua/ and the doc-only docs/api/).  LDoc
# reports most problems as a line on its output and exits 0, so any line
# but its three notices fails the target: the reference builds clean or
# not at all (its log: $(BUILD)/docs.log).
LDOC_NOTICES = ^(reading configuration from |found master module|\*\*\*closing section from master module|output written to )
docs:
	@rm -rf $(BUILD)/docs && mkdir -p $(BUILD)/docs
	@$(LDOC) --fatalwarnings --config config.ld --dir $(BUILD)/docs . > $(BUILD)/docs.log 2>&1; \
	  rc=$$?; \
	  if [ $$rc -ne 0 ] || grep -qvE '$(LDOC_NOTICES)' $(BUILD)/docs.log; then \
	    grep -vE '$(LDOC_NOTICES)' $(BUILD)/docs.log; \
	    echo "make docs: LDoc warned or failed (exit status $$rc): the reference must build without a warning" >&2; \
	    exit 1; \
	  fi
	@echo "API reference: $(BUILD)/docs/index.html"

# ---------- lint ----------
LUACHECK ?= luacheck
CPPCHECK ?= cppcheck

lint: lint-lua lint-c lint-layers lint-docs

# the API reference builds without a warning (spec/docs_spec.lua checks
# that it covers every public function)
lint-docs: docs

# the engine's layers call and include downward only (bin/layers.sh)
lint-layers: $(ENGINE_LIB)
	@sh bin/layers.sh $(BUILD)/obj

lint-lua:
	$(LUACHECK) --quiet lua bin/vekterdb spec examples

# cppcheck on our C (system headers are not analysed: missingIncludeSystem);
# bin/cppcheck.cfg names the functions that raise a Lua error and never
# return, bin/cppcheck.supp the findings checked by hand
lint-c:
	$(CPPCHECK) --quiet --error-exitcode=1 --std=c11 --inline-suppr \
	  --enable=warning,performance,portability --library=bin/cppcheck.cfg \
	  --suppress=missingIncludeSystem --suppressions-list=bin/cppcheck.supp \
	  -D__GNUC__ $(ENGINE_INC) -Ibindings engine bindings
