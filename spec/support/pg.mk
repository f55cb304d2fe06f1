# spec/support/pg.mk: PostgreSQL parts of the build and of the test run
# (included by the Makefile).
#   make pg-start / pg-stop   a throw-away cluster in $(BUILD)/pgtest, for running specs by hand:
#                             eval "$$(make -s pg-start)"

# libpq's header lives outside the default include path on Debian
PG_INCDIR ?= $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
CFLAGS_ALL += -I$(PG_INCDIR)

.PHONY: pg-start pg-stop
pg-start:
	@BUILD=$(BUILD) sh spec/support/pg.sh start
pg-stop:
	@BUILD=$(BUILD) sh spec/support/pg.sh stop
