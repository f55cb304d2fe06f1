#!/bin/sh
# Builds FAISS (the version of the installed libfaiss-dev, 1.7.3) from
# Debian's source package with FAISS's own "avx2" optimisation level
# (-mavx2 -mfma -mf16c -mpopcnt): the libfaiss.a the Makefile links by default
# (FAISS_BUILD=avx2).  Debian's libfaiss.a is a generic x86-64 build (no AVX2,
# no hardware popcount); everything else (Debian's patches, -O2, OpenBLAS)
# stays the same, so Debian's headers in /usr/include/faiss describe it.
#   usage: faiss-avx2.sh PREFIX CAPI_DIR
# Writes PREFIX/lib/libfaiss.a (and, for FAISS_PREFIX=PREFIX builds,
# PREFIX/lib/libfaiss_c.a and PREFIX/include/faiss).  CAPI_DIR is where
# faiss-capi.sh fetched the source and built the C API (BUILD/faiss_c); its
# C API library is reused: the C API does not depend on the optimisation level.
# FAISS_AVX2_JOBS: parallel compile jobs (default: the number of cores).
set -eu
prefix=${1:?usage: faiss-avx2.sh PREFIX CAPI_DIR}
capi=${2:?usage: faiss-avx2.sh PREFIX CAPI_DIR}
jobs=${FAISS_AVX2_JOBS:-$(nproc 2>/dev/null || echo 2)}
if [ -f "$prefix/lib/libfaiss.a" ] && [ -f "$prefix/lib/libfaiss_c.a" ]; then
    echo "$prefix is built (remove it to build again)"
    exit 0
fi
command -v cmake >/dev/null || { echo "faiss-avx2: cmake is needed (apt-get install cmake)" >&2; exit 1; }
grep -qw avx2 /proc/cpuinfo || echo "faiss-avx2: warning: this CPU has no AVX2, the build will not run here" >&2
start=$(date +%s)
sh "$(dirname "$0")/faiss-capi.sh" "$capi"
ver=$(dpkg-query -W -f '${source:Version}' libfaiss-dev)
upstream=${ver%%-*}
tree="$capi/src/faiss-$upstream"
debian=$(ls "$capi"/src/faiss_*.debian.tar.* 2>/dev/null | head -n 1)
[ -d "$tree/faiss" ] || { echo "faiss-avx2: no FAISS source in $tree" >&2; exit 1; }
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
src="$prefix/src"
rm -rf "$src" "$prefix/cmake"
cp -a "$tree" "$src"
# Debian's patches, in their series order
if [ -n "$debian" ]; then
    tar -xf "$debian" -C "$src"
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        patch -d "$src" -p1 -s -N < "$src/debian/patches/$p"
    done < "$src/debian/patches/series"
fi
# -O2 as Debian's build flags; position-independent: it is linked into core.so
cmake -S "$src" -B "$prefix/cmake" -DFAISS_OPT_LEVEL=avx2 -DFAISS_ENABLE_GPU=OFF \
    -DFAISS_ENABLE_PYTHON=OFF -DFAISS_ENABLE_C_API=OFF -DBUILD_TESTING=OFF \
    -DBUILD_SHARED_LIBS=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
    $(command -v ninja >/dev/null && echo -GNinja) >"$prefix/cmake.log" 2>&1 ||
    { tail -20 "$prefix/cmake.log" >&2; exit 1; }
configured=$(date +%s)
# only the avx2 library: the generic one is Debian's
cmake --build "$prefix/cmake" --target faiss_avx2 -j "$jobs" >"$prefix/build.log" 2>&1 ||
    { tail -30 "$prefix/build.log" >&2; exit 1; }
built=$(date +%s)
mkdir -p "$prefix/lib" "$prefix/include"
cp "$prefix/cmake/faiss/libfaiss_avx2.a" "$prefix/lib/libfaiss.a.tmp"
cp "$capi/libfaiss_c.a" "$prefix/lib/libfaiss_c.a"
(cd "$src" && find faiss -name '*.h' | while read -r h; do
    mkdir -p "$prefix/include/$(dirname "$h")"
    cp "$h" "$prefix/include/$h"
done)
(cd "$src" && find c_api -name '*.h' | while read -r h; do
    mkdir -p "$prefix/include/faiss/$(dirname "$h")"
    cp "$h" "$prefix/include/faiss/$h"
done)
mv "$prefix/lib/libfaiss.a.tmp" "$prefix/lib/libfaiss.a"
end=$(date +%s)
cat > "$prefix/build-info.txt" <<EOF
faiss=$ver
opt_level=avx2
jobs=$jobs
cores=$(nproc)
seconds_total=$((end - start))
seconds_compile=$((built - configured))
EOF
echo "built FAISS $ver with AVX2 into $prefix in $((end - start)) s ($((built - configured)) s compiling, $jobs jobs)"
