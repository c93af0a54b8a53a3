#!/bin/sh
# The device check rehearsed on CPU, in an environment shaped like the device image: Python
# 3.12, jax 0.11.2 and the image's other packages, none of the packages the travel pack
# carries. It installs the pack's wheels offline as the device would (travel_pack/run_check.sh)
# and runs (1) the --smoke check and (2) the published-size step items at batch 2, then the
# end-to-end item on the pack's Ped2 up to its time prediction (prep on the pack, the pack's
# decode check) and the input pipeline; on a CPU the end-to-end item stops there ("skipped").
#
#   sh benchmarks/device_rehearsal.sh PYTHON3.12 [PACK=travel_pack] [VENV=/tmp/device_rehearsal]
#
# Run from the repository root after `python benchmarks/travel_pack.py --out=travel_pack`.
# Needs the package registry once, for the venv. Writes VENV/out{1,2}/accelerator_results.jsonl.
set -e
PYTHON=${1:?usage: sh benchmarks/device_rehearsal.sh PYTHON3.12 [PACK] [VENV]}
PACK=${2:-travel_pack}
VENV=${3:-/tmp/device_rehearsal}
[ -f "$PACK/run_check.sh" ] || { echo "error: $PACK/run_check.sh: build the pack first" >&2; exit 2; }
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 12), sys.version' || {
  echo "error: $PYTHON is not Python 3.12 (the device image's)" >&2; exit 2; }
if [ ! -x "$VENV/bin/python3" ]; then
  "$PYTHON" -m venv "$VENV"
  # The device image's packages that the check and the carried wheels import (KINDS.md's list).
  "$VENV/bin/pip" install -q "jax==0.11.2" flax optax orbax-checkpoint chex \
      opencv-python-headless onnxruntime onnx scipy numpy absl-py etils protobuf pyyaml \
      cloudpickle attrs wrapt six pyarrow psutil requests tqdm matplotlib pillow msgpack \
      tensorstore rich treescope
fi
for missing in grain ml_collections tensorboardX google_crc32c tensorflow_datasets; do
  if "$VENV/bin/python3" -c "import $missing" 2>/dev/null; then
    echo "error: $VENV has $missing, which the device image lacks; remove the venv" >&2; exit 2
  fi
done
rm -rf /tmp/site  # run_check.sh installs the wheels there
mkdir -p "$VENV/out1" "$VENV/out2"
PATH="$VENV/bin:$PATH" OUT="$VENV/out1" sh "$PACK/run_check.sh" --smoke --workdir="$VENV/work1"
PATH="$VENV/bin:$PATH" OUT="$VENV/out2" sh "$PACK/run_check.sh" \
    --items=train_step,score_step,end_to_end,input_pipeline --batches=2 --dtypes=float32 \
    --steps=1 --workdir="$VENV/work2"
