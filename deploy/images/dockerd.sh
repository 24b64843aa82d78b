#!/usr/bin/env bash
# Makes sure a Docker daemon answers: when none does, starts one (as root) with what this machine
# kind allows (no iptables, no bridge: containers use the host network), on overlay2 when the
# kernel lets dockerd use it, else on vfs (slower: every layer and container is a full copy), and
# waits for it. PONDER_DOCKERD_FLAGS replaces the flags. Usage: deploy/images/dockerd.sh LOG_FILE
set -euo pipefail
log=$1
docker=${DOCKER:-/usr/bin/docker}
if "$docker" info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "dockerd.sh: no Docker daemon answers and only root can start one" >&2
  exit 1
fi
mkdir -p "$(dirname "$log")"

# Start dockerd with these flags; succeed once it answers, fail if it exits or takes 60 s.
start() {
  echo "dockerd.sh: dockerd $*" >&2
  setsid nohup dockerd "$@" >>"$log" 2>&1 </dev/null &
  local pid=$!
  for _ in $(seq 60); do
    if "$docker" info >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    sleep 1
  done
  return 1
}

if [ -n "${PONDER_DOCKERD_FLAGS:-}" ]; then
  # shellcheck disable=SC2086  # several flags
  start $PONDER_DOCKERD_FLAGS && exit 0
else
  start --storage-driver=overlay2 --iptables=false --bridge=none && exit 0
  start --storage-driver=vfs --iptables=false --bridge=none && exit 0
fi
echo "dockerd.sh: dockerd did not start; its log:" >&2
tail -20 "$log" >&2
exit 1
