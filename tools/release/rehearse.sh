#!/usr/bin/env bash
# Release rehearsal: build every wheel and sdist, check them, upload them to a package index of
# our own (pypiserver on loopback), then install each piece BY NAME from that index alone in a
# fresh virtual environment and run one task with it against a private redis-server:
#   core      qtq-core alone: imports without redis or Django
#   producer  qtq-redis alone: no Django, no rich; enqueues and reads the result
#   worker    qtq-cluster: the `qcluster run` command runs the producers' tasks
#   django    qtq-django: migrate, `manage.py qcluster`, async_task -> result; then every extra
#   sdist     the four sdists built from source and imported
#   foreign   the unrelated `qcore` from PyPI beside ours: import fails with a clear message
#
# Third-party dependencies are downloaded beforehand (the versions uv.lock pins) and served by
# the same index: the installs see that one index and nothing else, so no name of ours can ever
# be answered by PyPI, and they test the versions the suite tested.
#
# Usage: bash tools/release/rehearse.sh   (from anywhere; needs uv, redis-server, curl)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
export PATH="$HOME/.local/bin:$PATH"
python_version=${REHEARSAL_PYTHON:-3.11}
queue=rehearsal
export Q_SECRET_KEY=release-rehearsal-secret-0123456789abcdefghijklmnopqrstuvwxyz  # 32 bytes or more

# Nothing from the caller's environment may add an index or redirect an install.
for var in $(compgen -e | grep -E '^(UV_|PIP_|TWINE_|VIRTUAL_ENV$|PYTHONPATH$)' || true); do
    unset "$var"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/q-rehearsal.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf -- '--- %s (%ss)\n' "$*" "$SECONDS"; }
fail() { printf 'rehearsal: %s\n' "$*" >&2; exit 1; }
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_for() {  # wait_for WHAT COMMAND...: up to 30 s
    local what=$1; shift
    for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    fail "$what did not come up"
}
# Distribution names, version and import names from the pyproject files (lowest first).
mapfile -t members < <(uv run --frozen python -m tools.release.workspace)
[ "${#members[@]}" -eq 4 ] || fail "expected 4 workspace members, read: ${members[*]}"
names=(); for m in "${members[@]}"; do names+=("${m%% *}"); done
version=$(echo "${members[0]}" | cut -d' ' -f2)

say "build: wheels and sdists of ${names[*]} $version"
dist=$work/dist
uv build --all-packages --out-dir "$dist" --quiet
for name in "${names[@]}"; do
    stem=${name//-/_}-$version
    [ -f "$dist/$stem-py3-none-any.whl" ] && [ -f "$dist/$stem.tar.gz" ] \
        || fail "no wheel or sdist for $name $version in: $(ls "$dist")"
done
ls "$dist"

say "check: twine check, check-wheel-contents"
uvx --python "$python_version" twine check --strict "$dist"/*
# --toplevel: exactly the import names each pyproject declares (qtq-core ships qcore and
# qtq_core). W004: Django names its migration modules 0001_initial.py, never imported by that name.
for member in "${members[@]}"; do
    read -r name _ _ toplevel <<<"$member"
    uvx --python "$python_version" check-wheel-contents --ignore W004 --toplevel "$toplevel" \
        "$dist/${name//-/_}-$version-py3-none-any.whl"
done

say "index: the locked third-party wheels, pypiserver, upload"
index=$work/index
mkdir -p "$index"
uv export --frozen --quiet --all-packages --all-extras --no-dev --no-emit-workspace --no-hashes \
    --no-header --no-annotate --output-file "$work/third-party.txt"
# hatchling: the sdists' build backend, which the sdist installs fetch from the index too.
uvx --python "$python_version" pip download --isolated --quiet --disable-pip-version-check \
    --only-binary=:all: --no-deps -r "$work/third-party.txt" --dest "$index"
uvx --python "$python_version" pip download --isolated --quiet --disable-pip-version-check \
    --only-binary=:all: "hatchling>=1.32" --dest "$index"
port=$(free_port)
url=http://127.0.0.1:$port
# --disable-fallback: by default pypiserver redirects a name it does not hold to PyPI.
uvx --python "$python_version" --from "pypiserver>=2.3" pypi-server run --host 127.0.0.1 \
    --port "$port" --authenticate . --passwords . --disable-fallback --log-stream none \
    "$index" >"$work/pypiserver.log" 2>&1 &
pids+=($!)
wait_for pypiserver curl -sf "$url/simple/"
uvx --python "$python_version" twine upload --non-interactive --disable-progress-bar \
    --repository-url "$url/" --username rehearsal --password rehearsal "$dist"/*
for name in "${names[@]}"; do
    files=$(curl -sf "$url/simple/$name/" | grep -o "${name//-/_}-$version[^\"#<]*" | sort -u)
    [ "$(echo "$files" | wc -l)" -eq 2 ] || fail "$url/simple/$name/ lists: $files"
done
curl -s -o /dev/null -w '%{http_code}' "$url/simple/no-such-name-here/" | grep -qx 404 \
    || fail "the index answers for names it does not hold (a fallback to PyPI?)"
echo "index at $url holds ${names[*]} (wheel and sdist each), no fallback"

say "redis-server on a private port"
redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$work" \
    --logfile "$work/redis.log" &
pids+=($!)
wait_for redis-server redis-cli -p "$redis_port" ping
redis_url=redis://127.0.0.1:$redis_port/0
echo "redis-server at $redis_url"

# uv's own cache: the venvs hardlink from it (freeing copies of them is slow on a disk mounted
# with discard). Our wheels are never taken from it: its entries are per index URL, and the
# index's port is new each run; the sdists are built afresh below (--refresh-package).
venv() {  # venv NAME: a fresh virtual environment, its python printed
    uv venv --quiet --python "$python_version" "$work/venv-$1"
    echo "$work/venv-$1/bin/python"
}
install() {  # install PYTHON REQUIREMENT...: from the local index and nothing else
    local python=$1; shift
    uv pip install --quiet --no-config --python "$python" --index-url "$url/simple/" "$@"
}
run_in() {  # run_in PYTHON ARGS...: from an empty folder, so nothing of the checkout is importable
    local python=$1; shift
    (cd "$work/run" && "$python" "$@")
}
mkdir -p "$work/run"
cp tools/release/smoke_redis.py tools/release/smoke_django.py tools/release/smoke_settings.py \
    "$work/run/"

say "core: ${names[0]} alone"
core=$(venv core)
install "$core" "${names[0]}"
run_in "$core" -c "
import importlib.util as u, sys, qcore
assert qcore.DISTRIBUTION == '${names[0]}' and qcore.__version__ == '$version', qcore.__version__
assert not [m for m in ('redis', 'django', 'rich') if u.find_spec(m)], 'more than qtq-core needs'
print('core: qcore', qcore.__version__, 'imports alone')"

say "worker: ${names[2]}, the qcluster command on queue $queue"
worker=$(venv worker)
install "$worker" "${names[2]}"
(cd "$work/run" && exec "$work/venv-worker/bin/qcluster" run --redis-url "$redis_url" \
    --queue "$queue" --result-namespace "$queue" --name rehearsal --workers 1) \
    >"$work/qcluster.log" 2>&1 &
cluster_pid=$!
pids+=("$cluster_pid")

say "producer: ${names[1]} alone (no Django, no rich), one task through the worker's cluster"
producer=$(venv producer)
install "$producer" "${names[1]}"
run_in "$producer" smoke_redis.py "$redis_url" "$queue" --no-rich
run_in "$worker" smoke_redis.py "$redis_url" "$queue"
kill -TERM "$cluster_pid"
wait "$cluster_pid" || { cat "$work/qcluster.log"; fail "qcluster run exited with $?"; }
echo "worker: qcluster run stopped cleanly on SIGTERM"

say "django: ${names[3]}, manage.py qcluster, async_task -> result"
site=$(venv django)
install "$site" "${names[3]}"
export DJANGO_SETTINGS_MODULE=smoke_settings SMOKE_DB=$work/run/db.sqlite3 SMOKE_REDIS_URL=$redis_url
run_in "$site" -m django migrate --verbosity 0
(cd "$work/run" && exec "$site" -m django qcluster) >"$work/django-qcluster.log" 2>&1 &
django_pid=$!
pids+=("$django_pid")
run_in "$site" smoke_django.py
kill -TERM "$django_pid"
wait "$django_pid" || { cat "$work/django-qcluster.log"; fail "manage.py qcluster exited with $?"; }
echo "django: manage.py qcluster stopped cleanly on SIGTERM"

say "extras: every extra the wheels declare, installed by name and imported"
mapfile -t extras < <(uv run --frozen python -m tools.release.extras "$dist")
for line in "${extras[@]}"; do
    read -r requirement modules <<<"$line"
    install "$site" "$requirement"
    run_in "$site" -c "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]" \
        $modules
    echo "extras: $requirement brings $modules"
done
[ "${#extras[@]}" -gt 0 ] || echo "extras: none declared"

say "sdist: the four sdists built from source (deps and hatchling from the index) and imported"
sdist=$(venv sdist)
refresh=(); for name in "${names[@]}"; do refresh+=(--refresh-package "$name"); done
install "$sdist" "${refresh[@]}" "$dist"/*.tar.gz
run_in "$sdist" -c "
import django
from django.conf import settings
settings.configure(INSTALLED_APPS=['qdjango'])
django.setup()
import qcore, qredis, qcluster, qcluster.cli, qdjango
print('sdist:', *(f'{m.__name__} {m.__version__}' for m in (qcore, qredis, qcluster, qdjango)))"

say "foreign: the unrelated qcore from PyPI beside ${names[0]} fails at import, clearly"
uvx --python "$python_version" pip download --isolated --quiet --disable-pip-version-check \
    --only-binary=:all: --no-deps "qcore==1.11.1" --dest "$work/foreign"
foreign=$(venv foreign)
install "$foreign" "${names[1]}"
expect_conflict() {  # expect_conflict CODE: fails, naming both distributions
    local out
    if out=$(run_in "$foreign" -c "$1" 2>&1); then fail "'$1' worked beside the foreign qcore"; fi
    grep -q "DistributionConflict: .*'${names[0]}' and the unrelated 'qcore' library" <<<"$out" \
        || { echo "$out"; fail "'$1' failed without naming both distributions"; }
    echo "foreign: '$1' -> $(grep -o 'DistributionConflict: two distributions[^:]*' <<<"$out")"
}
uv pip install --quiet --no-config --python "$foreign" --no-deps "$work"/foreign/qcore-*.whl \
    2>/dev/null  # its files written over ours: its __init__ fails unless qtq_core runs first
expect_conflict "import qredis"
install "$foreign" --reinstall-package "${names[0]}" "${names[0]}" 2>/dev/null  # ours on top
expect_conflict "import qcore"

say "rehearsal passed: ${names[*]} $version install by name from a package index"
