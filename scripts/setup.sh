#!/usr/bin/env bash
# Installs what is missing, and nothing else: the Debian libraries (when root), the virtual environment,
# the Python packages (re-installed only when the locks change). Usage: scripts/setup.sh [app|dev]
# The packages come from the locks: requirements.txt (app) or requirements-dev.txt (app + test tools), which pin
# every package, direct and transitive, to one version (`make lock` regenerates them from requirements*.in).
# They go in through uv, installed into the venv with pip (parallel downloads, a cache in ~/.cache/uv or
# $UV_CACHE_DIR), or through pip when uv cannot be had. STUDIO_VENV picks the venv (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-app}"
venv="${STUDIO_VENV:-.venv}"
python="${PYTHON:-python3}"

need_debs=()
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then need_debs+=(libusb-1.0-0); fi
if [ "$mode" = dev ] && [ ! -x /usr/bin/chromium ]; then need_debs+=(chromium); fi
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
if ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "setup: warning: $venv runs Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())'); the locks are for 3.11" >&2
fi

req=requirements.txt
[ "$mode" = dev ] && req=requirements-dev.txt
stamp="$venv/.installed-$(cat requirements.txt "$req" | sha256sum | cut -c1-16)-$mode"
if [ ! -f "$stamp" ]; then
  uv="$venv/bin/uv"
  if [ ! -x "$uv" ]; then
    # the uv version that the dev lock pins, for the app too
    uv_pin="$(grep -m1 -E '^uv==' requirements-dev.txt || echo uv)"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$uv_pin" >/dev/null 2>&1 || true
  fi
  if [ -x "$uv" ]; then
    echo "setup: installing Python packages from $req with uv (a few minutes the first time)"
    "$uv" pip install -q --python "$venv/bin/python" -r "$req"
  else
    echo "setup: uv could not be installed; installing Python packages from $req with pip (slower)"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  fi
  touch "$stamp"
fi
