#!/usr/bin/env bash
# Generates Java from protos/ (and the google/api, google/rpc protos in third_party/) with protoc
# and Debian's grpc-java plugin, compiles it and clients/java/src with javac against the jars
# Debian packages in /usr/share/java (no Maven, no network), and writes a launcher:
#   apt-get install default-jdk-headless protobuf-compiler protobuf-compiler-grpc-java-plugin \
#     libgrpc-java libprotobuf-java libnetty-java libperfmark-java libgoogle-gson-java
#   clients/java/build.sh          # -> clients/gen/java/bin/ponder-java
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
gen=$root/clients/gen/java
jars=/usr/share/java
rm -rf "$gen"
mkdir -p "$gen/src" "$gen/classes" "$gen/bin"
mapfile -t protos < <(cd "$root/protos" && find ponder -name '*.proto' | sort)
mapfile -t google < <(cd "$root/third_party" && find google -name '*.proto' | sort)
protoc -I "$root/protos" -I "$root/third_party" \
  --java_out="$gen/src" \
  --plugin=protoc-gen-grpc-java=/usr/bin/grpc_java_plugin --grpc-java_out="$gen/src" \
  "${protos[@]}" "${google[@]}"
# What the program needs at compile time, then what grpc-netty needs at run time.
compile=(protobuf grpc-api grpc-stub grpc-protobuf grpc-protobuf-lite grpc-context guava
  geronimo-annotation-1.3-spec gson)
runtime=(grpc-core grpc-netty perfmark-api netty-buffer netty-codec netty-codec-http
  netty-codec-http2 netty-common netty-handler netty-resolver netty-transport
  netty-transport-native-unix-common opencensus-api error_prone_annotations)
classpath=$(printf "$jars/%s.jar:" "${compile[@]}")
mapfile -t sources < <(find "$gen/src" "$root/clients/java/src" -name '*.java' | sort)
javac -nowarn -encoding UTF-8 -d "$gen/classes" -cp "$classpath" "${sources[@]}"
classpath="$gen/classes:$classpath$(printf "$jars/%s.jar:" "${runtime[@]}")"
cat > "$gen/bin/ponder-java" <<LAUNCHER
#!/bin/sh
exec java -cp "${classpath%:}" dev.ponder.client.PonderClient "\$@"
LAUNCHER
chmod +x "$gen/bin/ponder-java"
echo "$gen/bin/ponder-java"
