# vtconnector build and test entry points. `make test` is what CI runs
# (through .ci/run, which first starts PostgreSQL and RabbitMQ).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/vtconnector/vtconnector/internal/cli.Version=$(VERSION)

.PHONY: build test lint bench dist packages check-packages demo clean fuzz fuzz-short faults faults-short

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/vtconnector ./cmd/vtconnector

# The whole test suite, with the race detector.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...

# Every benchmark of the project, run group by group as scripts/benchdoc
# lists them; BENCHMARKS.md is rewritten with the figures, the machine, each
# command and the date. Groups that need PostgreSQL or RabbitMQ run only
# when VTC_TEST_POSTGRES_DSN / VTC_TEST_AMQP_URL are set (the 1,000,000-object
# store run also wants VTC_BENCH_BIG=1); the others are listed as not run.
# BENCHFLAGS passes flags on, e.g. make bench BENCHFLAGS='-only engine-overhead -out /tmp/b.md'.
bench:
	GO='$(GO)' $(GO) run ./scripts/benchdoc $(BENCHFLAGS)

# Every fuzz target for FUZZTIME each; RELIABILITY.md's fuzzing table is
# rewritten with the executions of the run. Crashers are written to the
# target's testdata/fuzz/ and must be kept as regression seeds.
FUZZTIME ?= 60s
fuzz:
	GO='$(GO)' $(GO) run ./scripts/fuzzrun -time $(FUZZTIME)

# What CI runs: every target for a few seconds, nothing written.
fuzz-short:
	GO='$(GO)' $(GO) run ./scripts/fuzzrun -time 3s -out ""

# The fault suite (internal/cli/faults_*_test.go, build tag faults): each
# daemon end to end against the simulators under SIGKILLs, VirusTotal
# errors and 429 storms, Carbon Black down, PostgreSQL and RabbitMQ cut,
# a full disk, stalled uploads; the books of every scenario are checked and
# RELIABILITY.md's fault table is rewritten. PostgreSQL scenarios need
# VTC_TEST_POSTGRES_DSN, the disk-full one root (a tmpfs).
faults:
	VTC_FAULTS_OUT=$(CURDIR)/RELIABILITY.md $(GO) test -tags faults -run '^TestFaults$$' -count=1 -v -timeout 60m ./internal/cli/

# What CI runs: a few kills, seconds of outage, the table only printed.
faults-short:
	FAULTS=short $(GO) test -tags faults -run '^TestFaults$$' -count=1 -v -timeout 10m ./internal/cli/

# Static release binaries for every DIST_PLATFORMS entry, named
# vtconnector_<version>_<os>_<arch>, and their SHA256SUMS, in dist/.
DIST_PLATFORMS ?= linux/amd64 linux/arm64
dist:
	rm -rf dist
	mkdir -p dist
	set -e; for p in $(DIST_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; out=dist/vtconnector_$(VERSION)_$${os}_$${arch}; \
		echo "$$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$out ./cmd/vtconnector; \
	done
	cd dist && sha256sum vtconnector_* > SHA256SUMS
	cat dist/SHA256SUMS

# .deb and .rpm packages of the dist binaries, in dist/ beside them
# (packaging/nfpm.yaml says what they hold). nfpm runs at a pinned version
# through `go run module@version`, in its own module graph: it is not a
# requirement of vtconnector's go.mod, so none of its dependencies reach the
# binary, `go mod tidy` or the main module's go.sum. The first run downloads
# and builds it; later runs use the build cache.
NFPM ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
# A version dpkg and rpm both accept: v1.2.3 -> 1.2.3, hyphens become dots
# (v1.2.3-4-gabc -> 1.2.3.4.gabc); an untagged commit -> 0.0.0+git<sha>.
PKG_VERSION ?= $(shell echo '$(VERSION)' | sed -e 's/^v\{0,1\}\([0-9][0-9]*\.\)/\1/;t' -e 's/^/0.0.0+git/' | tr - .)
packages: dist
	set -e; for p in $(DIST_PLATFORMS); do \
		arch=$${p#*/}; \
		install -D -m 0755 dist/vtconnector_$(VERSION)_linux_$$arch dist/pkgroot/vtconnector; \
		for fmt in deb rpm; do \
			VTC_PKG_VERSION='$(PKG_VERSION)' VTC_PKG_ARCH=$$arch \
				$(NFPM) package --config packaging/nfpm.yaml --packager $$fmt --target dist/; \
		done; \
	done
	rm -rf dist/pkgroot

# Builds the packages for this machine's architecture and checks them
# (packaging/packages_test.go: files, modes, config files, scripts; as root
# with dpkg, also installs, upgrades and removes the .deb). CI runs it after
# make test.
check-packages:
	$(MAKE) packages DIST_PLATFORMS=linux/$$($(GO) env GOARCH)
	VTC_TEST_PACKAGES_DIR='$(CURDIR)/dist' $(GO) test -count=1 -v ./packaging/

demo:
	$(GO) run ./cmd/vtconnector demo

clean:
	rm -rf bin
