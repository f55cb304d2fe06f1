# bin/tools.mk: the Lua ecosystem's part of the build, included by the
# Makefile: vector files (HDF5), LuaRocks, the API reference and lint.
#   make docs    API reference from the Lua sources (LDoc) into $(BUILD)/docs
#   make lint    luacheck on lua/ bin/ spec/ examples/, cppcheck on engine/ bindings/
#   make VK_HDF5=0 ...   builds without HDF5 (the HDF5 readers then refuse)

EXTRA_PACKAGES += libhdf5-dev luarocks lua-ldoc lua-check cppcheck

# Debian keeps HDF5 under hdf5/serial; pkg-config knows where when it is there
VK_HDF5 ?= 1
ifeq ($(VK_HDF5),0)
HDF5_CFLAGS := -DVK_NO_HDF5
HDF5_LIBS :=
else
HDF5_CFLAGS := $(shell pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial)
HDF5_LIBS := $(shell pkg-config --libs hdf5 2>/dev/null || echo -L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5)
endif
LIBS += $(HDF5_LIBS)

IO_HDR = engine/vk_io.h engine/vk_io_impl.h
$(BUILD)/obj/io_vecs.o: $(IO_HDR)
$(BUILD)/obj/io_hdf5.o: $(IO_HDR)
$(BUILD)/obj/io_hdf5.o: CFLAGS_ALL += $(HDF5_CFLAGS)
$(BUILD)/lua$(LUA_VERSION)/obj/lvk_io.o: engine/vk_io.h
$(BUILD)/ctest/test_io: engine/vk_io.h
$(BUILD)/ctest/test_io: CFLAGS_ALL += $(HDF5_CFLAGS)

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
	  -D__GNUC__ -Iengine -Ibindings engine bindings
