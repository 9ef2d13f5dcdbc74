#!/usr/bin/env bash
# Installs what is missing, and nothing else: the Debian libraries (when root), the virtual environment,
# the Python packages (re-installed only when the requirements change). Usage: scripts/setup.sh [app|dev]
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-app}"
venv="${STUDIO_VENV:-.venv}"
python="${PYTHON:-python3}"

need_debs=()
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then need_debs+=(libusb-1.0-0); fi
if [ "$mode" = dev ] && [ ! -x /usr/bin/chromium ]; then need_debs+=(chromium); fi
if [ "$mode" = dev ] && ! command -v ffmpeg >/dev/null 2>&1; then :; fi
if [ ${#need_debs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages: ${need_debs[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_debs[@]}" >/dev/null
  else
    echo "setup: please install the Debian packages ${need_debs[*]} (needs root: sudo apt-get install ${need_debs[*]})" >&2
  fi
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating the virtual environment $venv"
  "$python" -m venv "$venv"
fi

req=requirements.txt
[ "$mode" = dev ] && req=requirements-dev.txt
stamp="$venv/.installed-$(cat requirements.txt "$req" | sha256sum | cut -c1-16)-$mode"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages from $req (a few minutes the first time)"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  touch "$stamp"
fi
