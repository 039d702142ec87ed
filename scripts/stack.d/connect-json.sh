# Kafka Connect's own JsonConverter, the independent reader of the agent's JSON output
# (tests/postgres/json_output.rs runs tests/connect/JsonRead.java with it). Sourced by
# scripts/test after `scripts/stack up` (which installs Java and Maven); the classpath is
# resolved once and cached, like the broker's.
_connect_json_pom() { echo "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/maven/connect-json-pom.xml"; }

# connect_json_classpath: print the classpath, resolving it with Maven when needed.
connect_json_classpath() {
  local dir="$HOME/.cache/cdc-agent" f tmp jar ok=1
  f="$dir/connect-json-classpath-$(sha1sum "$(_connect_json_pom)" | cut -c1-12).txt"
  if [[ -s $f ]]; then
    while IFS= read -r -d: jar || [[ -n $jar ]]; do
      [[ -f $jar ]] || ok=0
    done <"$f"
  else
    ok=0
  fi
  if [[ $ok == 0 ]]; then
    mkdir -p "$dir"
    tmp="$f.tmp"
    local mvn_args=(-B -q -f "$(_connect_json_pom)" dependency:build-classpath
      -Dmdep.outputFile="$tmp" -Dmdep.includeScope=runtime)
    if ! mvn -o "${mvn_args[@]}" >/dev/null 2>&1; then
      log "connect-json: resolving jars from Maven Central into the local Maven repository"
      mvn "${mvn_args[@]}" >&2 || die "connect-json: maven could not resolve $(_connect_json_pom)"
    fi
    mv "$tmp" "$f"
  fi
  cat "$f"
}
