# cdc-agent container image: build stage (Rust on Debian bookworm) → runtime on
# debian:bookworm-slim with the two shared libraries' packages the binary needs
# (libssl3; ca-certificates for TLS to Kafka, registry, databases) and nothing else.
# tests/minimal_root.rs runs the binary in the same runtime (debootstrap minbase + these
# packages, as uid 65532, only the config mounted) since CI has no container engine.
#
#   docker build -t cdc-agent .
#   docker run -v $PWD/deploy/container:/etc/cdc-agent:ro cdc-agent
#   docker run ... cdc-agent check --config /etc/cdc-agent/cdc-agent.toml

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev zlib1g-dev python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin cdc-agent \
 && objcopy --strip-debug target/release/cdc-agent /cdc-agent

FROM debian:bookworm-slim
# RUNTIME_PACKAGES: keep in step with scripts/minimal-root (tests/minimal_root.rs checks it).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 65532 cdc-agent \
 && useradd --system --uid 65532 --gid cdc-agent --home-dir /var/lib/cdc-agent --no-create-home \
      --shell /usr/sbin/nologin cdc-agent \
 && install -d -o cdc-agent -g cdc-agent -m 0750 /var/lib/cdc-agent
COPY --from=build /cdc-agent /usr/bin/cdc-agent
COPY deploy/container/cdc-agent.toml /etc/cdc-agent/cdc-agent.toml
USER 65532:65532
# The HTTP endpoint listens on every interface inside the container (127.0.0.1 elsewhere).
ENV CDC_AGENT__HTTP__LISTEN=0.0.0.0:8080 \
    CDC_AGENT__AGENT__STATE_DIR=/var/lib/cdc-agent
EXPOSE 8080
VOLUME ["/var/lib/cdc-agent"]
# No curl in the image: bash's /dev/tcp speaks enough HTTP for a health probe.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
# SIGTERM drains Kafka and acknowledges positions; give it time (docker stop -t 60).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/cdc-agent"]
CMD ["run", "--config", "/etc/cdc-agent/cdc-agent.toml", "--log-format", "json"]
