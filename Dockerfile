# The node's container image: built with the Rust toolchain, run from a small Debian image
# as an unprivileged user. docker-compose.yml and deploy/kubernetes/ use the same paths,
# user and ports.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p urbanmesh \
 && install -D -m 0755 target/release/urbanmesh /out/urbanmesh

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 urbanmesh \
 && useradd --system --uid 10001 --gid urbanmesh --home-dir /var/lib/urbanmesh --shell /usr/sbin/nologin urbanmesh \
 && install -d -o urbanmesh -g urbanmesh -m 0700 /var/lib/urbanmesh \
 && install -d -m 0755 /etc/urbanmesh
COPY --from=build /out/urbanmesh /usr/local/bin/urbanmesh
COPY deploy/federate.sh /usr/local/bin/urbanmesh-federate
USER 10001:10001
ENV URBANMESH_DATA_DIR=/var/lib/urbanmesh \
    URBANMESH_CONFIG=/etc/urbanmesh/config.toml \
    URBANMESH_LOG_FORMAT=json
VOLUME ["/var/lib/urbanmesh"]
# HTTP (portal, REST, SensorThings, /metrics), Flight, members' Flight (mutual TLS), libp2p.
EXPOSE 8470 8815 8816 4001
# `urbanmesh health` asks the node's own /readyz; the image needs no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 CMD ["urbanmesh", "health"]
ENTRYPOINT ["urbanmesh"]
CMD ["run"]
