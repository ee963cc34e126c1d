#!/bin/sh
# make dist-check: build the sdist and the wheel, install each into a fresh virtual
# environment that holds only torch (plus, for the sdist, what its build needs), and run a
# forward and backward pass of SATNet and SymSATNet on CPU there. The original satnet sdist
# shipped without its headers; this catches that, and a wheel that misses a module.
#
# The extension is compiled against the installed torch, so builds run with
# --no-build-isolation (an isolated build would fetch another torch and break the ABI).
# Everything happens under $DIST_DIR (default build/dist-check), removed first.
set -eu
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${DIST_DIR:-$ROOT/build/dist-check}
BUILD_DEPS="setuptools>=77 wheel cython>=3.0 numpy ninja build"
started=$(date +%s)
step() { echo "== $(( $(date +%s) - started )) s: $*"; }

fresh_venv() {  # fresh_venv DIR [PACKAGES...]: a new venv with torch and the given packages
    folder=$1; shift
    "$PYTHON" -m venv "$folder"
    "$folder/bin/python" -m pip install --quiet "torch==$TORCH_VERSION" "$@"
}

rm -rf "$WORK"
mkdir -p "$WORK"
step "build environment (torch $TORCH_VERSION and the build requirements)"
fresh_venv "$WORK/build-env" $BUILD_DEPS
step "sdist"
(cd "$ROOT" && "$WORK/build-env/bin/python" -m build --sdist --no-isolation --outdir "$WORK/dist" . >"$WORK/sdist.log" 2>&1) \
    || { tail -20 "$WORK/sdist.log"; exit 1; }
sdist=$(ls "$WORK"/dist/*.tar.gz)
missing=""
for header in $(cd "$ROOT" && git ls-files 'csrc/*.h' 'csrc/*.cuh' 'csrc/*.cpp' 'csrc/*.cu' 'puzzles/*.pyx'); do
    tar -tzf "$sdist" | grep -q "/$header\$" || missing="$missing $header"
done
[ -z "$missing" ] || { echo "dist-check: the sdist lacks$missing"; exit 1; }
echo "sdist $(basename "$sdist"): every csrc source and header and the .pyx files are in it"

step "wheel, built from the sdist (compiles the extension)"
"$WORK/build-env/bin/python" -m pip wheel --quiet --no-build-isolation --no-deps --wheel-dir "$WORK/dist" "$sdist" \
    >"$WORK/wheel.log" 2>&1 || { tail -20 "$WORK/wheel.log"; exit 1; }
wheel=$(ls "$WORK"/dist/*.whl)

step "install the wheel into a fresh venv with only torch"
fresh_venv "$WORK/wheel-env"
"$WORK/wheel-env/bin/python" -m pip install --quiet "$wheel"
(cd "$WORK" && "$WORK/wheel-env/bin/python" "$ROOT/tools/dist_smoke.py")

step "install the sdist into a fresh venv with torch and its build requirements (compiles again)"
fresh_venv "$WORK/sdist-env" $BUILD_DEPS
"$WORK/sdist-env/bin/python" -m pip install --quiet --no-build-isolation "$sdist" >"$WORK/sdist-install.log" 2>&1 \
    || { tail -20 "$WORK/sdist-install.log"; exit 1; }
(cd "$WORK" && "$WORK/sdist-env/bin/python" "$ROOT/tools/dist_smoke.py")
step "dist-check passed"
