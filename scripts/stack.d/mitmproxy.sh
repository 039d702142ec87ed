# mitmproxy for the fault-injection suite (tests/faults, scripts/test-faults): the registry
# answering HTTP 500, which a TCP fault proxy (Toxiproxy) cannot do. Sourced, not run; not a
# service of scripts/stack: the case that needs it starts its own `mitmdump` in reverse-proxy
# mode on a free loopback port in front of the stack's registry, with the addon
# tests/faults/http_fault.py, and stops it when done, so the shared stack is never touched.
#
# mitmproxy (the maintained HTTP intercepting proxy) is installed from PyPI at the pinned
# version below into a virtualenv, once, in ~/.cache/cdc-agent/mitmproxy-<version>/ (kept
# across runs and checkouts, like Toxiproxy); a new pin installs a new one. Python >= 3.10 with
# the venv module is needed.
#   source scripts/stack.d/mitmproxy.sh; mitmproxy_install   # prints the path of mitmdump

# shellcheck shell=bash
# The newest version that still runs on Python 3.11 (12.x needs 3.12).
MITMPROXY_VERSION=11.0.2

_mitmproxy_dir() { echo "${CDC_MITMPROXY_DIR:-$HOME/.cache/cdc-agent/mitmproxy-$MITMPROXY_VERSION}"; }

# mitmproxy_install: print the path of mitmdump, installing it when missing.
mitmproxy_install() {
  local d bin tmp py
  d=$(_mitmproxy_dir)
  bin=$d/bin/mitmdump
  if [[ ! -x $bin || $(cat "$d/.version" 2>/dev/null) != "$MITMPROXY_VERSION" ]]; then
    py=$(command -v python3) || die "mitmproxy: python3 (>= 3.10, with venv) is needed"
    "$py" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null \
      || die "mitmproxy: $py is older than 3.10 or lacks the venv module (Debian: python3-venv)"
    log "mitmproxy: installing mitmproxy==$MITMPROXY_VERSION from PyPI into $d (once)"
    # A virtualenv's scripts name its own path: build it where it stays, then mark it done.
    tmp="$d"
    rm -rf "$tmp"
    "$py" -m venv "$tmp" >&2
    "$tmp/bin/pip" install --quiet --disable-pip-version-check "mitmproxy==$MITMPROXY_VERSION" >&2 \
      || { rm -rf "$tmp"; die "mitmproxy: pip install mitmproxy==$MITMPROXY_VERSION failed (set PIP_INDEX_URL to a reachable package index)"; }
    echo "$MITMPROXY_VERSION" >"$d/.version"
  fi
  printf '%s\n' "$bin"
}
