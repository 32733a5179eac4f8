#!/usr/bin/env bash
# Installs the system packages Gust needs to build and test, only where missing,
# so that `make demo` and `make test` work on a fresh Debian machine.
# With --bench, also the peers and the load generator `make bench` runs:
# nginx in front of uWSGI (as Piku serves a Python app) and wrk.
set -euo pipefail

bench=false
case "${1:-}" in
  "") ;;
  --bench) bench=true ;;
  *) echo "usage: $0 [--bench]" >&2; exit 2 ;;
esac

packages=(libgit2-dev libarchive-dev libsqlite3-dev pkg-config git openssh-server openssh-client shellcheck zstd)
# The Public Suffix List: no app may have a public suffix (co.uk, github.io) as its domain.
packages+=(publicsuffix)
# The sandbox of instances and builds: bwrap, newuidmap/newgidmap for each app's uid,
# nftables for scripts/gust-firewall.sh (docs/security.md).
packages+=(bubblewrap uidmap nftables)
# Express and ws for the tests of `gust.mount` and WebSockets in Node (npm's registry may be out of reach: Debian's copies are vendored).
packages+=(node-express node-ws)
# Flask for the Flask example's own tests (`make test-examples`).
python3 -c 'import flask' >/dev/null 2>&1 || packages+=(python3-flask)
# The Python buildpack runs the host's pip into a venv; the Node one runs npm.
python3 -m pip --version >/dev/null 2>&1 || packages+=(python3 python3-venv python3-pip)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
command -v curl >/dev/null 2>&1 || packages+=(curl)
# The metrics tests check gustd's /metrics with promtool and scrape it with a real Prometheus.
command -v promtool >/dev/null 2>&1 || packages+=(prometheus)
# The installer's tests: systemd-analyze verify on the unit, useradd into a scratch root.
command -v systemd-analyze >/dev/null 2>&1 || packages+=(systemd)
command -v useradd >/dev/null 2>&1 || packages+=(passwd)
# HTTPS: the ACME tests run pebble (an ACME test server) and pebble-challtestsrv (its DNS); openssl makes test certificates.
command -v pebble >/dev/null 2>&1 || packages+=(pebble)
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
# Stacks (`gust stacks build`, docs/stacks.md) are made by mmdebstrap. OCI images of releases
# (docs/oci.md): the tests build a stack, read the exported layout
# with skopeo and umoci, and load and run it with podman (runc, slirp4netns for records over HTTPS).
command -v mmdebstrap >/dev/null 2>&1 || packages+=(mmdebstrap)
packages+=(podman runc slirp4netns skopeo umoci uidmap)
# The web console's browser tests: a real headless Chromium driven by Selenium (run with /usr/bin/python3).
packages+=(chromium chromium-driver python3-selenium)
# The Kubernetes manifests' tests: PyYAML reads them back, python3-jsonschema checks the Knative
# Service against Knative's CRD schema, podman runs the Deployment (`podman kube play`) with the
# release's exported image; a pod's infra container is podman's local pause image, which it builds
# from catatonit (only a Recommends of podman's, which --no-install-recommends leaves out).
packages+=(python3-yaml python3-jsonschema podman runc uidmap catatonit)
[ "$bench" = false ] || packages+=(nginx-light uwsgi-core uwsgi-plugin-python3 python3-flask wrk)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
if [ ${#missing[@]} -gt 0 ]; then
  echo "-----> Installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# kubernetes-validate (PyPI; Debian has none), pinned, in a venv of its own, on PATH as
# /usr/local/bin/kubernetes-validate: the manifests' tests check every object with it.
kubernetes_validate=1.37.0
venv=/opt/gust-tools/kubernetes-validate-$kubernetes_validate
if ! [ -x "$venv/bin/kubernetes-validate" ]; then
  echo "-----> Installing kubernetes-validate $kubernetes_validate into $venv"
  "${sudo[@]}" python3 -m venv "$venv"
  "${sudo[@]}" "$venv/bin/pip" install -q "kubernetes-validate==$kubernetes_validate"
fi
[ "$(readlink /usr/local/bin/kubernetes-validate 2>/dev/null)" = "$venv/bin/kubernetes-validate" ] \
  || "${sudo[@]}" ln -sf "$venv/bin/kubernetes-validate" /usr/local/bin/kubernetes-validate
