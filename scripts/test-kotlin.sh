#!/usr/bin/env bash
# The Kotlin SDK on the host JVM: installs kotlinc (npm `kotlin-compiler`)
# and JNA (Debian `libjna-java`) when missing, checks the committed bindings
# against a fresh generation, compiles the generated bindings, the SDK facade
# and the JVM test, and runs it against the real cdylib and validators.
#   scripts/test-kotlin.sh                 check, compile and run the JVM test
#   scripts/test-kotlin.sh --compile-only  stop after compiling (used by bench-ffi.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
compile_only=0
[ "${1:-}" = "--compile-only" ] && compile_only=1
target="${CARGO_TARGET_DIR:-target}"
tools=".tools/kotlin"

# Debian packages, when missing: a JDK, npm, JNA.
apt_install() { scripts/apt-install.sh "$@"; }
command -v java >/dev/null || { echo "== installing a JDK (apt-get install openjdk-17-jdk-headless)"; apt_install openjdk-17-jdk-headless; }
command -v npm >/dev/null || { echo "== installing npm (apt-get install npm)"; apt_install npm; }
if [ ! -x "$tools/node_modules/kotlin-compiler/bin/kotlinc" ]; then
  echo "== installing kotlinc (npm kotlin-compiler) into $tools"
  mkdir -p "$tools"
  (cd "$tools" && npm install --no-audit --no-fund --silent kotlin-compiler@2.4.20)
fi
kotlin_home="$tools/node_modules/kotlin-compiler"
jna=/usr/share/java/jna.jar
if [ ! -f "$jna" ]; then
  echo "== installing JNA (apt-get install libjna-java)"
  apt_install libjna-java
fi

echo "== bindings are reproducible (this also builds the cdylib and the validators)"
scripts/bindings.sh --check


out="$target/kotlin-sdk-test"
mkdir -p "$out"
cp_compile="$jna:$kotlin_home/lib/kotlinx-coroutines-core-jvm.jar"
echo "== kotlinc (generated bindings + SDK facade + JVM test)"
"$kotlin_home/bin/kotlinc" -nowarn -jvm-target 17 -cp "$cp_compile" -d "$out/test.jar" \
  android/sdk/src/main/kotlin/org/watt/sdk/*.kt tests/kotlin/WalletJvmTest.kt

[ "$compile_only" = 1 ] && exit 0
echo "== JVM test"
WATT_BIN_DIR="$target/debug" java -Djna.library.path="$target/debug" \
  -cp "$out/test.jar:$cp_compile:$kotlin_home/lib/kotlin-stdlib.jar" WalletJvmTestKt
