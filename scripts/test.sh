#!/usr/bin/env bash
# Runs every test of the project: installs the Debian packages the tests use when they are
# missing (OpenBLAS for the fast model build, Prometheus for promtool and the real-server
# monitoring test), then runs the Go tests in the default pure-Go build and the model tests
# again in the gonum-only build (what CPUs without AVX-512 run) and in the OpenBLAS build.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libopenblas-dev prometheus)
missing=()
for p in "${packages[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "test.sh: missing Debian packages: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

go vet ./...
go test -timeout 20m ./...
go test -timeout 20m -tags purego ./model/...
go test -timeout 20m -tags openblas ./model/...
