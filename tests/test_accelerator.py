"""benchmarks/accelerator.py: the --smoke run prints every item's line with sane fields; an item
that fails or would not fit the budget leaves a line and the next item runs."""

import json
import math
import pathlib
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT / "benchmarks"))

import accelerator  # noqa: E402  (benchmarks/ is not a package)
import device_env  # noqa: E402


def _one_device_env():
  """The environment without the fake devices of conftest.py: the check runs as a user's would."""
  return device_env.cpu_devices_env(1)


def _positive(line, *keys):
  for k in keys:
    assert isinstance(line[k], (int, float)) and math.isfinite(line[k]) and line[k] > 0, (k, line)


def test_smoke_prints_every_item(tmp_path):
  out = tmp_path / "results.jsonl"
  start = time.monotonic()
  proc = subprocess.run([sys.executable, "benchmarks/accelerator.py", "--smoke", f"--out={out}",
                         f"--workdir={tmp_path / 'work'}"], cwd=ROOT, env=_one_device_env(),
                        capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]
  assert time.monotonic() - start < 300
  lines = [json.loads(line) for line in out.read_text().splitlines()]
  # stdout holds the same lines and nothing else (library output goes to stderr).
  assert [json.loads(line) for line in proc.stdout.splitlines()] == lines
  bad = [line for line in lines if "error" in line or line.get("skipped")]
  assert not bad and all(line["smoke"] for line in lines), bad
  by_item = {}
  for line in lines:
    by_item.setdefault(line["item"], []).append(line)

  for kind in accelerator.STEP_ITEMS:
    got = {(line["dtype"], line["batch"]) for line in by_item[kind]}
    assert got == {(d, b) for d in ("float32", "bfloat16") for b in (8, 16)}, kind
    for line in by_item[kind]:
      _positive(line, "cubes_per_s", "compile_s", "gflop_per_cube", "achieved_tflop_s",
                "item_s")
      assert line["backend"] == "cpu" and line["device"]
      # No vendor peak for a CPU: the share is null, the measured matmul share is there.
      assert line["peak_name"] is None and line["share_of_device_peak"] is None
      assert 0 < line["share_of_matmul_peak"]
      assert line["xla_temp_bytes"] >= 0 and "device_peak_bytes_since_start" in line
  # The score step does fewer FLOPs per cube than the train step (no backward pass).
  train = {(l["dtype"], l["batch"]): l["gflop_per_cube"] for l in by_item["train_step"]}
  for line in by_item["score_step"]:
    assert line["gflop_per_cube"] < train[(line["dtype"], line["batch"])]

  (e2e,) = by_item["end_to_end"]
  _positive(e2e, "prep_s", "train_s", "eval_s", "total_s", "train_cubes", "test_cubes")
  assert 0 <= e2e["micro_auc"] <= 1 and 0 <= e2e["macro_auc"] <= 1
  assert e2e["config"] == "configs/test.py" and e2e["train_steps"] == 3
  assert e2e["predicted_train_s"] > 0  # predicted from the train step measured before it

  (pipe,) = by_item["input_pipeline"]
  _positive(pipe, "cubes_per_s_workers_0", "cubes_per_s_workers_1", "train_step_cubes_per_s",
            "pipeline_over_train_step")
  assert pipe["records_prepared_here"] is False  # the end-to-end item's records were reused

  (summary,) = by_item["summary"]
  assert summary["failed"] == [] and summary["skipped"] == []


def test_a_failing_item_leaves_an_error_line_and_the_next_runs(tmp_path):
  run = accelerator.Run(str(tmp_path / "r.jsonl"), budget_s=60, smoke=True)

  def broken():
    raise RuntimeError("out of memory allocating 9 bytes\nsecond line")

  accelerator.run_item(run, "train_step", {"batch": 256}, broken, None)
  accelerator.run_item(run, "score_step", {"batch": 256}, lambda: {"cubes_per_s": 1.0}, None)
  accelerator.run_item(run, "end_to_end", {}, lambda: {"never": "run"}, estimate_s=1e6)
  run.close()
  lines = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
  assert [line["item"] for line in lines] == ["train_step", "score_step", "end_to_end"]
  assert lines[0]["error"] == "RuntimeError: out of memory allocating 9 bytes"
  assert lines[1]["cubes_per_s"] == 1.0 and "error" not in lines[1]
  assert "never" not in lines[2] and "budget_s left" in lines[2]["skipped"]
  assert run.find("score_step", batch=256)["cubes_per_s"] == 1.0
  assert run.find("train_step") is None


def test_the_watchdog_stops_the_run_at_the_budget(tmp_path):
  out = tmp_path / "r.jsonl"
  proc = subprocess.run([sys.executable, "benchmarks/accelerator.py", "--smoke", f"--out={out}",
                         "--items=train_step", "--batches=8", "--dtypes=float32",
                         "--budget_s=0.5", f"--workdir={tmp_path / 'work'}"], cwd=ROOT,
                        env=_one_device_env(), capture_output=True, text=True, timeout=300,
                        check=False)
  assert proc.returncode == 3, proc.stderr[-2000:]
  (line,) = [json.loads(line) for line in out.read_text().splitlines()]
  assert line["item"] == "train_step" and "--budget_s=0.5 reached" in line["error"]


def test_bad_flags_name_the_flag(tmp_path):
  proc = subprocess.run([sys.executable, "benchmarks/accelerator.py", "--items=train_stp",
                         f"--out={tmp_path / 'r.jsonl'}"], cwd=ROOT, env=_one_device_env(),
                        capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode != 0 and "--items: unknown ['train_stp']" in proc.stderr
  assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.parametrize("kind,dtype,name,peak", [
    ("NVIDIA H100 80GB HBM3", "bfloat16", "NVIDIA H100 SXM", 989.4),
    ("NVIDIA H100 PCIe", "float32", "NVIDIA H100 PCIe", 378.0),
    ("NVIDIA H200", "bfloat16", "NVIDIA H200 SXM", 989.4),
    ("NVIDIA A100-SXM4-80GB", "float32", "NVIDIA A100", 156.0),
    ("TPU v5 lite", "float32", "TPU v5e", 197.0),
    ("TPU v5p", "bfloat16", "TPU v5p", 459.0),
    ("TPU v4", "bfloat16", "TPU v4", 275.0),
    ("cpu", "float32", None, None),
])
def test_device_peak_table(kind, dtype, name, peak):
  got = accelerator.device_peak(kind, dtype)
  assert got["peak_name"] == name and got["peak_tflop_s_per_device"] == peak
