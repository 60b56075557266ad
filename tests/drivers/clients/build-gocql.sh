#!/usr/bin/env bash
# Builds the gocql driver-matrix client into OUTDIR/gocql_client, against Debian's gocql
# (golang-github-gocql-gocql-dev) in GOPATH mode: no module proxy is needed or used.
# Usage: tests/drivers/clients/build-gocql.sh OUTDIR
set -euo pipefail
out=${1:?usage: build-gocql.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
command -v go >/dev/null || { echo "build-gocql: no go (scripts/setup installs golang-go)" >&2; exit 1; }
[[ -d /usr/share/gocode/src/github.com/gocql/gocql ]] ||
  { echo "build-gocql: no gocql (scripts/setup installs golang-github-gocql-gocql-dev)" >&2; exit 1; }
version=$(dpkg-query -W -f='${Version}' golang-github-gocql-gocql-dev 2>/dev/null || echo unknown)
export GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS=
# The build cache lives beside the output: CI may have no HOME, and nothing outside OUTDIR is written.
export GOCACHE=${GOCACHE:-$out/.gocache}
cd "$here/gocql_client"
go build -o "$out/gocql_client" -ldflags "-X main.gocqlVersion=${version%%-*}" .
echo "$out/gocql_client"
