# bin/tools.mk: the Lua ecosystem's part of the build, included by the
# Makefile: the API reference and lint.  (HDF5's flags, `make VK_HDF5=0`,
# and the packages lint needs are the Makefile's own.)
#   make docs    API reference from the Lua sources (LDoc) into $(BUILD)/docs
#   make lint    luacheck on lua/ bin/ spec/ examples/, cppcheck on engine/ bindings/

EXTRA_PACKAGES += lua-ldoc

# ---------- API reference ----------
LDOC ?= ldoc

.PHONY: docs lint lint-lua lint-c lint-layers

docs:
	@mkdir -p $(BUILD)/docs
	$(LDOC) --config config.ld --dir $(BUILD)/docs .
	@echo "API reference: $(BUILD)/docs/index.html"

# ---------- lint ----------
LUACHECK ?= luacheck
CPPCHECK ?= cppcheck

lint: lint-lua lint-c lint-layers

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
