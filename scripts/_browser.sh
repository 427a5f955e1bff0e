# Sourced by scripts/test: the admin page's browser tests drive the machine's Chromium through
# Playwright (never a downloaded browser). Installs Debian's chromium when it is missing.
if ! command -v chromium >/dev/null 2>&1 && [ ! -x "${OUTCROP_CHROMIUM:-/usr/bin/chromium}" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test: installing chromium for the browser tests (apt-get)" >&2
    sudo_cmd=()
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get install -y -q chromium >/dev/null \
      || { "${sudo_cmd[@]}" apt-get update -q >/dev/null && "${sudo_cmd[@]}" apt-get install -y -q chromium >/dev/null; } \
      || echo "scripts/test: could not install chromium: the browser tests will fail" >&2
  else
    echo "scripts/test: no chromium and no apt-get: install Chromium (or set OUTCROP_CHROMIUM) for the browser tests" >&2
  fi
fi
