#!/usr/bin/env bash
# Installs every Debian package of scripts/debian-packages.txt that is missing (and
# kubernetes-client when no kubectl is installed), then configures and builds dagd into build/
# (Ninja, -j2). Quick when nothing changed.
#   scripts/setup.sh            # packages + build
#   DAGD_BUILD_DIR=dir scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${DAGD_BUILD_DIR:-build}
mapfile -t wanted < <(grep -v '^\s*#' scripts/debian-packages.txt | sed '/^\s*$/d')
missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$pkg")
  fi
done
# kubectl for tests/deploy/ (deploy_kubectl_dry_run): Debian's kubernetes-client, but only when
# there is no kubectl at all -- it conflicts with other packages that ship one (e.g. Google's
# `kubectl`), which then serves as well.
if ! command -v kubectl >/dev/null; then
  missing+=(kubernetes-client)
fi
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build_dir" -j2
