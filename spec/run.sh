#!/bin/sh
# spec/run.sh: the one test runner.  Builds what a mode runs, runs it, and
# ends with one closing line "N passed, N failed" (the totals over every
# part; exit status 1 when anything failed).  Each part's TAP log is in
# $BUILD/test-output/.
#
#   sh spec/run.sh test       make test: lint, the C tests, the specs on
#                             SQLite, PostgreSQL and MariaDB (Lua 5.4), without the
#                             specs tagged #slow, #stress or #openresty
#   sh spec/run.sh check      make check: everything.  make test's parts with
#                             every tag, then LuaJIT, the AddressSanitizer +
#                             UBSan build, and the C tests under valgrind
#   sh spec/run.sh asan       make test-asan: only the sanitizer part
#   sh spec/run.sh valgrind   make test-valgrind: only the valgrind part
#
# Tags (in a describe's or an it's name):
#   #slow       minutes of work (100,000-vector recall, 50 kills of a writer,
#               the tutorial, luarocks): make check only, and not under the
#               sanitizers or LuaJIT, which run the same C code
#   #stress     the stress spec: make check only, SQLite and PostgreSQL
#   #openresty  needs nginx and the LuaJIT build: make check only
# A single spec file by hand: make spec SPEC=spec/filter_spec.lua (on
# PostgreSQL: eval "$(make -s pg-start)", then BACKEND=postgresql; on MariaDB:
# eval "$(sh spec/support/mysql.sh start)", then BACKEND=mysql).
set -u
cd "$(dirname "$0")/.."
mode=${1:-test}
case $mode in
test | check | asan | valgrind) ;;
*)
    echo "usage: sh spec/run.sh [test|check|asan|valgrind]" >&2
    exit 2
    ;;
esac
BUILD=${BUILD:-build}
LUA=${LUA:-lua5.4}
LUA_VERSION=${LUA_VERSION:-5.4}
MAKE=${MAKE:-make}
out="$BUILD/test-output"
mkdir -p "$out"
rm -f "$out"/*.tap "$out"/*.log "$out"/*.counts "$out"/times "$out"/summary
passed=0
failed=0
started=$(date +%s)

# count LOG: adds the TAP lines "ok N" / "not ok N" of a log to the totals;
# "ok N - # SKIP" (busted's pending) is neither
count() {
    s=$(grep -cE '^ok [0-9]+ - # SKIP' "$1")
    p=$(($(grep -cE '^ok [0-9]+' "$1") - s))
    f=$(grep -cE '^not ok [0-9]+' "$1")
    passed=$((passed + p))
    failed=$((failed + f))
    echo "   $p passed, $f failed, $s skipped ($(($(date +%s) - section_start)) s)"
}

# section NAME: starts a part (its time is printed with its counts and kept
# for the summary at the end)
section() {
    end_section
    section_name=$1
    section_start=$(date +%s)
    echo "== $1"
}
section_name=
section_start=$started
end_section() {
    if [ -n "$section_name" ]; then
        printf '%6d s  %s\n' $(($(date +%s) - section_start)) "$section_name" >> "$out/times"
    fi
    section_name=
}

# fail_one NAME: one failed test that is not a TAP line of some log
fail_one() {
    echo "not ok 999 $1"
    failed=$((failed + 1))
}

# build TARGET...: make TARGET..., its output in $out/build-FIRST.log
build() {
    log="$out/build-$1.log"
    if ! $MAKE --no-print-directory "$@" > "$log" 2>&1; then
        grep -vE '^\s*$' "$log" | tail -30
        return 1
    fi
}

# run_ctests [SUFFIX [WRAPPER...]]: every engine C test (TAP), optionally
# under a wrapper command (valgrind)
run_ctests() {
    suffix=${1:-}
    [ $# -gt 0 ] && shift
    for t in "$BUILD"/ctest/test_*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")$suffix
        section "C test $name"
        log="$out/$name.tap"
        "$@" "$t" > "$log" 2>&1
        rc=$?
        grep -E '^not ok' "$log" | head -20
        if [ $rc -ne 0 ] && ! grep -qE '^not ok' "$log"; then
            echo "not ok 999 $name exited with status $rc" >> "$log"
            tail -15 "$log"
        fi
        count "$log"
    done
}

# run_busted LABEL LUA_INTERPRETER BACKEND [BUSTED OPTIONS...]
run_busted() {
    label=$1 interp=$2 backend=$3
    shift 3
    section "busted: $label"
    log="$out/busted-$label.tap"
    (
        if [ -n "${PRELOAD:-}" ]; then export LD_PRELOAD="$PRELOAD"; fi
        VEKTERDB_TEST_BACKEND=$backend \
            busted --lua="$interp" -o spec/support/tap_timed.lua --pattern=_spec "$@" spec
    ) > "$log" 2>&1
    rc=$?
    # a failing test prints its message after "not ok": show them
    awk '/^not ok/{show=1} /^ok |^# time /{show=0} show' "$log" | head -60
    if [ $rc -ne 0 ] && ! grep -qE '^not ok' "$log"; then
        echo "not ok 999 busted ($label) exited with status $rc" >> "$log"
        tail -20 "$log"
    fi
    count "$log"
}

# the busted tags each mode leaves out
QUICK_EXCLUDE="--exclude-tags=slow,stress,openresty"

# run_lint: luacheck and cppcheck (make lint), one test that passes when
# both are clean
run_lint() {
    section "lint"
    if $MAKE --no-print-directory lint > "$out/lint.log" 2>&1; then
        echo "ok 1 - make lint" > "$out/lint.tap"
    else
        grep -vE '^\s*$' "$out/lint.log" | tail -30
        echo "not ok 1 - make lint found problems" > "$out/lint.tap"
    fi
    count "$out/lint.tap"
}

# run_server BACKEND SCRIPT LABEL URLVAR [BUSTED OPTIONS...]: the busted
# suite on a database server: the one URLVAR names, or a throw-away one that
# spec/support/SCRIPT starts and removes, even when tests fail
run_server() {
    backend=$1 script=$2 label=$3 urlvar=$4
    shift 4
    eval "given=\${$urlvar:-}"
    if [ -n "$given" ]; then
        run_busted "$backend-lua5.4" "$LUA" "$backend" "$@"
        return
    fi
    section "$label: a throw-away server"
    trap "BUILD=$BUILD sh spec/support/$script stop" EXIT
    trap 'exit 130' INT TERM
    if ! env=$(BUILD=$BUILD sh "spec/support/$script" start 2> "$out/$backend-start.log"); then
        cat "$out/$backend-start.log"
        fail_one "the $label test server did not start"
        return
    fi
    eval "$env"
    run_busted "$backend-lua5.4" "$LUA" "$backend" "$@"
    BUILD=$BUILD sh "spec/support/$script" stop
    trap - EXIT INT TERM
    unset "$urlvar"
}

# run_pg, run_mysql [BUSTED OPTIONS...]: on PostgreSQL (VEKTERDB_TEST_PG_URL
# or spec/support/pg.sh), on MariaDB (VEKTERDB_TEST_MYSQL_URL or
# spec/support/mysql.sh)
run_pg() { run_server postgresql pg.sh PostgreSQL VEKTERDB_TEST_PG_URL "$@"; }
run_mysql() { run_server mysql mysql.sh MariaDB VEKTERDB_TEST_MYSQL_URL "$@"; }

# run_luajit: the specs again under LuaJIT with its build of vekterdb.core
# (examples/openresty/openresty.mk).  lua5.4 processes that specs start keep
# the Lua 5.4 build through LUA_CPATH_5_4, which LuaJIT ignores.  Left out:
# #slow and #stress specs (FAISS-bound: the same C code under both), the
# OpenResty spec (it runs under Lua 5.4), and specs whose harness needs Lua
# 5.2+: cli_spec (exit codes from io.popen():close()), io_spec
# (string.pack), and delete_spec's child process (it hands its LuaJIT
# package.cpath to lua5.4).
run_luajit() {
    section "build: make luajit"
    if ! build luajit; then
        fail_one "make luajit failed"
        return
    fi
    LUA_CPATH_5_4="${LUA_CPATH:-}" LUA_CPATH="$PWD/$BUILD/luajit/?.so;;" \
        run_busted sqlite-luajit luajit sqlite --exclude-tags=slow,stress,openresty \
        --exclude-pattern=openresty_spec --exclude-pattern=cli_spec --exclude-pattern=io_spec \
        --filter-out=seen.by.another.process
}

# run_asan: the C tests and the busted suite on SQLite (#slow and #stress
# left out) again, built with AddressSanitizer and UndefinedBehaviorSanitizer
# (spec/support/reliability.mk)
run_asan() {
    section "build: the AddressSanitizer + UBSan flavour"
    if ! build asan-build; then
        fail_one "the sanitizer build failed"
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
            run_busted sqlite-lua5.4-asan "$LUA" sqlite --exclude-tags=slow,stress
        end_section
        echo "$passed $failed" > "$out/asan.counts"
    )
    read -r p f < "$out/asan.counts"
    passed=$((passed + p))
    failed=$((failed + f))
    section_name=
}

# run_valgrind: the C tests under valgrind memcheck: no invalid access, no
# use of uninitialised memory, no byte definitely lost
VALGRIND="valgrind --quiet --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --suppressions=spec/support/valgrind.supp"
run_valgrind() {
    # shellcheck disable=SC2086
    run_ctests -valgrind $VALGRIND
}

# the closing part: where the time went, the slowest spec files, the totals
finish() {
    end_section
    echo "== times"
    sort -rn "$out/times" 2>/dev/null | head -12
    slow=$(awk '/^# time [0-9.]+ s spec\// { l = FILENAME; sub(/.*busted-/, "", l); sub(/\.tap$/, "", l)
                                          printf "%6.0f s  %s (%s)\n", $3, $5, l }' \
        "$out"/busted-*.tap 2>/dev/null | sort -rn | head -8)
    if [ -n "$slow" ]; then
        echo "== slowest spec files"
        echo "$slow"
    fi
    echo "   $mode: $(($(date +%s) - started)) s"
    echo "$passed passed, $failed failed" | tee "$out/summary"
    [ "$failed" -eq 0 ]
    exit
}

# make test and make check start here: the module and the C tests
if [ "$mode" != asan ]; then
    section "build: make build ctest"
    if ! build build ctest; then
        fail_one "make build ctest failed"
        finish
    fi
fi

export VEKTERDB_LUAJIT_CORE="${VEKTERDB_LUAJIT_CORE:-$PWD/$BUILD/luajit/vekterdb/core.so}"
case $mode in
test)
    run_lint
    run_ctests
    run_busted sqlite-lua5.4 "$LUA" sqlite $QUICK_EXCLUDE
    run_pg $QUICK_EXCLUDE
    # make test's MariaDB pass leaves out the two slowest backend-neutral
    # files (about 30 s of a busy machine); make check runs them there too
    run_mysql $QUICK_EXCLUDE --exclude-pattern=filter_spec --exclude-pattern=cli_spec
    ;;
check)
    run_lint
    run_ctests
    # the OpenResty spec loads the LuaJIT build: made first
    run_luajit
    run_busted sqlite-lua5.4 "$LUA" sqlite
    run_pg
    run_mysql
    run_asan
    run_valgrind
    ;;
asan) run_asan ;;
valgrind) run_valgrind ;;
esac
finish
