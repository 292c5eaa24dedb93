#!/usr/bin/env bash
# Podman for cijob's Podman tests (tests/podman.rs), from Debian's packages:
#   1. install podman (Debian 12: 4.3), socat and openssh-server (tests/engines.rs) if missing
#   2. default ulimits that fit this machine's hard limits (else every container fails with
#      "error setting rlimit type 7"), the test registries as insecure (pull tests)
#   3. start the Docker-compatible API: podman system service on /run/podman/podman.sock
#   4. copy the fixture images from Docker into Podman's store (docker save | podman load),
#      so nothing is pulled
#   5. rootless Podman: a user `cijob-rootless` whose own `podman system service` answers on
#      /run/cijob-rootless/podman.sock, with the same fixture images in its own store
# Called by scripts/setup-docker.sh after the fixture images are built. Safe to re-run.
set -euo pipefail

SOCK=/run/podman/podman.sock
LOG="${CIJOB_PODMAN_LOG:-/var/log/cijob-podman.log}"
log() { printf '[setup-podman] %s\n' "$*"; }
die() { printf '[setup-podman] ERROR: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (rootful Podman; see the README for rootless)"

missing=()
command -v podman >/dev/null || missing+=(podman)
# netavark + aardvark-dns: the per-build network's DNS (aliases); Debian 12 defaults to CNI,
# which has no DNS without a plugin.
command -v aardvark-dns >/dev/null || [ -x /usr/lib/podman/aardvark-dns ] || missing+=(aardvark-dns)
[ -x /usr/lib/podman/netavark ] || command -v netavark >/dev/null || missing+=(netavark)
command -v socat >/dev/null || missing+=(socat)
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh >/dev/null || missing+=(openssh-client)
# rootless Podman: subordinate ids and user-mode networking
command -v newuidmap >/dev/null || missing+=(uidmap)
command -v slirp4netns >/dev/null || missing+=(slirp4netns)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- 2. configuration ------------------------------------------------------------
mkdir -p /etc/containers
nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
[ "$nofile" = unlimited ] && nofile=1048576
[ "$nproc" = unlimited ] && nproc=4096
[ "$nproc" -gt 4096 ] && nproc=4096
[ "$nofile" -gt 20000 ] && nofile=20000
conf=/etc/containers/containers.conf
want="default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]"
if ! grep -qF "$want" "$conf" 2>/dev/null || ! grep -q '^network_backend = "netavark"' "$conf"; then
  log "writing $conf ($want, netavark)"
  printf '# Written by cijob scripts/setup-podman.sh: ulimits within this machine'"'"'s hard limits,\n# netavark for DNS on per-build networks.\n[containers]\n%s\n[network]\nnetwork_backend = "netavark"\n' "$want" > "$conf"
fi
reg=/etc/containers/registries.conf.d/50-cijob-test.conf
if [ ! -f "$reg" ]; then
  log "marking the test registries insecure ($reg)"
  mkdir -p "$(dirname "$reg")"
  cat > "$reg" <<'CONF'
# Written by cijob scripts/setup-podman.sh: the plain-HTTP test registries.
[[registry]]
location = "localhost:5000"
insecure = true
[[registry]]
location = "127.0.0.1:5000"
insecure = true
[[registry]]
location = "localhost:5001"
insecure = true
[[registry]]
location = "127.0.0.1:5001"
insecure = true
CONF
fi

# --- 3. the API service -------------------------------------------------------------
answers() { curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; }
if answers; then
  log "podman system service answers on $SOCK"
else
  mkdir -p /run/podman
  log "starting podman system service on $SOCK (log: $LOG)"
  setsid nohup podman system service --time=0 "unix://$SOCK" >>"$LOG" 2>&1 </dev/null &
  for i in $(seq 1 50); do
    answers && break
    [ "$i" = 50 ] && { tail -n 20 "$LOG" >&2; die "podman system service did not answer within 10s"; }
    sleep 0.2
  done
fi

# --- 4. fixture images --------------------------------------------------------------
images=(cijob-test/busybox:latest cijob-test/debian:latest cijob-test/svc-tcp:latest
        cijob-test/svc-noport:latest cijob-test/entrypoint-wrapper:latest cijob/helper:1)
todo=()
for i in "${images[@]}"; do
  podman image exists "$i" || todo+=("$i")
done
if [ "${#todo[@]}" -gt 0 ]; then
  log "copying into Podman's store: ${todo[*]}"
  docker save "${todo[@]}" | podman load -q
else
  log "fixture images present in Podman's store"
fi

# --- 5. rootless Podman ---------------------------------------------------------------
RL_USER=cijob-rootless
RL_RUN=/run/cijob-rootless
RL_SOCK=$RL_RUN/podman.sock
RL_LOG="${CIJOB_PODMAN_ROOTLESS_LOG:-/var/log/cijob-podman-rootless.log}"
id "$RL_USER" >/dev/null 2>&1 || { log "creating user $RL_USER"; useradd -m -s /bin/sh "$RL_USER"; }
for f in /etc/subuid /etc/subgid; do
  grep -q "^$RL_USER:" "$f" 2>/dev/null || echo "$RL_USER:200000:65536" >> "$f"
done
# slirp4netns opens /dev/net/tun as the user: distributions ship it 0666, some sandboxes 0600.
if [ -c /dev/net/tun ] && ! runuser -u "$RL_USER" -- test -w /dev/net/tun; then
  log "making /dev/net/tun usable by unprivileged users (0666, as distributions ship it)"
  chmod 0666 /dev/net/tun
fi
mkdir -p "$RL_RUN" && chown "$RL_USER:" "$RL_RUN" && chmod 0700 "$RL_RUN"
touch "$RL_LOG" && chown "$RL_USER:" "$RL_LOG"
as_rl() { runuser -u "$RL_USER" -- env -C / XDG_RUNTIME_DIR="$RL_RUN" HOME="$(getent passwd "$RL_USER" | cut -d: -f6)" "$@"; }
rl_answers() { curl -sf --unix-socket "$RL_SOCK" http://d/_ping >/dev/null 2>&1; }
if rl_answers; then
  log "rootless podman system service answers on $RL_SOCK"
else
  log "starting rootless podman system service as $RL_USER on $RL_SOCK (log: $RL_LOG)"
  as_rl setsid nohup podman system service --time=0 "unix://$RL_SOCK" >>"$RL_LOG" 2>&1 </dev/null &
  for i in $(seq 1 50); do
    rl_answers && break
    [ "$i" = 50 ] && { tail -n 20 "$RL_LOG" >&2; die "rootless podman system service did not answer within 10s"; }
    sleep 0.2
  done
fi
todo=()
for i in "${images[@]}"; do
  as_rl podman image exists "$i" || todo+=("$i")
done
if [ "${#todo[@]}" -gt 0 ]; then
  log "copying into $RL_USER's Podman store: ${todo[*]}"
  docker save "${todo[@]}" | as_rl podman load -q
else
  log "fixture images present in $RL_USER's Podman store"
fi
