#!/usr/bin/env bash
# The phone's CPU. Installs what it needs (rustup targets; Debian's
# gcc-aarch64-linux-gnu, qemu-user and clang), then:
#   1. builds watt-core and watt-client for aarch64-unknown-linux-gnu and runs
#      their unit tests under qemu-aarch64;
#   2. builds the bindings' static library for aarch64-linux-android (clang
#      with --target=aarch64-linux-android24 for ring's C code; a staticlib
#      needs no NDK linker) with the phones' release-smaller profile. With no
#      NDK sysroot here, ring's C takes its few libc declarations (stdint,
#      string, assert) from Debian's aarch64 glibc headers: the same types on
#      Bionic for aarch64, and nothing of libc is linked into a staticlib. An
#      app's real build uses the NDK (scripts/build-android.sh);
#   3. checks the bindings for aarch64-apple-ios as far as this machine can
#      (there is no Apple SDK here; the first thing that needs one stops it);
#   4. prints the library sizes as one JSON line.
#   scripts/test-arm64.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"

rustup target add aarch64-unknown-linux-gnu aarch64-linux-android aarch64-apple-ios >/dev/null 2>&1 \
  || rustup target add aarch64-unknown-linux-gnu aarch64-linux-android aarch64-apple-ios
missing=()
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
command -v clang >/dev/null || missing+=(clang)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]} (apt-get)"
  scripts/apt-install.sh "${missing[@]}"
fi
ar=$(command -v llvm-ar || ls /usr/bin/llvm-ar-* 2>/dev/null | head -1 || true)
[ -n "$ar" ] || { echo "no llvm-ar found (Debian: llvm)" >&2; exit 1; }

echo "== unit tests of watt-core and watt-client on aarch64 (qemu-aarch64)"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
started=$(date +%s)
log=$(mktemp)
cargo test --locked --target aarch64-unknown-linux-gnu -p watt-core -p watt-client --lib 2>&1 | tee "$log" \
  | grep -E "^(test result|error|warning: unused)" || true
test_s=$(( $(date +%s) - started ))
if grep -qE "test result: FAILED|^error" "$log"; then
  echo "aarch64 unit tests failed" >&2
  exit 1
fi
passed=$(grep -oE "test result: ok\. [0-9]+ passed" "$log" | awk '{s += $4} END {print s + 0}')
rm -f "$log"

echo "== watt-ffi staticlib for aarch64-linux-android (release-smaller)"
export CC_aarch64_linux_android=clang
export CFLAGS_aarch64_linux_android="--target=aarch64-linux-android24 -isystem /usr/aarch64-linux-gnu/include"
export AR_aarch64_linux_android="$ar"
cargo rustc --locked -p watt-ffi --lib --crate-type staticlib --profile release-smaller \
  --target aarch64-linux-android
android_lib="$target_dir/aarch64-linux-android/release-smaller/libwatt_ffi.a"

echo "== watt-ffi cdylib for aarch64-unknown-linux-gnu (release-smaller, linked)"
cargo rustc --locked -p watt-ffi --lib --crate-type cdylib --profile release-smaller \
  --target aarch64-unknown-linux-gnu
linux_lib="$target_dir/aarch64-unknown-linux-gnu/release-smaller/libwatt_ffi.so"

echo "== cargo check for aarch64-apple-ios (as far as this machine allows)"
ios_log=$(mktemp)
if cargo check --locked -p watt-ffi --target aarch64-apple-ios >"$ios_log" 2>&1; then
  ios="checked"
else
  # The first failing crate, and what it lacked.
  crate=$(grep -m1 -oE "failed to run custom build command for [^ ]+ [^ ]+" "$ios_log" | tr -d '`' || true)
  why=$(grep -m1 -oE "error occurred in cc-rs: [^(]*" "$ios_log" | tr -d '`"' | cut -c1-160 || true)
  ios="stopped: ${crate:-$(grep -m1 'error' "$ios_log" | tr -d '`"' | cut -c1-160)}; ${why}"
fi
rm -f "$ios_log"

size() { stat -c %s "$1"; }
printf '{"aarch64_unit_tests_passed": %s, "aarch64_unit_tests_seconds": %s, "android_staticlib_bytes": %s, "linux_aarch64_cdylib_bytes": %s, "ios_check": "%s"}\n' \
  "$passed" "$test_s" "$(size "$android_lib")" "$(size "$linux_lib")" "$ios"
