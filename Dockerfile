# vtconnector container image: one static binary on distroless, non-root.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t vtconnector .
#   docker run --rm vtconnector version
#
# OpenCTI (the environment of the Python connector's docker-compose works as is):
#   docker run -d --name vtconnector-opencti --env-file opencti.env \
#     -v vtconnector-data:/data vtconnector opencti
# Carbon Black EDR (connector.conf with database_url=/data/carbonblack.db and log_file=-):
#   docker run -d --name vtconnector-cb -p 4000:4000 \
#     -v /etc/cb/integrations/virustotal/connector.conf:/etc/cb/integrations/virustotal/connector.conf:ro \
#     -v vtconnector-cb-data:/data vtconnector carbonblack
#
# See docs/INSTALL.md. Needs BuildKit (the default builder since Docker 23);
# multi-platform: docker buildx build --platform linux/amd64,linux/arm64 .

ARG GO_VERSION=1.26

# Build on the build machine's platform and cross-compile: the binary is
# pure Go (CGO_ENABLED=0, SQLite is modernc.org/sqlite).
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS="${TARGETOS:-linux}" GOARCH="${TARGETARCH:-$(go env GOARCH)}" \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/vtconnector/vtconnector/internal/cli.Version=${VERSION}" \
      -o /out/vtconnector ./cmd/vtconnector \
 && mkdir -p /out/data

# distroless/static: CA certificates, tzdata, /etc/passwd with the nonroot
# user (65532), no shell.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="vtconnector" \
      org.opencontainers.image.description="VirusTotal verdicts for Carbon Black EDR (feed) and OpenCTI (internal enrichment); drop-in for cb-virustotal-connector and the OpenCTI VirusTotal connector" \
      org.opencontainers.image.source="https://github.com/vtconnector/vtconnector" \
      org.opencontainers.image.documentation="https://github.com/vtconnector/vtconnector/blob/main/docs/INSTALL.md" \
      org.opencontainers.image.version="${VERSION}"

COPY --from=build /out/vtconnector /vtconnector
# The SQLite database (cache, work queue, quota ledger) lives in /data.
COPY --from=build --chown=65532:65532 /out/data /data
VOLUME ["/data"]

# OpenCTI front: database in the volume, status page and /metrics reachable
# from outside the container (publish the port only where it should be seen).
# The Carbon Black front takes its settings from connector.conf only.
ENV VTCONNECTOR_DATABASE_URL=/data/vtconnector.db \
    VTCONNECTOR_HTTP_ADDR=:9095

# 4000: the Carbon Black feed server (listener_port; the original example's
# value). 9095: the OpenCTI front's status and metrics (CONNECTOR_METRICS_PORT).
EXPOSE 4000 9095

USER 65532:65532
WORKDIR /data
ENTRYPOINT ["/vtconnector"]
CMD ["--help"]
