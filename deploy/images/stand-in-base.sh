#!/usr/bin/env bash
# Builds ponder-python-base:<tag>, a stand-in for the official python:3.11-slim-bookworm image,
# from Debian's archive with this machine's apt sources (no registry needed), and loads it with
# `docker import`. Same layout where the Dockerfiles look: `python`/`python3` in /usr/local/bin,
# `python -m venv` works, PATH/LANG as in the official image. What differs is in the README
# ("Container images"). Usage: deploy/images/stand-in-base.sh TAG TARBALL_CACHE
set -euo pipefail
tag=$1
tarball=$2
sources=${PONDER_APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}
[ -f "$sources" ] || sources=/etc/apt/sources.list
if [ ! -s "$tarball" ]; then
  mkdir -p "$(dirname "$tarball")"
  # minbase + Debian's Python 3.11 (with venv/ensurepip) + what the slim image also carries;
  # documentation and locales are left out as in the slim image.
  mmdebstrap --quiet --variant=minbase --format=tar \
    --include=python3,python3-venv,ca-certificates,netbase,tzdata \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='ln -s /usr/bin/python3.11 "$1/usr/local/bin/python3.11"' \
    --customize-hook='ln -s python3.11 "$1/usr/local/bin/python3"' \
    --customize-hook='ln -s python3.11 "$1/usr/local/bin/python"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$tarball.part" "$sources"
  mv "$tarball.part" "$tarball"
fi
"${DOCKER:-docker}" import \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  "$tarball" "ponder-python-base:$tag" >/dev/null
echo "ponder-python-base:$tag"
