# sidecache container image: build on Debian bookworm, run on bookworm-slim.
#   docker build -t sidecache .
#   docker run -v $PWD/config/examples:/etc/sidecache -e SIDECACHE_LISTEN=0.0.0.0:7070 \
#     -e SIDECACHE_REDIS_URL=... -e SIDECACHE_POSTGRES_DSN=... sidecache
FROM debian:bookworm AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake make pkg-config \
      libboost1.81-dev libboost-json1.81-dev libhiredis-dev libpqxx-dev libspdlog-dev libyaml-cpp-dev prometheus-cpp-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY include include
COPY src src
COPY tests tests
COPY bench bench
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DSIDECACHE_BUILD_TESTS=OFF \
    && cmake --build /build -j"$(nproc)" \
    && strip /build/sidecache

FROM debian:bookworm-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libboost-json1.81.0 libhiredis0.14 libpqxx-6.4 libspdlog1.10 libfmt9 libyaml-cpp0.7 libprometheus-cpp-core1.0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home sidecache
COPY --from=build /build/sidecache /usr/local/bin/sidecache
COPY config/examples /etc/sidecache
USER 10001
EXPOSE 7070
ENTRYPOINT ["/usr/local/bin/sidecache"]
CMD ["--config", "/etc/sidecache/sidecache.yaml"]
