#!/usr/bin/env bash
# Hands gustd's cgroup tree to its user on cgroup v1, as root, before gustd starts: gustd.service
# runs it (ExecStartPre=+…, `+` runs it as root) with gustd's own options. docs/security.md,
# "Running as the `gust` user", says why:
#
#   gust-cgroups.sh [--mount DIR] USER [GUSTD_OPTION…]
#
# On cgroup v1 every controller is a hierarchy of its own, and systemd's Delegate=yes hands the
# gust user none of them: without this step an unprivileged gustd cannot make a cgroup per
# instance and falls back to rlimits. For each controller gustd uses (memory, pids, cpu) whose v1
# hierarchy is mounted under DIR (/sys/fs/cgroup), it makes gustd's cgroup there (its
# --cgroup-root, `gust` unless GUSTD_OPTION says otherwise) and gives it, its files (cgroup.procs,
# tasks, the limits) and anything left in it to USER and USER's group. A v1 tree lives until
# reboot, so this runs before every start; a second run changes nothing. Where no v1 hierarchy is
# mounted (cgroup v2 only) it delegates nothing: there Delegate=yes hands gustd its subtree. With
# --no-limits among the options it does nothing at all.
#
# It also turns on `favordynmods` on the cgroup v2 mount under DIR (DIR itself, or DIR/unified on
# a hybrid machine), keeping that mount's other options: without it, the first move of a process
# into a cgroup after a quiet spell waits about 10 ms for the kernel (an RCU grace period), and
# every new instance moves into cgroups of its own. The option is host-wide and lasts until
# reboot; fork and exit cost a little more under it (docs/operations.md, "Quick cgroup moves").
# GUST_FAVORDYNMODS=no in the unit's environment leaves the mount as it is.
set -euo pipefail

mount="/sys/fs/cgroup"
if [ "${1:-}" = "--mount" ]; then
  mount="$2"
  shift 2
fi
[ $# -ge 1 ] || { echo "usage: gust-cgroups.sh [--mount DIR] USER [GUSTD_OPTION…]" >&2; exit 2; }
user="$1"
shift
name="gust"
while [ $# -gt 0 ]; do
  case "$1" in
    --cgroup-root) name="${2:-}"; shift $(( $# > 1 ? 2 : 1 )) ;;
    --cgroup-root=*) name="${1#--cgroup-root=}"; shift ;;
    --no-limits) echo "gust-cgroups: gustd runs with --no-limits; nothing to do"; exit 0 ;;
    *) shift ;;
  esac
done
# gustd takes a plain name only (an app name's characters); anything else would be a path.
[[ "$name" =~ ^[a-z][a-z0-9-]{0,62}$ ]] || { echo "gust-cgroups: --cgroup-root '$name' is not a plain name" >&2; exit 2; }
group="$(id -gn "$user")" || { echo "gust-cgroups: no user $user" >&2; exit 1; }

# The file that tells a mounted v1 hierarchy of the controller from an empty directory (as gustd's LimitMechanism looks).
marker() {
  case "$1" in
    memory) echo memory.limit_in_bytes ;;
    pids) echo cgroup.procs ;;
    cpu) echo cpu.cfs_period_us ;;
  esac
}

delegated=()
for controller in memory pids cpu; do
  hierarchy="$mount/$controller"
  # Only a v1 hierarchy (filesystem type cgroupfs; a v2 one is cgroup2fs) that has the controller.
  [ -e "$hierarchy/$(marker "$controller")" ] || continue
  [ "$(stat -f -c %T "$hierarchy/")" = cgroupfs ] || continue
  directory="$hierarchy/$name"
  mkdir -p "$directory"
  chown -R "$user:$group" "$directory"
  delegated+=("$directory")
done
# favordynmods on the v2 mount (only under $mount: a test's fake DIR leaves the host alone).
quick_moves() {
  if [ "${GUST_FAVORDYNMODS:-yes}" = no ]; then
    echo "gust-cgroups: GUST_FAVORDYNMODS=no; moves into cgroups stay as they are"
    return
  fi
  local target options
  while read -r target options; do
    [ "$target" = "$mount" ] || [ "$target" = "$mount/unified" ] || continue
    case ",$options," in
      *,favordynmods,*) echo "gust-cgroups: $target already has favordynmods"; return ;;
    esac
    if mount -o "remount,$options,favordynmods" "$target"; then
      echo "gust-cgroups: favordynmods turned on for $target (quick moves into cgroups)"
    else
      # Not fatal: gustd works the same, each start's move into its cgroups may just wait (Linux before 6.0 has no such option).
      echo "gust-cgroups: could not turn on favordynmods for $target; moves into cgroups may wait about 10 ms" >&2
    fi
    return
  done < <(findmnt -n -l -t cgroup2 -o TARGET,FS-OPTIONS)
}
quick_moves

if [ ${#delegated[@]} -eq 0 ]; then
  echo "gust-cgroups: no cgroup v1 hierarchy of memory, pids or cpu under $mount; nothing to do (on cgroup v2, Delegate=yes does it)"
else
  echo "gust-cgroups: ${delegated[*]} are $user's"
fi
