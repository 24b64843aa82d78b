#!/usr/bin/env bash
# Generates Go code from protos/ with Debian's protoc-gen-go and protoc-gen-go-grpc and builds
# clients/go/ponder-go against Debian's Go packages (GOPATH mode, no module download):
#   apt-get install golang-go protobuf-compiler protoc-gen-go protoc-gen-go-grpc \
#     golang-google-grpc-dev golang-google-protobuf-dev golang-google-genproto-dev
#   clients/go/build.sh            # -> clients/gen/go/bin/ponder-go
# The import paths are the ones buf.gen.yaml gives online users (go_package_prefix), so the
# command builds the same way against code generated with buf's remote plugins.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
gen=$root/clients/gen/go
prefix=example.com/ponder/clients/gen/go
rm -rf "$gen"
mkdir -p "$gen/src" "$gen/bin"
protos=()
mapping=()
while IFS= read -r file; do
  rel=${file#"$root/protos/"}
  dir=$(dirname "$rel")  # ponder/workflow/v1
  name=$(basename "$(dirname "$dir")")$(basename "$dir")  # workflowv1
  protos+=("$rel")
  mapping+=("M$rel=$prefix/$dir;$name")
done < <(find "$root/protos" -name '*.proto' | sort)
opts=$(IFS=,; echo "${mapping[*]}")
protoc -I "$root/protos" -I "$root/third_party" \
  --go_out="$gen/src" --go_opt="$opts" \
  --go-grpc_out="$gen/src" --go-grpc_opt="$opts" \
  "${protos[@]}"
cd "$root/clients/go/ponder-go"
GOPATH="$gen:/usr/share/gocode" GO111MODULE=off GOPROXY=off \
  GOCACHE="${GOCACHE:-$root/clients/gen/go-cache}" go build -o "$gen/bin/ponder-go" .
echo "$gen/bin/ponder-go"
