#!/usr/bin/env bash
# `make demo`: a throwaway GUST_HOME, gustd on a free loopback port, real `git push`es
# of the two examples with their build logs streaming back, calls with curl, a second
# release, a rollback. gustd is stopped by its PID when the demo ends, however it ends.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$(cd "$root" && swift build --show-bin-path)"
demo="$(mktemp -d /tmp/gust-demo.XXXXXX)"
export GUST_HOME="$demo/home"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="Gust Demo" GIT_AUTHOR_EMAIL="demo@gust.invalid"
export GIT_COMMITTER_NAME="Gust Demo" GIT_COMMITTER_EMAIL="demo@gust.invalid"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; echo; }

gustd_pid=""
stop_gustd() {
    if [[ -n "$gustd_pid" ]] && kill -0 "$gustd_pid" 2>/dev/null; then
        kill -TERM "$gustd_pid"
        for _ in $(seq 50); do kill -0 "$gustd_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$gustd_pid" 2>/dev/null || true
    fi
}
trap stop_gustd EXIT

step "A throwaway home: $GUST_HOME"
mkdir -p "$GUST_HOME"
"$bin/gustd" --home "$GUST_HOME" --http 127.0.0.1:0 >"$demo/gustd.log" 2>&1 &
gustd_pid=$!
for _ in $(seq 100); do
    [[ -s "$GUST_HOME/run/gustd.http" ]] && break
    kill -0 "$gustd_pid" 2>/dev/null || { cat "$demo/gustd.log"; exit 1; }
    sleep 0.1
done
address="$(cat "$GUST_HOME/run/gustd.http")"
port="${address##*:}"
echo "gustd (pid $gustd_pid) serves http://$address; its log: $demo/gustd.log"

# push APP DIR MESSAGE: commit DIR and push it to APP's repository.
push() {
    local app="$1" work="$2" message="$3"
    [[ -d "$work/.git" ]] || git -C "$work" init -q -b main
    git -C "$work" add -A
    git -C "$work" commit -q -m "$message"
    git -C "$work" push "$GUST_HOME/repos/$app.git" main
}

step "The Python example: an op, a handler, a schedule, a record hook"
"$bin/gust" apps create cats
cats="$demo/cats"
cp -R "$root/examples/python-cats" "$cats"
push cats "$cats" "First cats"

step "Calling cats by host name and by path prefix"
show curl -sS -X POST "http://cats.localhost:$port/_/functions/food:buy" --resolve "cats.localhost:$port:127.0.0.1" -d '{"food": "salmon"}'
show curl -sS "http://127.0.0.1:$port/apps/cats/cat/feed"
show curl -sS -X POST "http://127.0.0.1:$port/apps/cats/_/functions/food:buy" -d '{"food": "caviar"}'

step "The Node example"
"$bin/gust" apps create reviews
reviews="$demo/reviews"
cp -R "$root/examples/node-reviews" "$reviews"
push reviews "$reviews" "First reviews"
show curl -sS -X POST "http://127.0.0.1:$port/apps/reviews/_/functions/hello" -d '{"name": "Gust"}'
show curl -sS "http://127.0.0.1:$port/apps/reviews/reviews/about"

step "A second release of cats: tuna costs more"
sed -i "s/'tuna': 3.0/'tuna': 3.5/" "$cats/food.py"
push cats "$cats" "Tuna costs more"
show curl -sS -X POST "http://127.0.0.1:$port/apps/cats/_/functions/food:buy" -d '{"food": "tuna"}'

step "Rolling back to v1 (a new release, v3, made from v1's artifact)"
show "$bin/gust" rollback cats v1
show curl -sS -X POST "http://127.0.0.1:$port/apps/cats/_/functions/food:buy" -d '{"food": "tuna"}'
show "$bin/gust" releases cats

cat <<TXT

Try it yourself: this demo's gustd stops now; start one on the same home and everything
that was live comes back.
  export GUST_HOME=$GUST_HOME
  $bin/gustd --http 127.0.0.1:8080 &
  $bin/gust releases show cats v2
  curl -X POST http://127.0.0.1:8080/apps/cats/_/functions/food:buy -d '{"food": "kibble"}'
  cd $cats && (edit something) && git commit -am change && git push $GUST_HOME/repos/cats.git main
Stop it with: kill %1   Remove the demo with: rm -rf $demo
TXT
