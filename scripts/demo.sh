#!/usr/bin/env bash
# `make demo`: a throwaway GUST_HOME, an app, a real `git push` of the example,
# the streamed build log and the release list.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$(cd "$root" && swift build --show-bin-path)"
demo="$(mktemp -d /tmp/gust-demo.XXXXXX)"
export GUST_HOME="$demo/home"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="Gust Demo" GIT_AUTHOR_EMAIL="demo@gust.invalid"
export GIT_COMMITTER_NAME="Gust Demo" GIT_COMMITTER_EMAIL="demo@gust.invalid"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "A throwaway home: $GUST_HOME"
"$bin/gust" apps create cats

step "git push of examples/python-cats (the build log streams back as remote: lines)"
work="$demo/cats"
cp -R "$root/examples/python-cats" "$work"
git -C "$work" init -q -b main
git -C "$work" add -A
git -C "$work" commit -q -m "First cats"
git -C "$work" push "$GUST_HOME/repos/cats.git" main

step "gust releases cats"
"$bin/gust" releases cats

cat <<TXT

Try it yourself:
  export GUST_HOME=$GUST_HOME
  $bin/gust releases show cats v1
  cd $work && (edit something) && git commit -am change && git push $GUST_HOME/repos/cats.git main
Remove the demo with: rm -rf $demo
TXT
