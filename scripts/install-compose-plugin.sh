#!/usr/bin/env bash
# Builds the Docker Compose CLI plugin (the `docker compose` command) from its Go module and
# installs it, for machines whose Docker has no Compose v2+ (Debian 12's `docker-compose`
# package is the old Python tool 1.29). Only the Go module proxy is needed: no image or binary
# is downloaded.
#
# Usage: scripts/install-compose-plugin.sh [plugin directory]
#   The default directory is /usr/local/lib/docker/cli-plugins as root and
#   ~/.docker/cli-plugins otherwise; the Docker CLI looks in both.
# Environment:
#   COMPOSE_VERSION  module version to build (default v5.6.0)
#   FORCE=1          rebuild even when `docker compose version` already works
#
# The build compiles a few hundred packages. It took 4 minutes on a shared 2-core machine whose
# Go build cache already held some of them; a cold cache takes longer. It runs under
# `nice -n 19` so that it does not starve other work on a shared machine.
set -euo pipefail

version="${COMPOSE_VERSION:-v5.6.0}"
if [ "$(id -u)" -eq 0 ]; then
	default_dir=/usr/local/lib/docker/cli-plugins
else
	default_dir="$HOME/.docker/cli-plugins"
fi
plugin_dir="${1:-$default_dir}"

if [ "${FORCE:-0}" != 1 ] && docker compose version >/dev/null 2>&1; then
	echo "install-compose-plugin: $(docker compose version) is already installed; set FORCE=1 to rebuild"
	exit 0
fi

command -v go >/dev/null || {
	echo "install-compose-plugin: go is not on PATH; install Go 1.26 or newer first" >&2
	exit 1
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A throwaway module pins the version, so the build never touches the project's go.mod.
# Compose's own go.mod selects the versions of its dependencies.
cd "$work"
go mod init local/compose-plugin-build >/dev/null 2>&1
echo "install-compose-plugin: fetching github.com/docker/compose/v5@$version"
GOFLAGS=-mod=mod go get "github.com/docker/compose/v5@$version"

# The version string is what `docker compose version` prints; Compose reads it from
# internal.Version, which its release builds set the same way.
echo "install-compose-plugin: building (nice -n 19; this takes a while)"
CGO_ENABLED=0 GOFLAGS=-mod=mod nice -n 19 go build -trimpath \
	-ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$version" \
	-o "$work/docker-compose" github.com/docker/compose/v5/cmd

mkdir -p "$plugin_dir"
install -m 0755 "$work/docker-compose" "$plugin_dir/docker-compose"
echo "install-compose-plugin: installed $plugin_dir/docker-compose"
docker compose version
