#!/bin/sh
# bin/rock.sh: `make rock`.  Packs vekterdb-VERSION-1.src.rock into OUT_DIR
# (default: the current folder, the checkout's root): the versioned rockspec and the source archive
# vekterdb-VERSION.tar.gz it names.  The archive holds the files git tracks,
# as they are in the working tree, and under vendor/ Debian's source of the
# FAISS release the installed libfaiss-dev was built from (the upstream
# tarball and Debian's patches, as engine/tools/faiss-capi.sh keeps them in
# FAISS_C_DIR/src): the C API and, for FAISS_BUILD=avx2 (the default on a CPU
# with AVX2), FAISS itself are compiled from it.  With those, `luarocks install
# ./vekterdb-VERSION-1.src.rock` builds everything from the rock and the
# Debian packages: nothing is downloaded.
#   usage: sh bin/rock.sh VERSION FAISS_C_DIR STAGING_DIR [OUT_DIR]
set -eu
version=${1:?usage: rock.sh VERSION FAISS_C_DIR STAGING_DIR}
faiss_c=${2:?usage: rock.sh VERSION FAISS_C_DIR STAGING_DIR}
stage=${3:?usage: rock.sh VERSION FAISS_C_DIR STAGING_DIR}
out=${4:-.}
name=vekterdb-$version
rockspec=$name-1.rockspec
rock=$name-1.src.rock

fail() {
    echo "rock.sh: $*" >&2
    exit 1
}

# the rockspec of the version the C engine reports (VK_VERSION), naming this archive
[ -f "$rockspec" ] || fail "$rockspec is missing: engine/vekterdb.h says VK_VERSION is $version"
grep -q "^version = \"$version-1\"" "$rockspec" || fail "$rockspec does not say version = \"$version-1\""
grep -q "\"$name.tar.gz\"" "$rockspec" || fail "$rockspec does not name $name.tar.gz as its source"
git rev-parse --is-inside-work-tree > /dev/null 2>&1 || fail "make rock packs a git checkout's files"

ver=$(dpkg-query -W -f '${source:Version}' libfaiss-dev)
upstream=${ver%%-*}
orig=$faiss_c/src/faiss_$upstream.orig.tar.gz
debian=$faiss_c/src/faiss_$ver.debian.tar.xz
for f in "$orig" "$debian"; do
    [ -f "$f" ] || fail "$f is missing: remove $faiss_c and run make build to fetch FAISS's source"
done

rm -rf "$stage"
mkdir -p "$stage/$name/vendor"
# tracked files as they are now (a file deleted in the working tree is left out)
git ls-files | while IFS= read -r f; do
    if [ -f "$f" ]; then
        mkdir -p "$stage/$name/$(dirname "$f")"
        cp -p "$f" "$stage/$name/$f"
    fi
done
cp "$orig" "$debian" "$stage/$name/vendor/"
(cd "$stage" && tar -czf "$name.tar.gz" "$name")
cp "$rockspec" "$stage/"
(cd "$stage" && zip -q -X "$rock" "$rockspec" "$name.tar.gz")
mkdir -p "$out"
mv "$stage/$rock" "$out/"
echo "packed $out/$rock: install it with luarocks install $out/$rock (README.md, Install)"
