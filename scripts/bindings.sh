#!/usr/bin/env bash
# Generates the Kotlin and Swift bindings of watt-ffi from the built library
# (before stripping: the metadata uniffi reads lives in its symbols).
#   scripts/bindings.sh           regenerate into android/sdk and ios/Sources
#   scripts/bindings.sh --check   fail if the committed files differ from a fresh generation
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: scripts/bindings.sh [--check]" >&2; exit 64 ;;
esac

command -v cargo >/dev/null || { echo "cargo is missing: install Rust (rustup) first" >&2; exit 1; }
# The same build as scripts/test.sh, so this is a no-op there (a narrower
# build unifies features differently and rebuilds much of the tree).
cargo build --locked --workspace --all-targets
target="${CARGO_TARGET_DIR:-target}"
lib="$target/debug/libwatt_ffi.so"
[ "$(uname)" = "Darwin" ] && lib="$target/debug/libwatt_ffi.dylib"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# No formatter: the output must not depend on which tools a machine has.
"$target/debug/uniffi-bindgen" generate --library "$lib" --language kotlin --no-format \
  --config bindings/uniffi.toml --out-dir "$out/kotlin"
"$target/debug/uniffi-bindgen" generate --library "$lib" --language swift --no-format \
  --config bindings/uniffi.toml --out-dir "$out/swift"

mkdir -p "$out/tree/android/sdk/src/main/kotlin/org/watt/sdk" "$out/tree/ios/Sources/WattFFI" "$out/tree/ios/Sources/WattFFIFFI/include"
cp "$out/kotlin/org/watt/sdk/watt_ffi.kt" "$out/tree/android/sdk/src/main/kotlin/org/watt/sdk/watt_ffi.kt"
cp "$out/swift/WattFFI.swift" "$out/tree/ios/Sources/WattFFI/WattFFI.swift"
cp "$out/swift/WattFFIFFI.h" "$out/tree/ios/Sources/WattFFIFFI/include/WattFFIFFI.h"
cp "$out/swift/WattFFIFFI.modulemap" "$out/tree/ios/Sources/WattFFIFFI/include/module.modulemap"

files=(
  android/sdk/src/main/kotlin/org/watt/sdk/watt_ffi.kt
  ios/Sources/WattFFI/WattFFI.swift
  ios/Sources/WattFFIFFI/include/WattFFIFFI.h
  ios/Sources/WattFFIFFI/include/module.modulemap
)
if [ "$check" = 1 ]; then
  status=0
  for f in "${files[@]}"; do
    if ! cmp -s "$out/tree/$f" "$f"; then
      echo "bindings out of date: $f differs from a fresh generation (run scripts/bindings.sh)" >&2
      status=1
    fi
  done
  [ "$status" = 0 ] && echo "bindings: the committed files match a fresh generation"
  exit "$status"
fi
for f in "${files[@]}"; do
  mkdir -p "$(dirname "$f")"
  cp "$out/tree/$f" "$f"
  echo "wrote $f"
done
