#!/usr/bin/env bash
# Install everything the suite and the embedded lab need on a Debian 12 machine (run as root / sudo).
# Idempotent: a second run only checks. Nothing here downloads outside apt, PyPI and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

# docker-registry: the lab's OCI registry; buildah + skopeo build and push its images without a daemon.
# prometheus: its promtool checks the generated Prometheus configuration and the alert rules (unit tests).
# lynis: the security suite runs this machine's lynis on each host over SSH (nothing installed there).
# openscap-scanner + ssg-debian: likewise its oscap, libraries and ANSSI content (plugins/security/openscap.py).
# postgresql-15: the demo app's unit tests start a throwaway server on 127.0.0.1 (never the package's own).
# restic: the backups' encrypted off-site copy (make backup runs it on this machine).
APT_PACKAGES=(lxc uidmap bridge-utils debootstrap openssh-server openssh-client rsync iptables iproute2 python3-venv
              docker-registry buildah skopeo chromium postgresql-15 prometheus restic lynis
              openscap-scanner ssg-debian)

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/install.sh needs root (apt-get, LXC): run it with sudo" >&2
  exit 1
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# npm renders the Allure report; take Debian's only when the machine has none (keep an existing Node.js).
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> apt: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
else
  echo "==> apt: all ${#APT_PACKAGES[@]} packages present"
fi
# Debian's package enables a registry on *:5000 under systemd; the lab runs its own on the bridge.
if [ -d /run/systemd/system ] && systemctl is-enabled -q docker-registry 2>/dev/null; then
  echo "==> docker-registry: disabling the package's own service (the lab starts its registry itself)"
  systemctl disable --now -q docker-registry
fi
# Debian's prometheus package enables a server on *:9090 under systemd; only its promtool is wanted here.
if [ -d /run/systemd/system ] && systemctl is-enabled -q prometheus 2>/dev/null; then
  echo "==> prometheus: disabling the package's own service (only promtool is used on this machine)"
  systemctl disable --now -q prometheus
fi

PYTHON=${PYTHON:-python3}

install_checkov() {
  # checkov (make lint) pins boto3, botocore and packaging below requirements.txt's: it gets its own venv.
  if [ ! -x .venv-checkov/bin/python ]; then
    echo "==> venv: creating .venv-checkov (checkov alone)"
    "$PYTHON" -m venv .venv-checkov
  fi
  if ! cmp -s requirements-checkov.txt .venv-checkov/.requirements.installed 2>/dev/null; then
    echo "==> pip: installing requirements-checkov.txt (pinned) into .venv-checkov"
    .venv-checkov/bin/pip install -q -r requirements-checkov.txt
    cp requirements-checkov.txt .venv-checkov/.requirements.installed
  else
    echo "==> pip: requirements-checkov.txt already installed"
  fi
}

install_npm_trees() {
  # The lab's npm mirror (verdaccio) has its own tree: its pins must not meet the suite's tools.
  if ! cmp -s lab/npm-mirror/package-lock.json lab/npm-mirror/node_modules/.lock.installed 2>/dev/null; then
    echo "==> npm: installing verdaccio (the lab's npm mirror)"
    npm ci --prefix lab/npm-mirror --no-audit --no-fund --silent --ignore-scripts
    cp lab/npm-mirror/package-lock.json lab/npm-mirror/node_modules/.lock.installed
  else
    echo "==> npm: verdaccio already installed"
  fi
  if ! cmp -s package-lock.json node_modules/.lock.installed 2>/dev/null; then
    echo "==> npm: installing allure (report renderer)"
    npm ci --no-audit --no-fund --silent
    cp package-lock.json node_modules/.lock.installed
  else
    echo "==> npm: tools already installed"
  fi
  # The demo app's own trees, for its unit tests on this machine (hosts build theirs in Docker; rsync never
  # ships these: app_demo_sync_excludes).
  for part in backend frontend; do
    dir=app-demo/$part
    if ! cmp -s $dir/package-lock.json $dir/node_modules/.lock.installed 2>/dev/null; then
      echo "==> npm: installing app-demo/$part (its unit tests)"
      npm ci --prefix $dir --no-audit --no-fund --silent
      cp $dir/package-lock.json $dir/node_modules/.lock.installed
    else
      echo "==> npm: app-demo/$part already installed"
    fi
  done
}

# checkov's venv and the npm trees install beside the suite's own pip: none needs another, and on a fresh
# machine each is mostly waiting on its downloads and unpacking. Their output follows the suite's, whole.
beside=$(mktemp -d)
# A failing pip above still waits for them: nothing of this script is left running after it.
trap 'wait; rm -rf "$beside"' EXIT
(set -e; install_checkov) >"$beside/checkov" 2>&1 &
checkov_pid=$!
(set -e; install_npm_trees) >"$beside/npm" 2>&1 &
npm_pid=$!

if [ ! -x .venv/bin/python ]; then
  echo "==> venv: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
if ! cmp -s requirements.txt .venv/.requirements.installed 2>/dev/null; then
  echo "==> pip: installing requirements.txt (pinned)"
  .venv/bin/pip install -q -r requirements.txt
  cp requirements.txt .venv/.requirements.installed
else
  echo "==> pip: requirements.txt already installed"
fi

failed=0
for part in checkov npm; do
  pid_var=${part}_pid
  if wait "${!pid_var}"; then
    cat "$beside/$part"
  else
    cat "$beside/$part"
    echo "scripts/install.sh: the $part install failed (its output above)" >&2
    failed=1
  fi
done
exit "$failed"
