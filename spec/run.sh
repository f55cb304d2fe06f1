#!/bin/sh
# spec/run.sh: every C test and busted spec, then one closing line
# "N passed, N failed" for CI.  Run through `make test`.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
LUA=${LUA:-lua5.4}
out="$BUILD/test-output"
mkdir -p "$out"
passed=0
failed=0

# counts TAP lines "ok N" / "not ok N" of a log; "ok N - # SKIP" (busted's
# pending) is neither
count() {
    s=$(grep -cE '^ok [0-9]+ - # SKIP' "$1")
    p=$(($(grep -cE '^ok [0-9]+' "$1") - s))
    f=$(grep -cE '^not ok [0-9]+' "$1")
    passed=$((passed + p))
    failed=$((failed + f))
    echo "   $p passed, $f failed, $s skipped"
}

# run_ctests [SUFFIX]: every engine C test (TAP)
run_ctests() {
    for t in "$BUILD"/ctest/test_*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")${1:-}
        echo "== C test $name"
        log="$out/$name.tap"
        "$t" > "$log" 2>&1
        rc=$?
        grep -E '^not ok' "$log" | head -20
        if [ $rc -ne 0 ] && ! grep -qE '^not ok' "$log"; then
            echo "not ok 999 $name exited with status $rc" >> "$log"
            tail -5 "$log"
        fi
        count "$log"
    done
}

# run_busted LABEL LUA_INTERPRETER BACKEND [PATTERN]
run_busted() {
    label=$1 interp=$2 backend=$3 pattern=${4:-_spec}
    echo "== busted: $label"
    log="$out/busted-$label.tap"
    (
        if [ -n "${PRELOAD:-}" ]; then export LD_PRELOAD="$PRELOAD"; fi
        VEKTERDB_TEST_BACKEND=$backend \
            busted --lua="$interp" -o TAP --pattern="$pattern" ${BUSTED_EXTRA:-} spec
    ) > "$log" 2>&1
    rc=$?
    # a failing test prints its message after "not ok": show them
    awk '/^not ok/{show=1} /^ok /{show=0} show' "$log" | head -60
    if [ $rc -ne 0 ] && ! grep -qE '^not ok' "$log"; then
        echo "not ok 999 busted ($label) exited with status $rc" >> "$log"
        tail -20 "$log"
    fi
    count "$log"
}

# run_asan: the C tests and the busted suite (specs tagged #slow left out)
# again, built with AddressSanitizer and UndefinedBehaviorSanitizer
run_asan() {
    [ "${VEKTERDB_TEST_ASAN:-1}" = 1 ] || return 0
    echo "== building the AddressSanitizer + UBSan flavour"
    if ! make --no-print-directory asan-build > "$out/asan-build.log" 2>&1; then
        tail -30 "$out/asan-build.log"
        echo "   the sanitizer build failed"
        failed=$((failed + 1))
        return
    fi
    (
        BUILD=build-asan
        export LUA_CPATH="$PWD/build-asan/lua$LUA_VERSION/?.so;;"
        export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
        export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
        passed=0 failed=0
        run_ctests -asan
        # libstdc++ with the runtime: ASan must see C++'s throw before the module loads
        PRELOAD="$(${CC:-cc} -print-file-name=libasan.so) $(${CC:-cc} -print-file-name=libstdc++.so)" \
        BUSTED_EXTRA="--exclude-tags=slow" \
            run_busted sqlite-lua5.4-asan "$LUA" sqlite
        echo "$passed $failed" > "$out/asan.counts"
    )
    read p f < "$out/asan.counts"
    passed=$((passed + p))
    failed=$((failed + f))
}

# run_pg: the busted suite on PostgreSQL: the server of VEKTERDB_TEST_PG_URL,
# or a throw-away cluster (spec/support/pg.sh) removed even when tests fail
run_pg() {
    if [ -n "${VEKTERDB_TEST_PG_URL:-}" ]; then
        run_busted postgresql-lua5.4 "$LUA" postgresql
        return
    fi
    trap 'BUILD=$BUILD sh spec/support/pg.sh stop' EXIT
    trap 'exit 130' INT TERM
    if ! pgenv=$(BUILD=$BUILD sh spec/support/pg.sh start); then
        echo "not ok 999 the PostgreSQL test server did not start"
        failed=$((failed + 1))
        return
    fi
    eval "$pgenv"
    run_busted postgresql-lua5.4 "$LUA" postgresql
    BUILD=$BUILD sh spec/support/pg.sh stop
    trap - EXIT INT TERM
    unset VEKTERDB_TEST_PG_URL
}

# run_luajit: the specs again under LuaJIT with its build of vekterdb.core
# (examples/openresty/openresty.mk).  lua5.4 processes that specs start keep
# the Lua 5.4 build through LUA_CPATH_5_4, which LuaJIT ignores.  Left out:
# #slow specs (FAISS-bound: the same C code under both), the OpenResty spec
# (it runs once, under Lua 5.4), and specs whose harness needs Lua 5.2+:
# cli_spec (exit codes from io.popen():close()), io_spec (string.pack), and
# delete_spec's child process (it hands its LuaJIT package.cpath to lua5.4).
run_luajit() {
    LUA_CPATH_5_4="${LUA_CPATH:-}" LUA_CPATH="$PWD/$BUILD/luajit/?.so;;" \
    BUSTED_EXTRA="--exclude-tags=slow --exclude-pattern=openresty_spec --exclude-pattern=cli_spec --exclude-pattern=io_spec --filter-out=seen.by.another.process" \
        run_busted sqlite-luajit luajit sqlite
}

# run_lint: luacheck and cppcheck (make lint), one test that passes when
# both are clean
run_lint() {
    echo "== lint"
    if make --no-print-directory lint > "$out/lint.log" 2>&1; then
        echo "   1 passed, 0 failed, 0 skipped"
        passed=$((passed + 1))
    else
        grep -vE '^\s*$' "$out/lint.log" | tail -30
        echo "not ok 999 make lint found problems"
        failed=$((failed + 1))
    fi
}

LUA_VERSION=${LUA_VERSION:-5.4}
export VEKTERDB_LUAJIT_CORE="${VEKTERDB_LUAJIT_CORE:-$PWD/$BUILD/luajit/vekterdb/core.so}"
if [ "${VEKTERDB_TEST_ONLY_ASAN:-0}" != 1 ]; then
run_lint
run_ctests
run_busted sqlite-lua5.4 "$LUA" sqlite
run_luajit
run_pg
fi
run_asan

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
