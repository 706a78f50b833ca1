# cache-warmer - predictions in, warm cache out, through Stedi's batch API
# (docs/cache-warmer.md).
#
# Build from the repository root:
#   docker build -f docker/cache-warmer.Dockerfile -t rte/cache-warmer .
# The one pattern of the five images (docs/deploy.md "Images"): stage 1
# builds the binary with the Makefile on Debian 12 from the files it needs
# (Makefile, libcommon, proto, services/cache-warmer); stage 2 is Debian 12 slim
# with only the shared libraries the binary links (librdkafka, hiredis,
# libcurl, cJSON, h2o-evloop, protobuf-c, gRPC core, OpenSSL, libyaml).
# It runs as uid/gid 10001 and has no HEALTHCHECK: Kubernetes probes the
# admin port (and gRPC health) itself. It sets no RTE_* variable: the
# environment overrides the config file, so an image default would win
# over the config the chart mounts (the ports are the services' defaults). tests/deploy/test_images.py checks
# the runtime list against what the built binary links and the COPY lines
# against what the Makefile reads.

FROM debian:12-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        build-essential pkg-config ca-certificates \
        librdkafka-dev libhiredis-dev libcurl4-openssl-dev libcjson-dev \
        libh2o-evloop-dev libprotobuf-c-dev protobuf-c-compiler libgrpc-dev \
        libssl-dev libyaml-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY libcommon ./libcommon
COPY proto ./proto
COPY services/cache-warmer ./services/cache-warmer
RUN make BUILD=build build/bin/cache-warmer

FROM debian:12-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        ca-certificates librdkafka1 libhiredis0.14 libcurl4 libcjson1 \
        libh2o-evloop0.13 libprotobuf-c1 libgrpc29 libssl3 libyaml-0-2 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 rte \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin rte
COPY --from=build /src/build/bin/cache-warmer /usr/local/bin/cache-warmer
USER 10001:10001
# admin (/metrics, /healthz, /readyz), gRPC CacheWarmingService and health
EXPOSE 9090 50051
ENTRYPOINT ["/usr/local/bin/cache-warmer"]
CMD ["--config", "/etc/rte/config.yaml"]
