#!/usr/bin/env bash
# Benchmarks (not tests): cijob against the floor (plain `docker run`), hand-written docker
# commands, and gitlab-ci-local when it is installed. Needs hyperfine and the fixture images
# (scripts/setup-docker.sh). Prints hyperfine's tables; the README quotes the medians.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo build --release -q
CIJOB="$ROOT/target/release/cijob"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
RUNS="${RUNS:-10}"
# gitlab-ci-local's helper image (firecow/gitlab-ci-local-util) is on Docker Hub; a local
# image with sh, bash, chown and chmod stands in for it.
GCL="gitlab-ci-local --helper-image cijob-test/debian:latest"

echo "== cijob list on the largest corpus config (Kitware__CMake, 159 jobs)"
cp -r fixtures/corpus/real-world/Kitware__CMake "$WORK/cmake"
hyperfine -N --warmup 3 --runs 50 "$CIJOB -C $WORK/cmake list"

echo "== a one-line job"
mkdir -p "$WORK/one" && cd "$WORK/one"
git init -q && echo .gitlab-ci-local/ > .gitignore && printf 'hi:\n  image: cijob-test/busybox\n  script: [echo hi]\n' > .gitlab-ci.yml
git add -A && git -c user.name=b -c user.email=b@b commit -qm bench
cmds=("$CIJOB run hi" "docker run --rm cijob-test/busybox sh -c 'echo hi'")
if command -v gitlab-ci-local >/dev/null; then cmds+=("$GCL hi"); fi
hyperfine --warmup 2 --runs "$RUNS" "${cmds[@]}"

echo "== a job with one service"
mkdir -p "$WORK/svc" && cd "$WORK/svc"
git init -q && echo .gitlab-ci-local/ > .gitignore
printf 'svc:\n  image: cijob-test/busybox\n  services: [{name: cijob-test/svc-tcp, alias: web}]\n  script: [wget -qO- http://web:8080/]\n' > .gitlab-ci.yml
git add -A && git -c user.name=b -c user.email=b@b commit -qm bench
# The same work by hand: volume, service, wait for its port, job container with a hosts entry, cleanup.
cat > by-hand.sh <<'SH'
set -e
id=$$-$RANDOM
docker volume create v$id >/dev/null
docker run -d --name s$id -v v$id:/builds cijob-test/svc-tcp >/dev/null
ip=$(docker inspect -f '{{.NetworkSettings.IPAddress}}' s$id)
until (exec 3<>/dev/tcp/$ip/8080) 2>/dev/null; do sleep 0.05; done
docker run --rm --add-host web:$ip -v v$id:/builds cijob-test/busybox sh -c 'wget -qO- http://web:8080/' >/dev/null
docker rm -f -v s$id >/dev/null; docker volume rm v$id >/dev/null
SH
cmds=("$CIJOB run svc" "bash by-hand.sh")
if command -v gitlab-ci-local >/dev/null; then cmds+=("$GCL svc"); fi
hyperfine --warmup 2 --runs "$RUNS" "${cmds[@]}"

echo "== a job printing 2 million short lines (output throughput)"
mkdir -p "$WORK/flood" && cd "$WORK/flood"
git init -q && echo .gitlab-ci-local/ > .gitignore && printf 'flood:\n  image: cijob-test/busybox\n  script: [seq 2000000]\n' > .gitlab-ci.yml
git add -A && git -c user.name=b -c user.email=b@b commit -qm bench
cmds=("$CIJOB run flood >/dev/null 2>&1" "docker run --rm cijob-test/busybox seq 2000000 >/dev/null")
if command -v gitlab-ci-local >/dev/null; then cmds+=("$GCL flood >/dev/null 2>&1"); fi
hyperfine --warmup 1 --runs "${RUNS_FLOOD:-3}" "${cmds[@]}"

echo "== peak memory (max RSS of the client process) for the one-line job"
cd "$WORK/one"
rss() { /usr/bin/time -f %M -o "$WORK/rss" "$@" >/dev/null 2>&1; echo "$(cat "$WORK/rss") kB  $*"; }
rss "$CIJOB" run hi
rss docker run --rm cijob-test/busybox sh -c 'echo hi'
if command -v gitlab-ci-local >/dev/null; then rss $GCL hi; fi
