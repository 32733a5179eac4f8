#!/bin/bash
# The CPU a code-only deploy costs, by side, with nothing else running: the push (git, the hook,
# the build) and gustd's (gustd itself, the unpack, the new zygote and its forks, the old
# instances' stop). Each side in a cgroup v1 cpuacct group of its own; gustd's own share from
# /proc/PID/stat (10 ms ticks: compare means over many rounds).
#
#   scripts/bench_deploy_cpu.sh BIN [ROUNDS]     # BIN: a directory with gust and gustd (a release build)
#
# The sample app is examples/python-cats at `gust scale --min 4 --max 4`. Needs root (cgroups).
set -euo pipefail
B=$(cd "${1:?usage: $0 BIN [ROUNDS]}" && pwd)
ROUNDS=${2:-6}
SOURCE=$(cd "$(dirname "$0")/.." && pwd)
R=$(mktemp -d /tmp/gust-deploy-cpu.XXXXXX)
export GUST_HOME=$R/home
CG=/sys/fs/cgroup/cpuacct
G=$CG/gust-bench-deploy-gustd-$$ P=$CG/gust-bench-deploy-push-$$
mkdir "$G" "$P"
GP=
cleanup() {
    if [ -n "$GP" ]; then
        kill -TERM "$GP" 2>/dev/null || true
        wait "$GP" 2>/dev/null || true
    fi
    cat "$G/cgroup.procs" "$P/cgroup.procs" 2>/dev/null | while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done
    sleep 0.5
    rmdir "$G" "$P" 2>/dev/null || true
    rm -rf "$R"
}
trap cleanup EXIT
bash -c "echo \$\$ > $G/cgroup.procs; exec $B/gustd --http 127.0.0.1:0 > $R/gustd.log 2>&1" &
GP=$!
for _ in $(seq 100); do [ -S "$GUST_HOME/run/gustd.sock" ] && break; sleep 0.05; done
"$B/gust" apps create cats > /dev/null
cp -r "$SOURCE/examples/python-cats" "$R/cats"
cd "$R/cats" && rm -rf .git && git init -q -b main && git add -A && git commit -qm v1
git push -q "$GUST_HOME/repos/cats.git" main 2> /dev/null
"$B/gust" scale cats --min 4 --max 4 > /dev/null
sleep 2
for i in $(seq "$ROUNDS"); do
    echo "# change $i" >> __init__.py
    git commit -qam "v$i"
    g0=$(cat "$G/cpuacct.usage") p0=$(cat "$P/cpuacct.usage") o0=$(awk '{print $14 + $15}' "/proc/$GP/stat")
    t0=$(date +%s%N)
    bash -c "echo \$\$ > $P/cgroup.procs; exec git push -q $GUST_HOME/repos/cats.git main" 2> /dev/null
    t1=$(date +%s%N)
    sleep 3  # the old instances stop
    g1=$(cat "$G/cpuacct.usage") p1=$(cat "$P/cpuacct.usage") o1=$(awk '{print $14 + $15}' "/proc/$GP/stat")
    echo "push $(( (t1 - t0) / 1000000 )) ms; CPU: the push $(( (p1 - p0) / 1000000 )) ms, gustd's side $(( (g1 - g0) / 1000000 )) ms, of it gustd itself $(( (o1 - o0) * 10 )) ms"
done
