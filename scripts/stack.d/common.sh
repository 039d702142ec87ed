# Helpers shared by the service modules of scripts/stack. Sourced, not run.

log() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

# Run as root directly, otherwise through sudo (a developer machine).
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# Debian packages every service needs, installed in one apt transaction when any is missing.
# Service modules append to STACK_APT_PACKAGES when they are sourced.
STACK_APT_PACKAGES=()
_apt_updated=0
apt_install_missing() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "installing Debian packages: ${missing[*]}"
  if [[ $_apt_updated -eq 0 ]]; then
    as_root apt-get update -qq >&2
    _apt_updated=1
  fi
  # Debian's postinst scripts would start system-wide services on default ports; the stack
  # runs its own instances, so keep the packages from starting anything.
  as_root env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
apt_install_missing_batch() {
  [[ ${#STACK_APT_PACKAGES[@]} -eq 0 ]] || apt_install_missing "${STACK_APT_PACKAGES[@]}"
}

# pid_alive FILE: the pid in FILE names a live process.
pid_alive() {
  [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

# stop_pidfile FILE NAME [SECONDS]: TERM the process in FILE, wait, KILL if it lingers.
stop_pidfile() {
  local file=$1 name=$2 secs=${3:-30} pid i
  if ! pid_alive "$file"; then
    rm -f "$file"
    return 0
  fi
  pid=$(cat "$file")
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$file"; return 0; }
    sleep 0.1
  done
  log "$name did not stop in ${secs}s, killing"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$file"
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds.
wait_for() {
  local secs=$1 what=$2 i
  shift 2
  for ((i = 0; i < secs * 4; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  die "$what did not come up within ${secs}s"
}

# port_open PORT: something listens on 127.0.0.1:PORT.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
