# Shared by scripts/placement-conformance and scripts/placement-differential:
# makes sure the throwaway virtualenv holding upstream OpenStack Placement
# (openstack-placement 16.0.0 + gabbi) exists, then exports what the Python
# harnesses under scripts/ need.  Source it; it sets VENV and exits with
# status 3 when the venv cannot be built.
#
# Inputs (environment): FERRITE_CONFORMANCE_VENV, FERRITE_CONFORMANCE_PYTHON,
# FERRITE_PLACEMENT_REQ, FERRITE_GABBI_REQ; PLACEMENT_VENV_CALLER names the
# calling script in messages.

_pv_caller="${PLACEMENT_VENV_CALLER:-placement-venv}"
_pv_scripts="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FERRITE_CONFORMANCE_VENV:-$HOME/.cache/ferrite/placement-conformance-venv-pinned}"
_pv_python="${FERRITE_CONFORMANCE_PYTHON:-python3}"
# What the venv holds: exact pins, and the full resolved set in
# constraints/placement.txt.  A change here, in the stamp or in the
# constraints rebuilds cached venvs.
_pv_placement_req="${FERRITE_PLACEMENT_REQ:-openstack-placement==16.0.0}"
_pv_gabbi_req="${FERRITE_GABBI_REQ:-gabbi==4.2.3}"
_pv_constraints="$_pv_scripts/constraints/placement.txt"
_pv_stamp="v2 $_pv_placement_req $_pv_gabbi_req $(cksum <"$_pv_constraints")"

_pv_venv_ok() {
    [[ -x "$VENV/bin/python" ]] || return 1
    [[ -f "$VENV/.ferrite-stamp" ]] || return 1
    [[ "$(cat "$VENV/.ferrite-stamp")" == "$_pv_stamp" ]] || return 1
    "$VENV/bin/python" -c 'import placement, gabbi, os_traits, os_resource_classes' \
        >/dev/null 2>&1 || return 1
}

_pv_build_venv() {
    echo "$_pv_caller: preparing venv in $VENV (one-off)" >&2
    rm -rf "$VENV"
    if ! "$_pv_python" -m venv "$VENV" >&2; then
        echo "$_pv_caller: '$_pv_python -m venv' failed" \
             "(on Debian: apt-get install python3-venv)" >&2
        return 1
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -c "$_pv_constraints" "$_pv_placement_req" "$_pv_gabbi_req" >&2
    echo "$_pv_stamp" > "$VENV/.ferrite-stamp"
    _pv_venv_ok
}

if ! _pv_venv_ok; then
    mkdir -p "$(dirname "$VENV")"
    if command -v flock >/dev/null 2>&1; then
        # Serialise concurrent first runs.
        exec 9>"$VENV.lock"
        flock 9
    fi
    if ! _pv_venv_ok; then
        _pv_build_venv || { echo "$_pv_caller: venv is unusable" >&2; exit 3; }
    fi
fi

# Keep the source tree free of __pycache__ directories.
export PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="$_pv_scripts${PYTHONPATH:+:$PYTHONPATH}"
export FERRITE_REPO_ROOT="$(cd "$_pv_scripts/.." && pwd)"
export FERRITE_CONFORMANCE_VENV="$VENV"
export FERRITE_CONFORMANCE_CONSTRAINTS="$_pv_constraints"
