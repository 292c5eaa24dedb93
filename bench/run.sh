#!/usr/bin/env bash
# Benchmarks (not tests): cijob against the floor (plain `docker run`), hand-written docker
# commands, and gitlab-ci-local when it is installed. Needs hyperfine and the fixture images
# (scripts/setup-docker.sh). Prints hyperfine's tables; the README quotes the medians.
# `bench/run.sh big` runs only the 100,000-file project.
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
HAVE_GCL=$(command -v gitlab-ci-local >/dev/null && echo 1 || true)

# A throw-away git project $WORK/$1 whose .gitlab-ci.yml is $2; cd into it.
project() {
  mkdir -p "$WORK/$1" && cd "$WORK/$1"
  git init -q && echo .gitlab-ci-local/ > .gitignore && printf "$2" > .gitlab-ci.yml
  git add -A && git -c user.name=b -c user.email=b@b commit -qm bench
}

# hyperfine over cijob, its reference, and gitlab-ci-local's run of the same job if installed.
compare() {
  local runs="$1" job="$2" cijob="$3" reference="$4" quiet="${5:-}"
  local cmds=("$cijob" "$reference")
  if [ -n "$HAVE_GCL" ]; then cmds+=("$GCL $job$quiet"); fi
  hyperfine --warmup 2 --runs "$runs" "${cmds[@]}"
}

# A project of 100,000 small files: the first run (full copy into a new project volume), the
# second after touching 10 files, against `docker cp` of the same tree and gitlab-ci-local.
big() {
  echo "== a project of 100,000 small files"
  project big 'hi:\n  image: cijob-test/busybox\n  script: [echo hi]\n'
  for d in $(seq 0 99); do
    mkdir -p "src/$d" && (cd "src/$d" && for f in $(seq 0 999); do echo "$d/$f" > "$f.txt"; done)
  done
  # Packed, as a real repository's objects are (100,000 loose objects would double the tree).
  git add -A && git -c gc.auto=0 -c user.name=b -c user.email=b@b commit -qm files && git gc -q
  # The reference: what today's cijob did, a container with the tree copied in.
  cat > by-cp.sh <<'SH'
set -e
c=$(docker create -v /builds cijob-test/busybox sh -c 'echo hi')
{ git ls-files -z; find .git ! -type d -print0; } | tar --null -T - -c -f - --transform 's,^,builds/local/big/,' | docker cp - $c:/
docker start -a $c >/dev/null; docker rm -v $c >/dev/null
SH
  # A first run: no project volume, no record of one (only this project's are removed).
  cat > forget.sh <<'SH'
for v in $(docker volume ls -q --filter label=cijob.type=project | grep -- '-big-'); do
  docker volume rm -f "$v" >/dev/null; rm -f "${XDG_CACHE_HOME:-$HOME/.cache}/cijob/volumes/$v.manifest"
done
SH
  touch10='for f in $(seq 0 9); do echo "$RANDOM" >> src/$f/$f.txt; done'
  hyperfine --runs "${RUNS_BIG:-5}" \
    -n "cijob first run" --prepare "bash forget.sh" "$CIJOB run hi" \
    -n "cijob second run, 10 files touched" --prepare "$touch10" "$CIJOB run hi" \
    -n "docker create + docker cp + docker start" --prepare true "bash by-cp.sh"
  if [ -n "$HAVE_GCL" ]; then hyperfine --runs 1 "$GCL hi"; fi
  # The volume outlives the run by design.
  bash forget.sh
}
if [ "${1:-}" = big ]; then big; exit; fi

echo "== cijob list on the largest corpus config (Kitware__CMake, 159 jobs)"
cp -r fixtures/corpus/real-world/Kitware__CMake "$WORK/cmake"
hyperfine -N --warmup 3 --runs 50 "$CIJOB -C $WORK/cmake list"

echo "== a one-line job"
project one 'hi:\n  image: cijob-test/busybox\n  script: [echo hi]\n'
compare "$RUNS" hi "$CIJOB run hi" "docker run --rm cijob-test/busybox sh -c 'echo hi'"

echo "== a job with one service"
project svc 'svc:\n  image: cijob-test/busybox\n  services: [{name: cijob-test/svc-tcp, alias: web}]\n  script: [wget -qO- http://web:8080/]\n'
# The same work by hand: volume, service, wait for its port, job container with a hosts entry
# and the project copied in (as cijob's job sees it), cleanup. $1 waits for the port.
by_hand() {
  cat <<SH
set -e
id=\$\$-\$RANDOM
docker volume create v\$id >/dev/null
docker run -d --name s\$id -v v\$id:/builds cijob-test/svc-tcp >/dev/null
ip=\$(docker inspect -f '{{.NetworkSettings.IPAddress}}' s\$id)
$1
docker create --name b\$id --add-host web:\$ip -v v\$id:/builds -w /builds/p cijob-test/busybox sh -c 'wget -qO- http://web:8080/' >/dev/null
git ls-files -z | tar --null -c --transform 's,^,builds/p/,' -T - | docker cp - b\$id:/
docker start -a b\$id >/dev/null
docker rm -f -v b\$id s\$id >/dev/null; docker volume rm v\$id >/dev/null
SH
}
by_hand 'until (exec 3<>/dev/tcp/$ip/8080) 2>/dev/null; do sleep 0.05; done' > by-hand.sh
compare "$RUNS" svc "$CIJOB run svc" "bash by-hand.sh"

echo "== the same service job where the host cannot dial containers (unshare --net: Docker Desktop's view)"
# cijob looks from inside the job's network; by hand, the same docker commands with the
# wait done the same way (docker exec cat /proc/net/tcp in the service).
by_hand 'until docker exec s$id cat /proc/net/tcp /proc/net/tcp6 | awk '"'"'$4 == "0A" && $2 ~ /:1F90$/ { f = 1 } END { exit !f }'"'"'; do sleep 0.05; done' > by-hand-inside.sh
cd "$WORK/svc"
hyperfine --warmup 2 --runs "$RUNS" "unshare --net $CIJOB run svc" "unshare --net bash by-hand-inside.sh"

echo "== cijob run test --needs: a two-job chain handing over a file and a dotenv variable"
project chain 'stages: [build, test]\nbuild:\n  stage: build\n  image: cijob-test/busybox\n  script: ["mkdir -p out && echo app > out/app", "echo V=1 > build.env"]\n  artifacts:\n    paths: [out/]\n    reports: {dotenv: build.env}\ntest:\n  stage: test\n  image: cijob-test/busybox\n  needs: [build]\n  script: ["cat out/app", "echo $V"]\n'
# The same work by hand: each job's container gets the project, build's out/ and build.env
# are copied out, test's container gets out/ copied in and build.env as its environment.
cat > by-hand-chain.sh <<'SH'
set -e
id=$$-$RANDOM; a=$(mktemp -d)
sources() { git ls-files -z | tar --null -c --transform 's,^,builds/p/,' -T - | docker cp - "$1":/; }
docker create --name b$id -w /builds/p cijob-test/busybox sh -c 'mkdir -p out && echo app > out/app && echo V=1 > build.env' >/dev/null
sources b$id; docker start -a b$id >/dev/null
docker cp b$id:/builds/p/out - > $a/out.tar
docker cp b$id:/builds/p/build.env - | tar -xO > $a/build.env
docker rm -f b$id >/dev/null
docker create --name t$id -w /builds/p --env-file $a/build.env cijob-test/busybox sh -c 'cat out/app; echo $V' >/dev/null
sources t$id; docker cp - t$id:/builds/p < $a/out.tar; docker start -a t$id >/dev/null
docker rm -f t$id >/dev/null; rm -rf $a
SH
export CIJOB_STORE_DIR="$WORK/store"
# Not gitlab-ci-local here: its artifact copy runs rsync in its helper image, which the
# local stand-in does not have.
hyperfine --warmup 2 --runs "$RUNS" "$CIJOB run test --needs" "bash by-hand-chain.sh"

echo "== a job printing 2 million short lines (output throughput)"
project flood 'flood:\n  image: cijob-test/busybox\n  script: [seq 2000000]\n'
compare "${RUNS_FLOOD:-3}" flood "$CIJOB run flood >/dev/null 2>&1" \
  "docker run --rm cijob-test/busybox seq 2000000 >/dev/null" " >/dev/null 2>&1"

big

echo "== peak memory (max RSS of the client process) for the one-line job"
cd "$WORK/one"
rss() { /usr/bin/time -f %M -o "$WORK/rss" "$@" >/dev/null 2>&1; echo "$(cat "$WORK/rss") kB  $*"; }
rss "$CIJOB" run hi
rss docker run --rm cijob-test/busybox sh -c 'echo hi'
if [ -n "$HAVE_GCL" ]; then rss $GCL hi; fi
