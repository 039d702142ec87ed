# Toxiproxy for the fault-injection suite (tests/faults, scripts/test-faults). Sourced, not run;
# not a service of scripts/stack: each fault test starts its own server on free loopback ports
# and stops it when done, so the shared stack is never touched.
#
# The server is built from its Go module (Shopify's maintained TCP fault proxy) at the pinned
# version below, once, into ~/.cache/cdc-agent/toxiproxy-<version>/ (kept across runs and
# checkouts, like the minimal Debian root); a new pin builds a new binary. Go >= 1.17 is needed
# (Debian's golang-go is installed when no `go` is on PATH).
#   source scripts/stack.d/toxiproxy.sh; toxiproxy_install   # prints the server's path

# shellcheck shell=bash
# The newest version the Go module proxy serves (`go list -m -versions github.com/Shopify/toxiproxy/v2`).
TOXIPROXY_VERSION=v2.5.0
TOXIPROXY_MODULE=github.com/Shopify/toxiproxy/v2

_toxiproxy_dir() { echo "${CDC_TOXIPROXY_DIR:-$HOME/.cache/cdc-agent/toxiproxy-$TOXIPROXY_VERSION}"; }

# toxiproxy_install: print the path of toxiproxy-server, building it when missing.
toxiproxy_install() {
  local d bin tmp
  d=$(_toxiproxy_dir)
  bin=$d/toxiproxy-server
  # `-version` says "git" for a `go install` build: the version is kept in a marker file.
  if [[ ! -x $bin || $(cat "$d/.version" 2>/dev/null) != "$TOXIPROXY_VERSION" ]]; then
    if ! command -v go >/dev/null 2>&1; then
      if [[ -x /usr/local/go/bin/go ]]; then
        PATH=/usr/local/go/bin:$PATH
      else
        apt_install_missing golang-go ca-certificates
      fi
    fi
    log "toxiproxy: building $TOXIPROXY_MODULE/cmd/server@$TOXIPROXY_VERSION into $d (once)"
    tmp="$d.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    GOBIN=$tmp GOFLAGS=-mod=mod go install "$TOXIPROXY_MODULE/cmd/server@$TOXIPROXY_VERSION" >&2 \
      || { rm -rf "$tmp"; die "toxiproxy: go install $TOXIPROXY_MODULE/cmd/server@$TOXIPROXY_VERSION failed (set GOPROXY to a reachable module proxy)"; }
    mv "$tmp/server" "$tmp/toxiproxy-server"
    echo "$TOXIPROXY_VERSION" >"$tmp/.version"
    rm -rf "$d"
    mv "$tmp" "$d"
  fi
  printf '%s\n' "$bin"
}
