# spec/support/pg.mk: PostgreSQL helpers for running specs by hand (included
# by the Makefile; libpq's flags are the Makefile's own).
#   make pg-start / pg-stop   a throw-away cluster in $(BUILD)/pgtest, for running specs by hand:
#                             eval "$$(make -s pg-start)"

.PHONY: pg-start pg-stop
pg-start:
	@BUILD=$(BUILD) sh spec/support/pg.sh start
pg-stop:
	@BUILD=$(BUILD) sh spec/support/pg.sh stop
