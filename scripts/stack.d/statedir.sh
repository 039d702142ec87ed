# Where a database service keeps its state, shared by postgres.sh and mariadb.sh.
# Sourced by those modules, not a service itself. Sourced, not run.
#
# PostgreSQL and MariaDB run as their own OS users (postgres, mysql), never as root, so
# their data folder must be reachable by that user. $CDC_STACK_DIR/<svc> is the state
# folder whenever that user can traverse $CDC_STACK_DIR. When it cannot (CI runs as
# root and clones under /root, whose mode is 0700; Debian 12 creates home folders 0700
# too), we do not loosen the permissions of folders we do not own: the state lives in
# /var/tmp/cdc-stack-<hash of $CDC_STACK_DIR>/<svc> instead, and $CDC_STACK_DIR/<svc> is a
# symlink to it, so every path under $CDC_STACK_DIR/<svc> still works for root and the
# invoking user. The servers themselves are always given the resolved path. The same
# fallback is taken when the path is too long for a unix socket (108 bytes).
# Removing $CDC_STACK_DIR removes the symlink only; the orphaned /var/tmp folder is
# discarded by the next start (unless a process still runs from it), so a fresh
# CDC_STACK_DIR always means a fresh cluster.

# as_svc_user USER COMMAND...: run COMMAND as the OS user USER, from /, keeping the env.
as_svc_user() {
  local user=$1
  shift
  if [[ $(id -u) -eq 0 ]]; then
    (cd / && runuser -u "$user" -- "$@")
  else
    (cd / && sudo -u "$user" -- "$@")
  fi
}

# proc_is PID NAME: PID is a live process whose command name is NAME (a stale pid file
# whose pid was reused by something else does not count). Works for any user's process.
proc_is() {
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  [[ $(ps -o comm= -p "$1" 2>/dev/null) == "$2" ]]
}

# _stack_fallback_dir SVC: the /var/tmp folder used when $CDC_STACK_DIR is unreachable.
_stack_fallback_dir() {
  local hash
  hash=$(realpath -m "$CDC_STACK_DIR" | tr -d '\n' | sha256sum | cut -c1-12)
  printf '/var/tmp/cdc-stack-%s/%s\n' "$hash" "$1"
}

# stack_state_path SVC: the resolved state folder of SVC, without creating anything. When
# $CDC_STACK_DIR was removed under a running server, that is the orphaned fallback folder,
# so that stop and status still find the server.
stack_state_path() {
  local link
  link=$(realpath -m "$CDC_STACK_DIR")/$1
  if [[ -L $link ]]; then
    readlink -m "$link"
  elif [[ ! -e $link && -d $(_stack_fallback_dir "$1") ]]; then
    _stack_fallback_dir "$1"
  else
    printf '%s\n' "$link"
  fi
}

# stack_state_dir VAR SVC USER: create (when missing) the state folder of SVC owned by the
# OS user USER, and store its resolved path in the variable VAR.
stack_state_dir() {
  local var=$1 svc=$2 user=$3 base link real pids
  base=$(realpath -m "$CDC_STACK_DIR")
  link=$base/$svc
  mkdir -p "$base"
  if [[ -L $link ]]; then
    real=$(readlink -m "$link")
  elif [[ -d $link ]]; then
    real=$link
    as_svc_user "$user" test -x "$real" \
      || die "$svc: $real is not reachable by the OS user $user; remove it (or $CDC_STACK_DIR) to start afresh"
  elif [[ $(( ${#link} + 24 )) -le 100 ]] && as_svc_user "$user" test -x "$base"; then
    real=$link
  else
    real=$(_stack_fallback_dir "$svc")
    as_root mkdir -p "${real%/*}"
    [[ $(stat -c %u "${real%/*}") -eq 0 ]] || die "${real%/*} is not owned by root; refusing to use it"
    as_root chmod 0755 "${real%/*}"
    if [[ -e $real ]]; then
      # Left behind by a $CDC_STACK_DIR that was removed: discard it, unless it still serves.
      pids=$(as_root bash -c 'for p in /proc/[0-9]*; do
          c=$(readlink "$p/cwd" 2>/dev/null) && [[ $c == "$1" || $c == "$1"/* ]] && echo "${p#/proc/}"
        done; true' _ "$real" | tr '\n' ' ')
      [[ -z $pids ]] \
        || die "$svc: $real (of a removed $CDC_STACK_DIR) is still in use by pid ${pids% }; run: scripts/stack stop $svc"
      log "$svc: discarding orphaned state $real"
      as_root rm -rf "$real"
    fi
    log "$svc: $base is not reachable by the OS user $user (or too long for a socket path); keeping the state in $real (symlinked)"
    ln -s "$real" "$link"
  fi
  as_root mkdir -p "$real"
  as_root chown "$user:$user" "$real"
  as_root chmod 0755 "$real"
  printf -v "$var" '%s' "$real"
}
