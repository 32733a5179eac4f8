#!/usr/bin/env bash
# Sets a Debian server up to run Gust the documented way (docs/operations.md):
#   - the `gust` system user and its home, with GUST_HOME=/home/gust/.gust
#   - gust, gust-receive and gustd in PREFIX/bin, buildpacks and hooks in PREFIX/share/gust,
#     from a release build (`swift build -c release`, run if there is none)
#   - a range of subordinate uids and gids for `gust` in /etc/subuid and /etc/subgid
#     (the sandbox maps each app to a uid of that range)
#   - sshd's `Match User gust` block with AuthorizedKeysFile, in /etc/ssh/sshd_config.d/gust.conf
#   - a first admin key (--admin-key FILE)
#   - the systemd unit gustd.service (Delegate=yes: gustd's cgroup subtree is its own; on cgroup v1
#     its ExecStartPre= runs PREFIX/lib/gust/gust-cgroups.sh as root, which hands gustd's cgroup under
#     the memory, pids and cpu hierarchies to the user at each start) and its
#     sockets gustd.socket (enabled: the HTTP port stays open while gustd restarts or is
#     upgraded) and gustd-https.socket (installed, enabled by the admin with --https)
#
# Idempotent: a second run changes nothing. It never touches what it did not create:
# every file it writes is listed with its checksum in INSTALL_MANIFEST, and a file that
# exists without being listed there (or that was edited since) is refused, as is a
# `gust` user or an sshd `Match User gust` block that was there before it.
#
# --root DIR runs it against a scratch root (tests): every path is under DIR, the user is
# made with useradd --root, and nothing is started or reloaded.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/install.sh [--admin-key FILE] [--admin-name NAME] [--bin DIR] [--prefix DIR]
                          [--user NAME] [--root DIR]

  --admin-key FILE   an OpenSSH public key to add as the first admin key (`gust keys add NAME FILE --admin`)
  --admin-name NAME  the name of that key (default: admin)
  --bin DIR          where the built gust, gust-receive and gustd are (default: the checkout's
                     .build/release, built with `swift build -c release` if missing)
  --prefix DIR       where to install them (default: /usr/local)
  --user NAME        the user gustd runs as and pushes log in as (default: gust)
  --root DIR         install into DIR instead of / (for tests); starts and reloads nothing
USAGE
}

source_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root=""
admin_key=""
admin_name="admin"
bin_dir=""
prefix="/usr/local"
user="gust"
marker="# Managed by Gust's scripts/install.sh"

while [ $# -gt 0 ]; do
  case "$1" in
    --admin-key) admin_key="$2"; shift 2 ;;
    --admin-name) admin_name="$2"; shift 2 ;;
    --bin) bin_dir="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    --user) user="$2"; shift 2 ;;
    --root) root="$(cd "$2" && pwd)"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[ "$root" = "/" ] && root=""

step() { echo "-----> $*"; }
detail() { echo "       $*"; }
fail() {
  echo " !     $1" >&2
  [ $# -lt 2 ] || echo " !     $2" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || fail "Run the installer as root: it adds a user and writes to /etc."

user_home="/home/$user"
gust_home="$user_home/.gust"
manifest="$root/var/lib/gust/install-manifest"
changed=0

# --- the manifest: what this installer wrote, with each file's checksum ------------------

recorded() { # KEY -> the value recorded for KEY, or nothing
  [ ! -f "$manifest" ] || awk -v key="$1" '$1 == key { print $2 }' "$manifest"
}

record() { # KEY VALUE
  local temporary
  mkdir -p "$(dirname "$manifest")"
  touch "$manifest"
  temporary="$(mktemp "$manifest.XXXXXX")"
  awk -v key="$1" '$1 != key' "$manifest" > "$temporary"
  printf '%s %s\n' "$1" "$2" >> "$temporary"
  sort -o "$temporary" "$temporary"
  mv "$temporary" "$manifest"
}

checksum() { sha256sum "$1" | cut -d' ' -f1; }

# Refuses PATH if it exists and this installer did not write it, or it was edited since.
ours_or_absent() { # PATH
  local path="$root$1" known
  [ -e "$path" ] || return 0
  known="$(recorded "file:$1")"
  [ -n "$known" ] || fail "$1 exists and was not written by this installer; it is left alone." \
    "Move it aside (or merge it by hand) and run the installer again."
  [ "$(checksum "$path")" = "$known" ] || fail "$1 was changed since this installer wrote it; it is left alone." \
    "Undo the change, or remove the file and its line from ${manifest#"$root"}, and run the installer again."
}

# Writes SOURCE to PATH (mode MODE) if it differs, refusing a file it did not write.
place() { # SOURCE PATH MODE
  local source="$1" path="$root$2" mode="$3"
  ours_or_absent "$2"
  if [ -e "$path" ]; then
    if cmp -s "$source" "$path"; then
      [ "$(stat -c %a "$path")" = "$mode" ] || chmod "$mode" "$path"
      return 0
    fi
  fi
  mkdir -p "$(dirname "$path")"
  install -m "$mode" "$source" "$path"
  record "file:$2" "$(checksum "$path")"
  detail "wrote $2"
  changed=1
}

# --- before changing anything: is anything in the way that is not ours? ------------------

dropin="/etc/ssh/sshd_config.d/gust.conf"
share_files() { # the files of buildpacks/, hooks/ and docs/ to install, NUL-separated
  find "$source_dir/buildpacks" "$source_dir/hooks" "$source_dir/docs" -type f \
    ! -name '*.pyc' ! -path '*/__pycache__/*' ! -path '*/node_modules/*' ! -path '*/tests/*' ! -path '*/test/*' \
    ! -path '*/protocol-tests/*' -print0 | sort -z
}
passwd_entry() { awk -F: -v name="$user" '$1 == name' "$root/etc/passwd"; }

step "Checking that nothing in the way was made by someone else"
if [ -n "$(passwd_entry)" ] && [ "$(recorded "user:$user")" != created ]; then
  fail "A user named $user exists and was not created by this installer; it is left alone." \
    "Install for another user with --user NAME, or set it up by hand as docs/operations.md describes."
fi
# A Match block for the user anywhere but our own file is someone else's: refuse rather than fight it.
while IFS= read -r -d '' config; do
  [ "$config" = "$root$dropin" ] && continue
  if grep -Eiq "^[[:space:]]*Match[[:space:]].*User[[:space:]]+([^[:space:]]+,)?$user([,[:space:]]|$)" "$config"; then
    fail "${config#"$root"} already has a Match block for the user $user; it is left alone." \
      "Remove it (or install for another --user) and run the installer again."
  fi
done < <(find "$root/etc/ssh" -maxdepth 1 -name '*sshd_config*' -type f -print0 2>/dev/null; \
  find "$root/etc/ssh/sshd_config.d" -maxdepth 1 -name '*.conf' -type f -print0 2>/dev/null)
for path in "$prefix/bin/gust" "$prefix/bin/gust-receive" "$prefix/bin/gustd" "$prefix/lib/gust/gust-cgroups.sh" "$dropin" /etc/systemd/system/gustd.service \
  /etc/systemd/system/gustd.socket /etc/systemd/system/gustd-https.socket; do
  ours_or_absent "$path"
done
while IFS= read -r -d '' file; do
  ours_or_absent "$prefix/share/gust/${file#"$source_dir"/}"
done < <(share_files)

# --- binaries and share files from a release build ----------------------------------------

step "Installing gust, gust-receive and gustd into $prefix"
if [ -z "$bin_dir" ]; then
  bin_dir="$source_dir/.build/release"
  if [ ! -x "$bin_dir/gustd" ]; then
    detail "no release build yet: swift build -c release"
    (cd "$source_dir" && swift build -c release)
  fi
fi
for binary in gust gust-receive gustd; do
  [ -x "$bin_dir/$binary" ] || fail "$bin_dir/$binary is missing." "Build it with \`swift build -c release\`, or pass --bin DIR."
  place "$bin_dir/$binary" "$prefix/bin/$binary" 755
done
# Run as root by gustd.service before gustd starts (cgroup v1 delegation).
place "$source_dir/contrib/systemd/gust-cgroups.sh" "$prefix/lib/gust/gust-cgroups.sh" 755
while IFS= read -r -d '' file; do
  relative="${file#"$source_dir"/}"
  mode=644
  [ ! -x "$file" ] || mode=755
  place "$file" "$prefix/share/gust/$relative" "$mode"
done < <(share_files)

# --- the user, its home and GUST_HOME -----------------------------------------------------

step "The $user user and GUST_HOME ($gust_home)"
root_args=()
[ -z "$root" ] || root_args=(--root "$root")
if [ -z "$(passwd_entry)" ]; then
  useradd "${root_args[@]}" --system --user-group --shell /bin/sh --home-dir "$user_home" --create-home "$user"
  record "user:$user" created
  detail "created the system user $user (shell /bin/sh: sshd runs the forced command with it)"
  changed=1
fi
uid="$(passwd_entry | cut -d: -f3)"
gid="$(passwd_entry | cut -d: -f4)"
for directory in "$user_home" "$gust_home" "$gust_home/ssh"; do
  if [ ! -d "$root$directory" ]; then
    mkdir -p "$root$directory"
    changed=1
  fi
  # sshd's StrictModes refuses keys under a directory others can write.
  [ "$(stat -c '%u:%g %a' "$root$directory")" = "$uid:$gid 700" ] || {
    chown "$uid:$gid" "$root$directory"
    chmod 700 "$root$directory"
  }
done

# --- subordinate ids for the sandbox ------------------------------------------------------

subordinate() { # FILE (subuid or subgid): gives $user a range of 65536 ids above every other
  local file="$root/etc/$1" start
  touch "$file"
  if awk -F: -v name="$user" -v id="$uid" '$1 == name || $1 == id { found = 1 } END { exit !found }' "$file"; then
    return 0
  fi
  start="$(awk -F: 'BEGIN { end = 100000 } $3 > 0 && $2 + $3 > end { end = $2 + $3 } END { print end }' "$file")"
  start=$(( (start + 65535) / 65536 * 65536 ))
  printf '%s:%s:65536\n' "$user" "$start" >> "$file"
  record "$1:$user" "$start"
  detail "gave $user the ids $start-$((start + 65535)) in /etc/$1"
  changed=1
}
step "Subordinate uids and gids for the sandbox"
subordinate subuid
subordinate subgid

# --- sshd ---------------------------------------------------------------------------------

step "sshd: Match User $user reads $gust_home/ssh/authorized_keys"
if [ -f "$root/etc/ssh/sshd_config" ] && ! grep -Eq '^[[:space:]]*Include[[:space:]]+/etc/ssh/sshd_config\.d/' "$root/etc/ssh/sshd_config"; then
  detail "note: /etc/ssh/sshd_config does not include sshd_config.d/*.conf; add"
  detail "      Include /etc/ssh/sshd_config.d/*.conf   at its top for $dropin to apply"
fi
generated="$(mktemp)"
trap 'rm -f "$generated"' EXIT
cat > "$generated" <<SSHD
$marker: Gust's pushes log in as $user, with the keys
# \`gust keys\` writes. Every key there is forced to run \`gust ssh-command\`.
Match User $user
    AuthorizedKeysFile $gust_home/ssh/authorized_keys
    PasswordAuthentication no
    KbdInteractiveAuthentication no
    DisableForwarding yes
    PermitTTY no
SSHD
place "$generated" "$dropin" 644

# --- the first admin key ------------------------------------------------------------------

as_user() { # runs a command as the user (on a scratch root: as root, then gives the files to the user)
  if [ -z "$root" ]; then
    runuser -u "$user" -- "$@"
  else
    "$@"
  fi
}
if [ -n "$admin_key" ]; then
  step "The first admin key, $admin_name"
  [ -r "$admin_key" ] || fail "Cannot read $admin_key."
  keys_file="$root$gust_home/ssh/authorized_keys"
  before=""
  [ ! -f "$keys_file" ] || before="$(checksum "$keys_file")"
  copy="$(mktemp)"
  cp "$admin_key" "$copy"
  chmod 644 "$copy"
  if ! output="$(as_user "$root$prefix/bin/gust" keys add "$admin_name" "$copy" --admin --home "$root$gust_home" 2>&1)"; then
    rm -f "$copy"
    fail "gust keys add refused the key: $output"
  fi
  rm -f "$copy"
  chown -R "$uid:$gid" "$root$gust_home"
  if [ "$before" != "$(checksum "$keys_file")" ]; then
    detail "$output"
    changed=1
  fi
  if [ -n "$root" ]; then
    # The forced command names gust as seen from the scratch root; on the server it is $prefix/bin/gust.
    detail "(on a scratch root the keys file names $root$prefix/bin/gust)"
  fi
fi

# --- the systemd unit ---------------------------------------------------------------------

step "systemd: gustd.service, gustd.socket, gustd-https.socket"
unit="$(mktemp)"
for name in gustd.service gustd.socket gustd-https.socket; do
  sed -e "s|/usr/local/|$prefix/|g" -e "s|/home/gust|$user_home|g" -e "s|^User=gust|User=$user|" -e "s|^Group=gust|Group=$user|" \
    -e "s|gust-cgroups.sh gust |gust-cgroups.sh $user |" \
    "$source_dir/contrib/systemd/$name" > "$unit"
  place "$unit" "/etc/systemd/system/$name" 644
done
rm -f "$unit"

if [ -z "$root" ] && [ -d /run/systemd/system ]; then
  if [ "$changed" = 1 ]; then
    systemctl daemon-reload
    sshd -t && systemctl reload ssh
  fi
  # The socket first: a gustd already serving the port (an install from before gustd.socket)
  # stops so that systemd can bind it, and then starts with it.
  systemctl enable gustd.socket
  if ! systemctl is-active --quiet gustd.socket; then
    systemctl stop gustd.service
    systemctl start gustd.socket
  fi
  systemctl enable --now gustd.service
  [ "$changed" = 0 ] || systemctl restart gustd.service
fi

if [ "$changed" = 0 ]; then
  step "Nothing to change: Gust is installed as this installer would install it."
else
  step "Installed. Push with: git remote add gust ssh://$user@SERVER/APP.git && git push gust main"
  [ -z "$root" ] || detail "(scratch root $root: nothing was started or reloaded)"
  [ -n "$root" ] || [ -d /run/systemd/system ] || detail "systemd is not running here: start gustd with systemctl start gustd once it is."
fi
