#!/usr/bin/env bash
# Measures `git push` wall time into a local Gust home, and the hook's own time
# (build_seconds of each release), for:
#   unchanged: a small Python app whose requirements.txt (one dependency) did not change
#   first:     the first push of that app, installing its one dependency from PyPI
# Usage: bench/push.sh [RUNS]   (default 10). Prints a Markdown table.
set -euo pipefail
runs="${1:-10}"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$(cd "$root" && swift build -c release --show-bin-path)"
(cd "$root" && swift build -c release >/dev/null)
scratch="$(mktemp -d /tmp/gust-bench.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@gust.invalid GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@gust.invalid

now() { date +%s.%N; }
stats() { python3 -c 'import sys,statistics as s; v=sorted(float(x) for x in sys.stdin.read().split()); print(f"{s.median(v):.3f} | {v[0]:.3f} | {v[-1]:.3f} | {len(v)}")'; }

first_push=()
first_hook=()
unchanged_push=()
unchanged_hook=()
for i in $(seq "$runs"); do
  # A fresh home each round, so the "first" push really installs from PyPI (pip's own
  # download cache lives in the app's cache dir, which is new too).
  export GUST_HOME="$scratch/home-$i"
  "$bin/gust" apps create bench >/dev/null
  work="$scratch/work-$i"
  cp -R "$root/examples/python-cats" "$work"
  echo "six==1.16.0" > "$work/requirements.txt"
  git -C "$work" init -q -b main && git -C "$work" add -A && git -C "$work" commit -q -m first
  start=$(now); git -C "$work" push -q "$GUST_HOME/repos/bench.git" main 2>/dev/null; end=$(now)
  first_push+=("$(echo "$end - $start" | bc)")
  first_hook+=("$("$bin/gust" releases bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["buildSeconds"])')")
  echo "change $i" > "$work/CHANGE" && git -C "$work" add -A && git -C "$work" commit -q -m change
  start=$(now); git -C "$work" push -q "$GUST_HOME/repos/bench.git" main 2>/dev/null; end=$(now)
  unchanged_push+=("$(echo "$end - $start" | bc)")
  unchanged_hook+=("$("$bin/gust" releases bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["buildSeconds"])')")
done

echo "| case | median s | min s | max s | runs |"
echo "| --- | --- | --- | --- | --- |"
echo "| first push, one dependency from PyPI: git push wall time | $(printf '%s\n' "${first_push[@]}" | stats) |"
echo "| first push, one dependency from PyPI: hook (build) time | $(printf '%s\n' "${first_hook[@]}" | stats) |"
echo "| unchanged dependencies: git push wall time | $(printf '%s\n' "${unchanged_push[@]}" | stats) |"
echo "| unchanged dependencies: hook (build) time | $(printf '%s\n' "${unchanged_hook[@]}" | stats) |"
