# sidecache container image: built on Debian bookworm, run on bookworm-slim
# as a non-root user. Both stages install their packages with
# scripts/deps.sh, so the image and the scripts use the same package list.
#   docker build -t sidecache .
#   docker run -p 7070:7070 -e SIDECACHE_REDIS_URL=redis://redis:6379/0 \
#     -e SIDECACHE_POSTGRES_DSN='host=db dbname=app user=app' sidecache
# Mount your own config over /etc/sidecache. No Docker engine runs where
# this project is tested: scripts/check-dockerfile.sh runs these steps in a
# debootstrapped root instead (docs/operations.md).
FROM debian:bookworm AS build
ARG DEBIAN_FRONTEND=noninteractive
COPY scripts/deps.sh /tmp/deps.sh
RUN SIDECACHE_DEPS=build /tmp/deps.sh && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY include include
COPY src src
COPY bench bench
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DSIDECACHE_BUILD_TESTS=OFF \
    && cmake --build /build -j"$(nproc)" --target sidecache \
    && strip /build/sidecache

FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
COPY scripts/deps.sh /tmp/deps.sh
RUN SIDECACHE_DEPS=runtime /tmp/deps.sh && rm -rf /var/lib/apt/lists/* /tmp/deps.sh \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin sidecache
COPY --from=build /build/sidecache /usr/local/bin/sidecache
COPY config/examples /etc/sidecache
# In a container the daemon listens on every interface; in Kubernetes a
# NetworkPolicy keeps it to the pod (deploy/kubernetes).
ENV SIDECACHE_LISTEN=0.0.0.0:7070
USER 10001
EXPOSE 7070
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/sidecache", "health", "--config", "/etc/sidecache/sidecache.yaml"]
ENTRYPOINT ["/usr/local/bin/sidecache"]
CMD ["--config", "/etc/sidecache/sidecache.yaml"]
