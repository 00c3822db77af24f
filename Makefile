# csi-gorbd: every build is static (CGO_ENABLED=0).
export CGO_ENABLED := 0
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
GO ?= go
BIN := bin/csi-gorbd

.PHONY: all build vet test unit demo clusters clusters-stop deps fuzz clean k8s-e2e

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/csi-gorbd

vet:
	$(GO) vet ./...

# Install host packages the tests need (Debian; idempotent).
deps:
	bash test/deps.sh

# Start every test cluster (Pacific, 3-mon Pacific, Reef, Tentacle with AES and aes256k keys).
clusters: deps
	bash test/cluster/start-all.sh

clusters-stop:
	bash test/cluster/stop-all.sh

# Unit tests only (no clusters needed).
unit:
	$(GO) test ./...

# Brief fuzzing of every decoder (corpus kept in testdata/fuzz).
fuzz:
	bash test/fuzz.sh

# The whole suite: deps, clusters, vet, unit + integration tests, fuzz, VM tests.
test:
	bash test/run-all.sh

# The Kubernetes suites alone: control plane, kubelet node VM, Pod flows, the
# upstream External Storage suite's full set (ends with "upstream: N passed, N failed").
k8s-e2e:
	bash test/e2e/k8s-e2e.sh

# The demo: start a local Ceph cluster and drive it with csi-gorbd.
demo:
	bash test/demo.sh

clean:
	rm -rf bin
