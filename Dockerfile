# Container image of the CycleGAN pipeline: the four stage programs (loader, augmenter,
# trainer, evaluator) and the cyclegan command, in /usr/local/bin of one runtime image. The
# container's command picks the program, as compose.yaml does for each service.
#
#   docker build -t gocyclegan/cyclegan:local .                            pure Go, no cgo
#   docker build --build-arg GEMM=openblas -t gocyclegan/cyclegan:local .  OpenBLAS GEMM
#
# GEMM=pure-go (the default) gives static binaries with no C library. They use Go assembly
# AVX-512 kernels on CPUs that have AVX-512F, the fastest build measured (docs/benchmarks.md),
# and gonum's slower pure-Go BLAS elsewhere. GEMM=openblas links Debian's OpenBLAS through cgo,
# which picks its kernels for the CPU at run time: build it for CPUs without AVX-512F.
# `docker run --rm IMAGE cyclegan version` prints the GEMM build and kernel.
#
# The file needs no BuildKit feature, so the classic builder (DOCKER_BUILDKIT=0) builds it too.
# With GOPROXY=off and a Go image whose module cache already holds the modules, the build runs
# without network access.

ARG GO_IMAGE=golang:1.26.8-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${GO_IMAGE} AS build
ARG GEMM=pure-go
ARG GOPROXY
ENV GOTOOLCHAIN=local

# The dpkg check skips apt-get on a Go image that already has the OpenBLAS headers.
RUN set -eu; \
	case "$GEMM" in \
	openblas) \
		if ! dpkg -s libopenblas-dev >/dev/null 2>&1; then \
			apt-get update; \
			apt-get install -y --no-install-recommends libopenblas-dev; \
			rm -rf /var/lib/apt/lists/*; \
		fi ;; \
	pure-go) ;; \
	*) echo "GEMM must be openblas or pure-go, got '$GEMM'" >&2; exit 1 ;; \
	esac

WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download

COPY . .
RUN set -eu; \
	if [ "$GEMM" = openblas ]; then \
		export CGO_ENABLED=1; tags=openblas; \
	else \
		export CGO_ENABLED=0; tags=; \
	fi; \
	go build -trimpath -tags "$tags" -ldflags "-s -w" -o /out/ \
		./stages/loader ./stages/augmenter ./stages/trainer ./stages/evaluator . ; \
	/out/cyclegan version

FROM ${RUNTIME_IMAGE}
ARG GEMM=pure-go

# OpenBLAS builds need the shared library at run time; a pure-Go build needs nothing. The
# dpkg check skips apt-get on a base image that already has it.
RUN set -eu; \
	if [ "$GEMM" = openblas ] && ! dpkg -s libopenblas0 >/dev/null 2>&1; then \
		apt-get update; \
		apt-get install -y --no-install-recommends libopenblas0; \
		rm -rf /var/lib/apt/lists/*; \
	fi; \
	groupadd --system --gid 10001 cyclegan; \
	useradd --system --uid 10001 --gid cyclegan --home-dir /var/lib/cyclegan \
		--no-create-home --shell /usr/sbin/nologin cyclegan; \
	mkdir -p /var/lib/cyclegan/runs /dataset; \
	chown -R cyclegan:cyclegan /var/lib/cyclegan

COPY --from=build /out/ /usr/local/bin/

# A named volume mounted on /var/lib/cyclegan/runs starts with this folder's owner, so the
# non-root user can write checkpoints and samples there.
USER 10001:10001
WORKDIR /var/lib/cyclegan
ENV CYCLEGAN_OUTPUT=/var/lib/cyclegan/runs
# Metrics and health ports: 9100 for `cyclegan train`, 9101 to 9104 for the four stages.
EXPOSE 9100 9101 9102 9103 9104
CMD ["cyclegan", "help"]
