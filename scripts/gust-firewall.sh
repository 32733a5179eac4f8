#!/usr/bin/env bash
# Keeps sandboxed apps away from the host's own services: for every uid of the
# gust user's subordinate range (the apps' uids, docs/security.md), refuses
# connections to any address of this machine (loopback, gustd's listeners,
# other local services), to the link-local ranges (169.254.169.254, cloud
# metadata) and to the clouds' other metadata services (AWS's IPv6 one, Alibaba
# Cloud's, Azure's WireServer), where a request from the host reads its
# credentials. Everything else stays open: functions call APIs.
#
#   gust-firewall.sh START COUNT     load the rules (table inet gust), replacing any before
#   gust-firewall.sh --closed START COUNT   also refuse all other egress (apps reach nothing)
#   gust-firewall.sh --remove        remove them
#
# Run once by the installer (as root); rules do not survive a reboot unless
# saved (nft list ruleset > /etc/nftables.conf, with the nftables service enabled).
set -euo pipefail

closed=false
case "${1:-}" in
  --remove) nft delete table inet gust 2>/dev/null || true; exit 0 ;;
  --closed) closed=true; shift ;;
esac
[ $# -eq 2 ] || { echo "usage: $0 [--closed] START COUNT | --remove" >&2; exit 2; }
start=$1
end=$(($1 + $2 - 1))

nft delete table inet gust 2>/dev/null || true
rules="
table inet gust {
  chain egress {
    type filter hook output priority 0; policy accept;
    meta skuid $start-$end fib daddr type local reject
    meta skuid $start-$end ip daddr 169.254.0.0/16 reject
    meta skuid $start-$end ip6 daddr fe80::/10 reject
    meta skuid $start-$end ip daddr { 100.100.100.200, 168.63.129.16 } reject
    meta skuid $start-$end ip6 daddr fd00:ec2::254 reject
"
if [ "$closed" = true ]; then
  rules+="    meta skuid $start-$end reject
"
fi
rules+="  }
}"
nft -f - <<<"$rules"
