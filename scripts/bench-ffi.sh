#!/usr/bin/env bash
# The FFI's figures: host library sizes at `release-smaller` and the cost of
# one call from Kotlin (JVM, JNA) into the cdylib.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --locked -p watt-ffi --lib --profile release-smaller
dir="$target/release-smaller"
echo "host ($(uname -m)) libraries at release-smaller:"
for f in "$dir/libwatt_ffi.so" "$dir/libwatt_ffi.a"; do
  [ -f "$f" ] && awk -v n="$(basename "$f")" -v b="$(stat -c %s "$f")" 'BEGIN { printf "  %-40s %8.2f MiB (%d bytes)\n", n, b / 1048576, b }'
done
scripts/test-kotlin.sh --compile-only
kotlin_home=.tools/kotlin/node_modules/kotlin-compiler
cp="/usr/share/java/jna.jar:$kotlin_home/lib/kotlinx-coroutines-core-jvm.jar"
"$kotlin_home/bin/kotlinc" -nowarn -jvm-target 17 -cp "$target/kotlin-sdk-test/test.jar:$cp" -d "$target/kotlin-sdk-test/bench.jar" tests/kotlin/FfiBench.kt
java -Djna.library.path="$dir" -cp "$target/kotlin-sdk-test/bench.jar:$target/kotlin-sdk-test/test.jar:$cp:$kotlin_home/lib/kotlin-stdlib.jar" FfiBenchKt "${1:-200000}"
