#!/usr/bin/env bash
# Install the Autobahn|Testsuite fuzzing server (Python 2.7 only) into a
# cache directory, outside the repository:
#
#   ${WSX_AUTOBAHN_HOME:-$HOME/.cache/wsx-autobahn}
#     bootstrap/   pip 20.3.4 wheel + setuptools/wheel/virtualenv for 2.7
#     venv/        Python 2.7 virtualenv with autobahntestsuite and pins
#     .complete    marker written after a successful install
#
# Idempotent: when the marker exists and `venv/bin/wstest --help` works,
# nothing is done.  Set WSX_AUTOBAHN_FORCE=1 to reinstall.
set -euo pipefail

HOME_DIR="${WSX_AUTOBAHN_HOME:-$HOME/.cache/wsx-autobahn}"
BOOT="$HOME_DIR/bootstrap"
VENV="$HOME_DIR/venv"
MARKER="$HOME_DIR/.complete"
# Bump when the pins below change, so existing caches get rebuilt.
INSTALL_VERSION="1"

say() { printf '[autobahn-install] %s\n' "$*" >&2; }

env_complete() {
    [[ -f "$MARKER" ]] \
        && [[ "$(cat "$MARKER")" == "$INSTALL_VERSION" ]] \
        && [[ -x "$VENV/bin/wstest" ]] \
        && "$VENV/bin/wstest" --help >/dev/null 2>&1
}

if [[ "${WSX_AUTOBAHN_FORCE:-0}" != "1" ]] && env_complete; then
    say "already installed in $HOME_DIR (marker + 'wstest --help' OK); nothing to do"
    exit 0
fi

say "installing Autobahn|Testsuite into $HOME_DIR"
mkdir -p "$HOME_DIR"
rm -f "$MARKER"

# --- 1. find a working python2.7 ------------------------------------------
works() { [[ -n "$1" ]] && "$1" -c 'import sys, zlib, ssl; assert sys.version_info[:2] == (2, 7)' >/dev/null 2>&1; }

PY2=""
for cand in "${WSX_PYTHON27:-}" \
            "$HOME/.pyenv/versions/2.7.18/bin/python2.7" \
            "$(command -v python2.7 2>/dev/null || true)"; do
    # `command -v` may return a pyenv shim that fails: test by running it.
    if works "$cand"; then PY2="$cand"; break; fi
done

if [[ -z "$PY2" ]]; then
    say "no working python2.7 found; trying the distribution packages"
    OS_ID="$( (. /etc/os-release && echo "${ID:-}") 2>/dev/null || true)"
    OS_VERSION="$( (. /etc/os-release && echo "${VERSION_ID:-}") 2>/dev/null || true)"
    if [[ "$OS_ID" == "debian" ]]; then
        SUDO=""
        [[ "$(id -u)" != "0" ]] && SUDO="sudo"
        if ! apt-cache policy python2.7 2>/dev/null | grep -q 'Candidate: [0-9]'; then
            if [[ "$OS_VERSION" == "12" ]]; then
                say "Debian 12: adding the Debian 11 (bullseye) suite for python2.7"
                # Reuse the mirror of the existing sources.
                MIRROR="$(grep -rhoE 'https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | grep -v security | head -n1 || true)"
                [[ -z "$MIRROR" ]] && { say "cannot determine the Debian mirror from apt sources"; exit 1; }
                echo "deb ${MIRROR%/} bullseye main" | $SUDO tee /etc/apt/sources.list.d/wsx-bullseye-python27.list >/dev/null
            fi
            $SUDO apt-get update
        fi
        $SUDO apt-get install -y python2.7 python2.7-dev
        PY2="$(dpkg -L python2.7-minimal 2>/dev/null | grep -E '/bin/python2[.]7$' | head -n1 || true)"
    else
        say "not Debian (${OS_ID:-unknown}): install python2.7 and set WSX_PYTHON27"
    fi
fi
if ! works "$PY2"; then
    say "ERROR: no usable python2.7 (set WSX_PYTHON27=/path/to/python2.7)"
    exit 1
fi
say "python2.7: $PY2"

# --- 2. pip for 2.7 (the last release supporting it) -----------------------
PIP_WHEEL="$BOOT/pip-20.3.4-py2.py3-none-any.whl"
mkdir -p "$BOOT"
if [[ ! -f "$PIP_WHEEL" ]]; then
    PY3="${WSX_PYTHON3:-python3}"
    say "downloading pip 20.3.4 wheel with $PY3 -m pip"
    "$PY3" -m pip download --disable-pip-version-check --no-deps pip==20.3.4 -d "$BOOT"
fi
pip27() { PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_PYTHON_VERSION_WARNING=1 "$PY2" "$PIP_WHEEL/pip" "$@"; }

# --- 3. bootstrap setuptools / wheel / virtualenv into $BOOT/lib ----------
if ! PYTHONPATH="$BOOT/lib" "$PY2" -c 'import virtualenv, setuptools, wheel' >/dev/null 2>&1; then
    say "bootstrapping setuptools 44.0.0, wheel 0.36.2, virtualenv 20.15.1 into $BOOT/lib"
    rm -rf "$BOOT/lib"
    pip27 install --no-cache-dir --target "$BOOT/lib" \
        setuptools==44.0.0 wheel==0.36.2 virtualenv==20.15.1
fi

# --- 4. the 2.7 virtualenv --------------------------------------------------
if ! [[ -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import pip, setuptools' >/dev/null 2>&1; then
    say "creating virtualenv $VENV"
    rm -rf "$VENV"
    PYTHONPATH="$BOOT/lib" "$PY2" -m virtualenv --no-download --no-periodic-update -p "$PY2" "$VENV"
fi
vpip() { PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_PYTHON_VERSION_WARNING=1 "$VENV/bin/python" -m pip "$@"; }

# --- 5. the suite and its pins (upstream autobahn-testsuite image pins) ------
say "installing build helpers into the virtualenv"
vpip install "setuptools==44.0.0" "wheel==0.36.2" "incremental==16.10.1"

say "installing Twisted 19.10.0 and friends"
vpip install --no-build-isolation \
    "zope.interface==4.6.0" "six==1.16.0" "Twisted[tls]==19.10.0" \
    "pyOpenSSL==19.1.0" "cryptography==3.3.2" "service_identity==18.1.0"

say "installing autobahn 0.10.9, wsaccel, ujson, klein, ..."
vpip install --no-build-isolation \
    "txaio==2.1.0" "autobahn[twisted,accelerate]==0.10.9" "wsaccel==0.6.3" "ujson==2.0.3" \
    "jinja2==2.11.3" "markupsafe==1.1.1" "Werkzeug==1.0.1" "klein==17.10.0" \
    "unittest2==1.1.0"

say "installing autobahntestsuite 25.10.1"
vpip install --no-build-isolation \
    "autobahntestsuite==25.10.1" \
    "incremental==16.10.1" "Twisted==19.10.0" "zope.interface==4.6.0" "txaio==2.1.0" \
    "six==1.16.0" "autobahn==0.10.9" "wsaccel==0.6.3" "ujson==2.0.3" "jinja2==2.11.3" \
    "markupsafe==1.1.1" "Werkzeug==1.0.1" "klein==17.10.0" "unittest2==1.1.0" \
    "pyOpenSSL==19.1.0" "cryptography==3.3.2" "service_identity==18.1.0"

# --- 6. verify -----------------------------------------------------------------
say "verifying"
"$VENV/bin/python" -c '
import pkg_resources, wsaccel.utf8validator, wsaccel.xormask
print(", ".join("%s %s" % (d, pkg_resources.get_distribution(d).version)
                for d in ("wsaccel", "autobahn", "Twisted", "autobahntestsuite")))' >&2
"$VENV/bin/wstest" --help >/dev/null
echo "$INSTALL_VERSION" > "$MARKER"
say "done: $VENV/bin/wstest"
