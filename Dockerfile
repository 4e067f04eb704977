# The single `freshet` binary in a small image.
#
#   docker build -t freshet .
#   docker run --rm -p 7800:7800 freshet                      # one process
#
# The image serves on 0.0.0.0:7800; cluster peers talk on 2101 (see docs/deploy.md).

FROM rust:1.95-bookworm AS build
# librdkafka is built from source by rdkafka-sys (bundled): it needs a C toolchain and zlib.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p freshet-server \
 && cp target/release/freshet /freshet

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates zlib1g tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /var/lib/freshet --create-home freshet
COPY --from=build /freshet /usr/local/bin/freshet
USER freshet
WORKDIR /var/lib/freshet
ENV FRESHET_LISTEN=0.0.0.0:7800
EXPOSE 7800 2101
# tini forwards SIGTERM, so `docker stop` and Kubernetes stop freshet cleanly (exit 0).
ENTRYPOINT ["/usr/bin/tini", "--", "freshet"]
CMD ["serve"]
