#!/usr/bin/env bash
# Fetches, here (where pip reaches PyPI), the wheels the lent GPU machine lacks to run benchmarks/gpu.py: its image
# has jax with CUDA, flax, optax, chex, orbax and the rest, but not gymnax, distrax, their few pure-Python needs,
# nor rejax. They go to .whl/ (git-ignored, carried to the device), for its Python 3.12, at constraints.txt's pins.
# On the device, with `carry: [".whl"]`:
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
#     && PYTHONPATH=src:/tmp/site PYTHONUNBUFFERED=1 python3 benchmarks/gpu.py --out $OUT/gpu.md
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
pin() { grep -i "^$1==" constraints.txt | head -n 1; }
mkdir -p .whl
for name in gymnax distrax tfp-nightly gymnasium Farama-Notifications dm-tree gast decorator cloudpickle rejax; do
  spec=$(pin "$name"); spec=${spec:-$name}
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "$spec"
done
du -sh .whl
