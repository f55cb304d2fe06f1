#!/bin/sh
# bin/layers.sh OBJDIR: the engine's layers, lowest first, must call and
# include downward only (docs/architecture.md).  A file's layer is the word
# before the first "_" of its name (base_codec.c: base); a header's is the
# word after "vk_" (vk_store.h: store; vk_io_impl.h: io).  vekterdb.h and
# vk_io.h are the public headers: anyone may include them.
# Prints every call or include that goes up and exits 1 when there is one.
set -u
objdir=${1:-build/obj}
order="base io faiss store table account write search maint"

rank() {
    i=0
    for l in $order; do
        if [ "$l" = "$1" ]; then echo $i; return; fi
        i=$((i + 1))
    done
    echo -1
}

file_layer() { basename "$1" | sed -E 's/^([a-z]+)_.*$/\1/'; }
header_layer() { basename "$1" .h | sed -E 's/^vk_([a-z]+).*$/\1/'; }

bad=0
complain() { echo "layers: $1"; bad=1; }

# every engine source names a known layer
for f in engine/*.c engine/*.cpp; do
    [ "$(rank "$(file_layer "$f")")" -ge 0 ] || complain "$f: no layer named by its prefix ($order)"
done

# includes
for f in engine/*.c engine/*.cpp engine/*.h; do
    case "$f" in
        *.h) [ "$f" = engine/vekterdb.h ] || [ "$f" = engine/vk_io.h ] && continue
             own=$(header_layer "$f") ;;
        *) own=$(file_layer "$f") ;;
    esac
    r=$(rank "$own")
    for h in $(sed -nE 's/^#include "([^"]+)".*/\1/p' "$f"); do
        case "$h" in vekterdb.h|vk_io.h) continue ;; esac
        hr=$(rank "$(header_layer "$h")")
        if [ "$hr" -lt 0 ]; then
            complain "$f includes $h, which names no layer"
        elif [ "$hr" -gt "$r" ]; then
            complain "$f ($own) includes $h, a layer above"
        fi
    done
done

# calls: symbols each object uses against the layer of the object defining them
# the objects of today's sources (a renamed file's old object may linger)
objs=""
for f in engine/*.c engine/*.cpp; do
    o="$objdir/$(basename "${f%.*}").o"
    [ -f "$o" ] || { echo "layers: $o is missing: build first"; exit 1; }
    objs="$objs $o"
done
defs=$(mktemp)
trap 'rm -f "$defs"' EXIT
for o in $objs; do
    l=$(file_layer "$o")
    nm --defined-only -g "$o" | awk -v l="$l" '$2 ~ /^[TDBR]$/ {print $3, l}'
done | sort > "$defs"
for o in $objs; do
    l=$(file_layer "$o")
    r=$(rank "$l")
    for s in $(nm -u "$o" | awk '$2 ~ /^vk_/ {print $2}'); do
        dl=$(awk -v s="$s" '$1 == s {print $2; exit}' "$defs")
        [ -n "$dl" ] || continue
        if [ "$(rank "$dl")" -gt "$r" ]; then
            complain "$(basename "$o" .o) ($l) calls $s of the $dl layer"
        fi
    done
done
exit $bad
