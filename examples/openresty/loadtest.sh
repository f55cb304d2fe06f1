#!/bin/sh
# examples/openresty/loadtest.sh: the search service under wrk, on loopback.
# The benchmark's 100k dataset (make bench-data) in an SQLite file with an
# IVF1000,Flat index (nprobe=35), nginx with the example configuration and 2
# workers, then POST /search (k=10, columns idx and name) at 1, 8 and 64
# connections for LOADTEST_SECONDS (10) each: queries/s and latency percentiles.
#   sh examples/openresty/loadtest.sh        (after `make build luajit bench-data`)
# Environment: BUILD (build), LOADTEST_DATA (the dataset folder),
# LOADTEST_SECONDS, LOADTEST_WORKERS (2), LOADTEST_CONNECTIONS ("1 8 64"),
# LOADTEST_JSON (a file to write the figures to, as `make bench-load` does).
set -eu
cd "$(dirname "$0")/../.."
root=$PWD
BUILD=${BUILD:-build}
DATA=${LOADTEST_DATA:-$BUILD/bench-data/d128-n100000-q10000}
SECONDS_EACH=${LOADTEST_SECONDS:-10}
WORKERS=${LOADTEST_WORKERS:-2}
CONNECTIONS=${LOADTEST_CONNECTIONS:-1 8 64}
core=$root/$BUILD/luajit/vekterdb/core.so
[ -f "$core" ] || { echo "missing $core: run make build luajit" >&2; exit 1; }
[ -f "$DATA/train.fvecs" ] || { echo "missing $DATA/train.fvecs: run make bench-data" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed (make deps)" >&2; exit 1; }

work=$root/$BUILD/loadtest
db=$work/data
mkdir -p "$db"
if [ ! -f "$db/queries.jsonl" ]; then
    echo "building the database in $db"
    LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;" LUA_CPATH="$root/$BUILD/lua5.4/?.so;;" \
        lua5.4 examples/openresty/loadtest_build.lua "$DATA" "$db"
fi

# the example set up by its own generator with this run's paths, port and
# worker count
prefix=$(mktemp -d)
chmod 755 "$prefix"
port=$(awk 'BEGIN { srand(); print 20000 + int(rand() * 30000) }')
lua5.4 examples/openresty/setup.lua --prefix "$prefix" --core "$core" --config "$db/items.json" \
    --url "sqlite:///$db/items.sqlite?mode=ro" --listen "127.0.0.1:$port" --workers "$WORKERS" > /dev/null
if [ "$(id -u)" = 0 ]; then chown -R www-data: "$prefix" "$work"; fi

stop() {
    if [ -f "$prefix/run/nginx.pid" ]; then
        pid=$(cat "$prefix/run/nginx.pid")
        kill -QUIT "$pid" 2>/dev/null || true
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$prefix"
}
trap stop EXIT
trap 'exit 130' INT TERM

nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/run/error.log"
url=http://127.0.0.1:$port
i=0
until curl -sf "$url/health" >/dev/null; do
    i=$((i + 1))
    [ $i -lt 300 ] || { cat "$prefix/run/error.log"; exit 1; }
    sleep 0.1
done
curl -s "$url/health"
# warm up: every worker maps or reads its index, the page cache holds the files
wrk -t1 -c"$WORKERS" -d2s -s examples/openresty/wrk_search.lua "$url" -- "$db/queries.jsonl" >/dev/null

printf '| %-11s | %9s | %9s | %9s | %9s | %9s | %6s |\n' connections "queries/s" p50 p90 p99 max errors
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ------------- ----------- ----------- ----------- ----------- ----------- --------
rows=""
for c in $CONNECTIONS; do
    t=$c
    [ "$t" -le 2 ] || t=2
    out=$(wrk -t"$t" -c"$c" -d"${SECONDS_EACH}s" --timeout 10s --latency \
          -s examples/openresty/wrk_search.lua "$url" -- "$db/queries.jsonl")
    line=$(echo "$out" | awk -v c="$c" '
        /Requests\/sec/ { rps = $2 }
        /^ +50%/ { p50 = $2 } /^ +90%/ { p90 = $2 } /^ +99%/ { p99 = $2 }
        /^ +Latency +[0-9]/ { mx = $4 }
        /Non-2xx/ { err += $NF } /Socket errors/ { err += 1 }
        END { printf "%s %s %s %s %s %s %d\n", c, rps, p50, p90, p99, mx, err }')
    echo "$line" | awk '{ printf "| %-11s | %9s | %9s | %9s | %9s | %9s | %6d |\n", $1, $2, $3, $4, $5, $6, $7 }'
    rows="$rows$line
"
done
if [ -n "${LOADTEST_JSON:-}" ]; then
    printf '%s' "$rows" | awk -v date="$(date -u +%Y-%m-%dT%H:%M:%SZ)" -v cores="$(nproc)" \
        -v workers="$WORKERS" -v secs="$SECONDS_EACH" -v n="$(basename "$DATA")" '
        BEGIN { printf "{\"date\":\"%s\",\"cores\":%d,\"workers\":%d,\"seconds_each\":%d,", date, cores, workers, secs
                printf "\"dataset\":\"%s\",\"index\":\"IVF1000,Flat\",\"nprobe\":35,\"k\":10,", n
                printf "\"request\":\"POST /search, columns idx and name\",\"rows\":[" }
        NF == 7 { printf "%s{\"connections\":%d,\"qps\":%s,\"p50\":\"%s\",\"p90\":\"%s\",\"p99\":\"%s\",\"max\":\"%s\",\"errors\":%d}",
                          sep, $1, $2, $3, $4, $5, $6, $7; sep = "," }
        END { print "]}" }' > "$LOADTEST_JSON"
    echo "figures written to $LOADTEST_JSON"
fi
if grep -E 'exited on signal|\[alert\]|\[crit\]' "$prefix/run/error.log"; then exit 1; fi
