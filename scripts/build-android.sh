#!/usr/bin/env bash
# Builds the Android libraries (cargo ndk) into android/sdk/src/main/jniLibs
# and, with Gradle, the SDK and the app.
#   scripts/build-android.sh [path/to/genesis.json]
# Needs: the Android NDK (ANDROID_NDK_HOME), cargo-ndk, the Rust Android
# targets, and the Android SDK for Gradle. None of these exist on the
# project's Linux CI machines; this script says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v cargo >/dev/null || missing+=("cargo (rustup)")
command -v cargo-ndk >/dev/null || missing+=("cargo-ndk (cargo install cargo-ndk)")
[ -n "${ANDROID_NDK_HOME:-}" ] && [ -d "${ANDROID_NDK_HOME}" ] || missing+=("the Android NDK (set ANDROID_NDK_HOME)")
[ -n "${ANDROID_HOME:-${ANDROID_SDK_ROOT:-}}" ] || missing+=("the Android SDK (set ANDROID_HOME)")
targets=(aarch64-linux-android armv7-linux-androideabi x86_64-linux-android)
if command -v rustup >/dev/null; then
  for t in "${targets[@]}"; do
    rustup target list --installed | grep -qx "$t" || missing+=("Rust target $t (rustup target add $t)")
  done
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "cannot build for Android; missing:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi

# 16 KB page alignment (Android 15+ devices).
export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-z,max-page-size=16384"
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 -o android/sdk/src/main/jniLibs \
  build --locked -p watt-ffi --profile release-smaller
scripts/bindings.sh --check
if [ -n "${1:-}" ]; then
  mkdir -p android/app/src/main/assets
  cp "$1" android/app/src/main/assets/genesis.json
fi
[ -f android/app/src/main/assets/genesis.json ] || { echo "give a genesis file: scripts/build-android.sh path/to/genesis.json" >&2; exit 1; }
cd android && gradle assembleDebug
