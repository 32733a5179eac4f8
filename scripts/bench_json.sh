#!/bin/sh
# Reading and writing records' JSON: Gust's JSONText against Foundation's Codable path, the same
# texts in one run (docs/benchmarks.md, "Records' JSON read in one pass"). Compiles the two source
# files with the driver, optimized, into a temporary directory.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root/scripts/bench_json.swift" "$work/main.swift"  # top-level code is main.swift's alone
swiftc -O -o "$work/bench_json" "$work/main.swift" \
    "$root/Sources/GustCore/Records/JSONText.swift" "$root/Sources/GustCore/Records/JSONValue.swift" 2>/dev/null
"$work/bench_json"
