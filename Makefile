# vtconnector build and test entry points. `make test` is what CI runs
# (through .ci/run, which first starts PostgreSQL and RabbitMQ).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/vtconnector/vtconnector/internal/cli.Version=$(VERSION)

.PHONY: build test lint bench demo clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/vtconnector ./cmd/vtconnector

# The whole test suite, with the race detector.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...

# Every benchmark of the project; figures go to BENCHMARKS.md.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 ./...

demo:
	$(GO) run ./cmd/vtconnector demo

clean:
	rm -rf bin
