#!/bin/sh
# bench/scale.sh: the large benchmark's runner (make bench-10m sets the
# environment; see bench/bench.mk and bench/scale.lua).
#   sh bench/scale.sh data   the cached dataset only
#   sh bench/scale.sh all    dataset, then every phase in a process of its own
# Refuses to start with less free disk than the run needs (20 GB at 10M).
set -eu
: "${BENCH_SCALE_N:?}" "${BENCH_SCALE_DATA:?}" "${BENCH_SCALE_GEN:?}"
LUA=${LUA:-lua5.4}
NQ=${BENCH_SCALE_NQ:-1000}

# free space, in GB, of the file system holding $1 (or its parent)
free_gb() {
  d=$1
  while [ ! -d "$d" ]; do d=$(dirname "$d"); done
  df -Pk "$d" | awk 'NR == 2 { printf "%d", $4 / 1000000 }'
}

# what the run writes: the dataset (532 bytes a vector), the table (about as
# much), the indexes (under 150 bytes a vector), with room to spare: 20 GB
# at 10M, 2 GB at 1M
need=$(( (BENCH_SCALE_N * 2000 + 999999999) / 1000000000 ))
[ "$need" -ge 2 ] || need=2
have=$(free_gb "$BENCH_SCALE_DATA")
if [ -f "$BENCH_SCALE_DATA/gt.ivecs" ]; then need=$(( need * 3 / 4 )); fi
if [ "$have" -lt "$need" ]; then
  echo "bench-10m: only $have GB free on the file system of $BENCH_SCALE_DATA; this run needs about $need GB" \
       "(N = $BENCH_SCALE_N). Free some space or set BENCH_SCALE_N lower." >&2
  exit 1
fi

if [ ! -f "$BENCH_SCALE_DATA/gt.ivecs" ]; then
  mkdir -p "$BENCH_SCALE_DATA"
  echo "[scale data] generating $BENCH_SCALE_N x 128 vectors and the exact top-100 of $NQ queries in $BENCH_SCALE_DATA" >&2
  "$BENCH_SCALE_GEN" -n "$BENCH_SCALE_N" -q "$NQ" "$BENCH_SCALE_DATA"
else
  echo "[scale data] reusing $BENCH_SCALE_DATA" >&2
fi
[ "$1" = data ] && exit 0

: "${BENCH_SCALE_WORK:?}"
# BENCH_SCALE_PHASES: the phases to run (default all); without insert, the
# table and the other phases' results of the last run (kept with
# BENCH_SCALE_KEEP=1) are reused
PHASES=${BENCH_SCALE_PHASES:-insert index-pq index-disk search-pq search-disk}
case " $PHASES " in
  *" insert "*) rm -rf "$BENCH_SCALE_WORK" ;;   # a fresh work folder
  *) [ -f "$BENCH_SCALE_WORK/scale.db" ] || { echo "bench-10m: no table in $BENCH_SCALE_WORK: run the insert phase" >&2; exit 1; } ;;
esac
mkdir -p "$BENCH_SCALE_WORK"
export BENCH_SCALE_DATA BENCH_SCALE_WORK
for phase in $PHASES; do
  echo "[scale] $phase ($(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  $LUA bench/scale.lua "$phase"
done
$LUA bench/scale.lua report
if [ "${BENCH_SCALE_KEEP:-0}" != 1 ]; then
  rm -f "$BENCH_SCALE_WORK"/scale.db* "$BENCH_SCALE_WORK"/*.index*
  echo "[scale] the table and indexes are removed (BENCH_SCALE_KEEP=1 keeps them); the phases' JSON stays in $BENCH_SCALE_WORK" >&2
fi
