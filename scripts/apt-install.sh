#!/usr/bin/env bash
# Installs Debian packages (as root or with sudo), refreshing the package
# lists only when the first try fails. Used by scripts/test.sh and
# scripts/test-kotlin.sh for what a fresh machine lacks.
#   scripts/apt-install.sh PACKAGE...
set -euo pipefail
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
  || { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
