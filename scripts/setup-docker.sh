#!/usr/bin/env bash
# One-time machine setup for cijob's end-to-end tests and demo (Debian/Ubuntu):
#   1. install what is missing: docker.io busybox-static debootstrap tmux docker-registry
#      apache2-utils curl
#   2. start dockerd in the background if the engine does not answer
#   3. build the local fixture images (fixtures/images/build.sh; no Docker Hub needed)
#   4. start two private registries on 127.0.0.1:5000/5001 (fixtures/registry/start.sh)
#   5. Podman, socat and sshd for the engine tests (scripts/setup-podman.sh)
# Safe to re-run: it only installs/starts/builds what is missing.
# Extra arguments are passed to fixtures/images/build.sh (e.g. --force).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOCKERD_LOG="${CIJOB_DOCKERD_LOG:-/var/log/cijob-dockerd.log}"

log() { printf '[setup-docker] %s\n' "$*"; }
die() { printf '[setup-docker] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || die "must run as root (or have sudo)"
  SUDO=(sudo)
fi

# --- 1. packages ---------------------------------------------------------------
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
if ! command -v docker >/dev/null || ! command -v dockerd >/dev/null; then missing+=(docker.io); fi
# build.sh needs a *static* busybox to put FROM scratch.
if ! pkg_installed busybox-static; then missing+=(busybox-static); fi
if ! command -v debootstrap >/dev/null; then missing+=(debootstrap); fi
if ! command -v tmux >/dev/null; then missing+=(tmux); fi
# The registry tests: a real registry with htpasswd (bcrypt) auth.
if ! command -v docker-registry >/dev/null; then missing+=(docker-registry); fi
if ! command -v htpasswd >/dev/null; then missing+=(apache2-utils); fi
if ! command -v curl >/dev/null; then missing+=(curl); fi

if [ "${#missing[@]}" -gt 0 ]; then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "packages present: docker dockerd busybox-static debootstrap tmux"
fi

# --- 2. docker engine ----------------------------------------------------------
if "${SUDO[@]}" docker info >/dev/null 2>&1; then
  log "docker engine is running ($("${SUDO[@]}" docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?'))"
else
  log "docker engine not answering; starting dockerd (log: $DOCKERD_LOG)"
  "${SUDO[@]}" mkdir -p "$(dirname "$DOCKERD_LOG")"
  # setsid + nohup: keep dockerd alive after this script (and its session) ends.
  "${SUDO[@]}" setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  for i in $(seq 1 60); do
    if "${SUDO[@]}" docker info >/dev/null 2>&1; then
      log "dockerd is up after ${i}s"
      break
    fi
    if [ "$i" = 60 ]; then
      echo "[setup-docker] ERROR: dockerd did not answer within 60s. Last lines of $DOCKERD_LOG:" >&2
      tail -n 40 "$DOCKERD_LOG" >&2 || true
      exit 1
    fi
    sleep 1
  done
fi

# --- 3. fixture images -----------------------------------------------------------
log "building fixture images"
"${SUDO[@]}" "$ROOT/fixtures/images/build.sh" "$@"

# --- 4. private registries for the registry tests ----------------------------------
log "starting the test registries"
"${SUDO[@]}" "$ROOT/fixtures/registry/start.sh"

# --- 5. Podman (tests/podman.rs) and the tools of tests/engines.rs --------------------
log "setting up Podman"
"${SUDO[@]}" "$ROOT/scripts/setup-podman.sh"
