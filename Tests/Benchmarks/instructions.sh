#!/bin/sh
# Instructions (user space) of a first index, counted by callgrind: repeatable whatever
# else the machine is doing, unlike wall time. Debug info is stripped from a copy of the
# binary (valgrind 3.19 cannot read Swift 6's DWARF 5).
#
#   Tests/Benchmarks/instructions.sh [BINARY] [TREE] [THREADS] [OUT]
#
# Defaults: .build/release/evindex, .bench/tree-100000 (make bench builds it), 1 thread,
# /tmp/evindex.callgrind; read OUT with callgrind_annotate.
set -eu
binary=${1:-.build/release/evindex}
tree=${2:-.bench/tree-100000}
threads=${3:-1}
out=${4:-/tmp/evindex.callgrind}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
strip --strip-debug -o "$work/evindex" "$binary"
EVINDEX_DB="$work/db" valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$work/evindex" run "$tree" --threads "$threads" >/dev/null 2>"$work/log" || { cat "$work/log" >&2; exit 1; }
grep -o 'Collected : [0-9]*' "$work/log" | sed 's/Collected : /instructions: /'
