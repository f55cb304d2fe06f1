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

# counts TAP lines "ok N" / "not ok N" of a log
count() {
    p=$(grep -cE '^ok [0-9]+' "$1")
    f=$(grep -cE '^not ok [0-9]+' "$1")
    passed=$((passed + p))
    failed=$((failed + f))
    echo "   $p passed, $f failed"
}

# run_ctests: every engine C test (TAP)
run_ctests() {
    for t in "$BUILD"/ctest/test_*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")
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
    VEKTERDB_TEST_BACKEND=$backend busted --lua="$interp" -o TAP --pattern="$pattern" spec > "$log" 2>&1
    rc=$?
    # a failing test prints its message after "not ok": show them
    awk '/^not ok/{show=1} /^ok /{show=0} show' "$log" | head -60
    if [ $rc -ne 0 ] && ! grep -qE '^not ok' "$log"; then
        echo "not ok 999 busted ($label) exited with status $rc" >> "$log"
        tail -20 "$log"
    fi
    count "$log"
}

run_ctests
run_busted sqlite-lua5.4 "$LUA" sqlite

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
