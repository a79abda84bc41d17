#!/usr/bin/env bash
# Set up everything the demo and the tests need, idempotently, on Debian/Ubuntu:
# system packages, a Docker daemon, a PostgreSQL cluster with a test role, the pinned
# virtualenv, dependency collections from PyPI, and an offline stand-in for ansible-test's
# get-pip download. Writes "$ENGINE_OPS_WORK/env.sh" for the other scripts to source.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${ENGINE_OPS_WORK:-$REPO/.work}
ANSIBLE_WHEEL_VERSION=12.3.0   # the 'ansible' package that carries community.docker & co.
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CONFIG_FILE=/dev/null

say() { echo "bootstrap: $*"; }
die() { echo "bootstrap: ERROR: $*" >&2; exit 1; }

# -- who and where ---------------------------------------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    say "not root; re-running with sudo"
    exec sudo --preserve-env=ENGINE_OPS_WORK,PYTHON "$0" "$@"
  fi
  die "must run as root (or with sudo available): it installs packages and starts dockerd and PostgreSQL"
fi
[ -r /etc/os-release ] || die "cannot read /etc/os-release; this script supports Debian and Ubuntu only"
# shellcheck disable=SC1091
. /etc/os-release
case " ${ID:-} ${ID_LIKE:-} " in
  *" debian "*|*" ubuntu "*) ;;
  *) die "this is ${PRETTY_NAME:-an unknown system}; the bootstrap supports Debian and Ubuntu (apt) only" ;;
esac
command -v apt-get >/dev/null 2>&1 || die "apt-get not found; the bootstrap needs apt to install docker.io and friends"

PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found; Python 3.11 or newer is required"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$("$PYTHON" -V 2>&1) is too old; Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)"
mkdir -p "$WORK"

# -- system packages (only what is missing) --------------------------------------------------------
missing=()
docker info >/dev/null 2>&1 || command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
# losetup/fsfreeze/mkfs.ext4 (util-linux, e2fsprogs) for the volume snapshot tests; rsvg-convert renders drill timelines;
# docker-compose (1.29, the only compose installable here) brings up the compose-managed Engine of the compose tests;
# docker-registry (a real registry, htpasswd auth from apache2-utils' htpasswd) serves the registry tests;
# systemd-analyze (package systemd; no systemd needs to run) verifies the drill schedule's units.
for tool in systemd-analyze:systemd mmdebstrap:mmdebstrap zstd:zstd shellcheck:shellcheck curl:curl rsvg-convert:librsvg2-bin \
            fsfreeze:util-linux losetup:mount mkfs.ext4:e2fsprogs docker-compose:docker-compose \
            docker-registry:docker-registry htpasswd:apache2-utils; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
# Debian's own Python can load SQLite extensions (sqlite-vec); it runs the brain tests a second time.
EXT_PYTHON=${EXT_PYTHON:-/usr/bin/python3}
[ -x "$EXT_PYTHON" ] || missing+=(python3)
"$EXT_PYTHON" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# A real Prometheus (never started as a service here) for the decision module's query-API evidence tests.
if ! command -v promtool >/dev/null 2>&1; then
  say "installing prometheus (tests start it themselves)"
  [ ${#missing[@]} -gt 0 ] || apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# -- Docker daemon ---------------------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    say "starting docker with systemd"
    systemctl start docker
  elif pgrep -x dockerd >/dev/null 2>&1; then
    say "a dockerd is already starting; waiting for it (never a second daemon)"
  else
    # Tests use host networking on 127.0.0.1 only, so the daemon needs no bridge and no iptables.
    say "starting dockerd without systemd (log: $WORK/dockerd.log)"
    setsid dockerd --bridge=none --iptables=false >"$WORK/dockerd.log" 2>&1 </dev/null &
  fi
  for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || die "dockerd did not answer within 60 s; see $WORK/dockerd.log"
fi

# -- PostgreSQL ------------------------------------------------------------------------------------
read -r PG_VER PG_CLUSTER PG_PORT PG_STATUS _ < <(pg_lsclusters --no-header 2>/dev/null | head -n1) || true
if [ -z "${PG_VER:-}" ]; then
  PG_VER=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -n | tail -n1)
  [ -n "$PG_VER" ] || die "no PostgreSQL server installed (apt-get install postgresql)"
  say "creating PostgreSQL $PG_VER cluster main"
  pg_createcluster "$PG_VER" main >/dev/null
  read -r PG_VER PG_CLUSTER PG_PORT PG_STATUS _ < <(pg_lsclusters --no-header | head -n1)
fi
if [ "$PG_STATUS" != "online" ]; then
  say "starting PostgreSQL $PG_VER/$PG_CLUSTER on port $PG_PORT"
  pg_ctlcluster "$PG_VER" "$PG_CLUSTER" start
fi
for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break; sleep 0.5; done
pg_isready -q -h 127.0.0.1 -p "$PG_PORT" || die "PostgreSQL $PG_VER/$PG_CLUSTER does not answer on 127.0.0.1:$PG_PORT"
# One password per machine (the role belongs to the cluster, not to a checkout), so several checkouts on one
# machine never reset each other's password.
PG_SECRET_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/engine_ops"
mkdir -p "$PG_SECRET_DIR"; chmod 700 "$PG_SECRET_DIR"
if [ ! -s "$PG_SECRET_DIR/pg-password" ]; then
  if [ -s "$WORK/pg/password" ]; then
    (umask 077; cp "$WORK/pg/password" "$PG_SECRET_DIR/pg-password")  # keep the password an older set-up made
  else
    (umask 077; "$PYTHON" -c 'import secrets; print(secrets.token_hex(16))' >"$PG_SECRET_DIR/pg-password")
  fi
fi
PG_PASSWORD=$(cat "$PG_SECRET_DIR/pg-password")
# Two roles, password auth over TCP on 127.0.0.1 like an Engine's DSN:
# - engine_ops is what a deployment really gives the Engine (and so the collection): it owns its brain
#   database and nothing more (no SUPERUSER, CREATEDB or CREATEROLE). Every brain module in the tests
#   runs as this role.
# - engine_ops_admin stands for the DBA: the test fixtures create and drop the throwaway brain databases
#   (owned by engine_ops) with it, and one test restores with pg_restore_strategy=database through it.
runuser -u postgres -- psql -q -p "$PG_PORT" -v ON_ERROR_STOP=1 -v pw="$PG_PASSWORD" >/dev/null <<'SQL'
SELECT format('CREATE ROLE engine_ops LOGIN PASSWORD %L', :'pw')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'engine_ops') \gexec
SELECT format('ALTER ROLE engine_ops LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', :'pw') \gexec
SELECT format('CREATE ROLE engine_ops_admin LOGIN SUPERUSER PASSWORD %L', :'pw')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'engine_ops_admin') \gexec
SELECT format('ALTER ROLE engine_ops_admin PASSWORD %L', :'pw') \gexec
SQL

# -- virtualenv (reinstalled only when the pins change) --------------------------------------------
VENV=$WORK/venv
stamp=$(cat "$REPO/requirements.txt" "$REPO/requirements-dev.txt" "$REPO/constraints-dev.txt" \
        <("$PYTHON" -V 2>&1) | sha256sum | cut -c1-16)
if [ "$(cat "$VENV/.stamp" 2>/dev/null)" != "$stamp" ]; then
  say "creating virtualenv $VENV (about a minute)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r "$REPO/requirements-dev.txt" -c "$REPO/constraints-dev.txt"
  echo "$stamp" >"$VENV/.stamp"
fi

# A second virtualenv on a Python whose sqlite3 can load extensions: the reference Engine's unit tests and
# the brain tests run there with sqlite-vec loaded, while the main venv's Python cannot load it (as on many hosts).
"$EXT_PYTHON" -c 'import sqlite3; sqlite3.connect(":memory:").enable_load_extension(True)' 2>/dev/null \
  || die "$EXT_PYTHON cannot load SQLite extensions; set EXT_PYTHON to a Python that can (Debian's /usr/bin/python3 does)"
EXT_VENV=$WORK/venv-ext
ext_stamp=$(cat "$REPO/constraints-dev.txt" <("$EXT_PYTHON" -V 2>&1) | sha256sum | cut -c1-16)
if [ "$(cat "$EXT_VENV/.stamp" 2>/dev/null)" != "$ext_stamp" ]; then
  say "creating virtualenv $EXT_VENV on $EXT_PYTHON (loads SQLite extensions)"
  rm -rf "$EXT_VENV"
  "$EXT_PYTHON" -m venv "$EXT_VENV"
  "$EXT_VENV/bin/pip" install -q pytest pytest-xdist sqlite-vec -c "$REPO/constraints-dev.txt"
  echo "$ext_stamp" >"$EXT_VENV/.stamp"
fi

# -- dependency collections from PyPI (Galaxy is not reachable) ------------------------------------
COLL=$WORK/collections
COLL_WANTED="community/docker/ community/postgresql/ ansible/posix/ amazon/aws/ google/cloud/ awx/awx/"
if [ "$(cat "$COLL/.stamp" 2>/dev/null)" != "$ANSIBLE_WHEEL_VERSION $COLL_WANTED" ]; then
  say "unpacking $COLL_WANTED from ansible==$ANSIBLE_WHEEL_VERSION"
  rm -rf "$COLL" "$WORK/dl"; mkdir -p "$COLL"
  "$VENV/bin/pip" download -q --no-deps "ansible==$ANSIBLE_WHEEL_VERSION" -d "$WORK/dl"
  "$VENV/bin/python" - "$WORK/dl/ansible-$ANSIBLE_WHEEL_VERSION-py3-none-any.whl" "$COLL" "$COLL_WANTED" <<'PY'
import sys, zipfile
wanted = tuple(sys.argv[3].split())
with zipfile.ZipFile(sys.argv[1]) as whl:
    whl.extractall(sys.argv[2], [n for n in whl.namelist()
                                 if n.startswith("ansible_collections/") and n[20:].startswith(wanted)])
PY
  rm -rf "$WORK/dl"
  echo "$ANSIBLE_WHEEL_VERSION $COLL_WANTED" >"$COLL/.stamp"
fi
# This checkout is engine_ops.lifecycle for ansible-playbook and ansible-lint (not for ansible-test,
# which refuses symlinks and gets a real copy from scripts/run_tests.py's sanity layer).
mkdir -p "$COLL/ansible_collections/engine_ops"
ln -sfn "$REPO" "$COLL/ansible_collections/engine_ops/lifecycle"

# -- ansible-test: offline stand-in for its get-pip download ---------------------------------------
AT=$("$VENV/bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
PIPV=$(grep -oP "pip='\K[0-9.]+" "$AT/_internal/python_requirements.py" | head -n1)
# The tests run with a home of their own (scripts/run_tests.py sets HOME=$TEST_HOME), so what Ansible, ansible-lint,
# ansible-test and the roles keep under ~ (~/.ansible, ~/.ansible_async, ~/.engine_ops) never touches the user's.
# ansible-test looks for this stand-in under that home.
TEST_HOME="$WORK/home"
mkdir -p "$TEST_HOME/.ansible/test/cache"
cat >"$TEST_HOME/.ansible/test/cache/get_pip_${PIPV//./_}.py" <<'PY'
# Stand-in for get-pip.py: CPython's bundled pip wheel installs the requested pip from PyPI.
import glob, os, sys, ensurepip
args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
whl = sorted(glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), '_bundled', 'pip-*.whl')))[-1]
sys.path.insert(0, whl)
from pip._internal.cli.main import main
sys.exit(main(['install', '--upgrade', '--force-reinstall'] + args))
PY

# -- environment for the other scripts -------------------------------------------------------------
cat >"$WORK/env.sh" <<ENV
# Written by scripts/bootstrap.sh; source it to use the project's tools and services.
export ENGINE_OPS_WORK='$WORK'
export VIRTUAL_ENV='$VENV'
export PATH='$VENV/bin':"\$PATH"
export ANSIBLE_COLLECTIONS_PATH='$COLL'
export ENGINE_OPS_TEST_HOME='$TEST_HOME'
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
export ENGINE_OPS_PG_HOST=127.0.0.1 ENGINE_OPS_PG_PORT='$PG_PORT' ENGINE_OPS_PG_USER=engine_ops
export ENGINE_OPS_PG_ADMIN_USER=engine_ops_admin
export ENGINE_OPS_PG_PASSWORD='$PG_PASSWORD'
export ENGINE_OPS_EXT_PYTHON='$EXT_VENV/bin/python'
ENV
chmod 600 "$WORK/env.sh"
say "ready: docker $(docker version --format '{{.Server.Version}}'), PostgreSQL $PG_VER on 127.0.0.1:$PG_PORT, venv $VENV"
