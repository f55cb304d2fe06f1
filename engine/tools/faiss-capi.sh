#!/bin/sh
# Builds FAISS's C API (c_api/*.cpp) into a static library, from Debian's
# faiss source package of the same version as the installed libfaiss-dev.
# Debian ships the C API's headers but not the library compiled from them.
# The source comes from FAISS_VENDOR (the .src.rock carries Debian's source
# tarballs there: `make rock`, so its install needs no network) when they are
# the installed version's; otherwise it is fetched with a private apt list:
# the system's apt sources are left alone.  Either way BUILD_DIR/src then
# holds the unpacked tree and Debian's patches, which faiss-avx2.sh builds.
#   usage: [FAISS_VENDOR=dir] faiss-capi.sh BUILD_DIR
set -eu
out=${1:?usage: faiss-capi.sh BUILD_DIR}
vendor=${FAISS_VENDOR:-vendor}
lib="$out/libfaiss_c.a"
[ -f "$lib" ] && exit 0
mkdir -p "$out"
out=$(cd "$out" && pwd)
ver=$(dpkg-query -W -f '${source:Version}' libfaiss-dev)
upstream=${ver%%-*}
src="$out/src"
from="Debian's source package"
if [ ! -d "$src/faiss-$upstream/c_api" ] && [ -f "$vendor/faiss_$upstream.orig.tar.gz" ] &&
    [ -f "$vendor/faiss_$ver.debian.tar.xz" ]; then
    mkdir -p "$src"
    cp "$vendor/faiss_$upstream.orig.tar.gz" "$vendor/faiss_$ver.debian.tar.xz" "$src/"
    tar -xzf "$src/faiss_$upstream.orig.tar.gz" -C "$src"
    from="the bundled source ($vendor/faiss_$upstream.orig.tar.gz)"
elif [ ! -d "$src/faiss-$upstream/c_api" ]; then
    for d in "$vendor"/faiss_*.orig.tar.gz; do
        if [ -f "$d" ]; then
            echo "faiss-capi.sh: $d is not the installed libfaiss-dev's version ($ver): fetching its source" >&2
        fi
    done
    apt="$out/apt"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$src"
    # the binary suites' URIs, turned into deb-src lines
    uri=$(grep -hoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
          | grep -v security | head -n 1 | awk '{print $2}')
    [ -n "$uri" ] || uri=http://deb.debian.org/debian
    suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main" > "$apt/sources.list"
    opts="-o Dir::Etc::SourceList=$apt/sources.list -o Dir::Etc::SourceParts=/dev/null \
          -o Dir::State::Lists=$apt/lists -o Dir::Cache=$apt/cache -o APT::Sandbox::User=root"
    apt-get -q $opts update >/dev/null
    (cd "$src" && apt-get -q $opts source --download-only "faiss=$ver" >/dev/null)
    tar -xzf "$src/faiss_$upstream.orig.tar.gz" -C "$src"
fi
cdir="$src/faiss-$upstream/c_api"
# The C API prints every exception to stderr before returning its error code;
# VekterDB reports the same text through its own errors, so the copy we
# compile stays quiet (nginx error logs, ETL output).
sed -i '/std::cerr/d' "$cdir/macros_impl.h"
obj="$out/obj"
mkdir -p "$obj"
# system headers (/usr/include/faiss) match the installed libfaiss.a exactly
for f in "$cdir"/*.cpp "$cdir"/impl/*.cpp "$cdir"/utils/*.cpp; do
    ${CXX:-g++} -O2 -fPIC -std=c++17 -fopenmp -w -c "$f" -o "$obj/$(basename "$f" .cpp).o" &
done
wait
ar rcs "$lib.tmp" "$obj"/*.o
mv "$lib.tmp" "$lib"
echo "built $lib from faiss $ver, $from"
