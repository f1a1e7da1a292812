"""Training runs that go wrong: a loss that diverges, a disk that fills up, a run killed with SIGKILL (its loader
processes, its staging folders, a metrics line cut short), a batch too large for the machine's memory."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from edgedino.errors import ConfigError, EdgeDinoError

ROOT = Path(__file__).resolve().parents[1]
DATA = str(ROOT / "edgedino" / "assets")
ENV = dict(os.environ, OMP_NUM_THREADS="1")
TINY = ["--preset", "tiny-cpu", "--data", DATA, "run.batch=8", "data.workers=0"]


def edgedino(*args: str, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgedino", *args], capture_output=True, text=True, env=ENV,
                          timeout=300, preexec_fn=preexec)


def finite(path: Path) -> bool:
    state = torch.load(path, weights_only=True)
    return all(bool(torch.isfinite(t).all()) for m in state["modules"] for t in state[m].values()
               if t.is_floating_point())


def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(tmp_path):
    """optim.lr=1e30 (valid, absurd) blows the weights up at step 0; step 1's loss is NaN. The run must stop
    there (exit 1, one line), keep the checkpoint of step 1 (finite) and export no backbone."""
    out = tmp_path / "run"
    r = edgedino("pretrain", *TINY, "--out", str(out), "--max-steps", "6", "run.checkpoint_every=1",
                 "optim.lr=1e30", "optim.warmup=0")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "edgedino pretrain: error: step 1: training diverged (loss nan" in r.stderr, r.stderr
    assert f"{out / 'checkpoint.pth'} (step 1) is kept" in r.stderr
    assert torch.load(out / "checkpoint.pth", weights_only=True)["step"] == 1 and finite(out / "checkpoint.pth")
    assert not (out / "backbone.pth").exists()
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [0]


def _fill_disk(limit: int):
    """For the child: files may grow to `limit` bytes, then writes fail (EFBIG) instead of killing it (SIGXFSZ)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_is_one_line_and_leaves_no_half_file(tmp_path):
    """Writes past 1 MB fail, as on a full disk: the first checkpoint (about 21 MB) cannot be written."""
    out = tmp_path / "run"
    r = edgedino("pretrain", *TINY, "--out", str(out), "--max-steps", "2", preexec=_fill_disk(1_000_000))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and f"cannot write {out / 'checkpoint.pth'}" in errors[0], r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["metrics.jsonl"]  # no checkpoint, no staging folder


def test_checkpoint_needs_the_space_it_takes():
    from edgedino.train.run_state import _nbytes

    state = {"a": torch.zeros(10), "b": [torch.zeros(2, 3, dtype=torch.float16)], "c": {"d": torch.zeros(4)}}
    assert _nbytes(state) == 40 + 12 + 16


def _session(sid: int) -> list[int]:
    """Pids of the live processes of session `sid` (zombies excluded)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(stat.parent.name))
    return pids


def _kill_atomic_write(target: Path) -> None:
    """What SIGKILL during a checkpoint write leaves: atomic_path's staging folder with a partial file."""
    code = ("import os, signal, sys\nfrom edgedino.atomic import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n    tmp.write_bytes(b'partial')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    subprocess.run([sys.executable, "-c", code, str(target)], env=ENV, timeout=60)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_killed_run_leaves_no_process_and_resumes_past_its_debris(tmp_path):
    """SIGKILL a run whose loader has 2 worker processes: within seconds nothing of it runs. Its folder, with a
    staging folder of a killed checkpoint write and a metrics line cut short, resumes: the debris of ours is
    removed (a hidden folder of the user's stays), the cut line dropped with a note."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "edgedino", "pretrain", "--preset", "tiny-cpu", "--data", DATA, "--out", str(out),
           "--max-steps", "400", "run.batch=4", "data.workers=2", "run.checkpoint_every=1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            lines = (out / "metrics.jsonl").read_text().splitlines() if (out / "metrics.jsonl").exists() else []
            if len(lines) >= 2 and len(_session(proc.pid)) >= 4:  # trainer, forkserver, 2 workers (+ tracker)
                break
            time.sleep(0.1)
        assert len(_session(proc.pid)) >= 4, "the loader's worker processes never started"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    deadline = time.time() + 10
    while _session(proc.pid) and time.time() < deadline:
        time.sleep(0.2)
    assert _session(proc.pid) == [], "loader processes outlived the killed run"

    _kill_atomic_write(out / "checkpoint.pth")
    staging = [p for p in out.iterdir() if p.name.startswith(".checkpoint.pth.")]
    assert len(staging) >= 1
    (out / ".checkpoint.pth.mine").mkdir()  # not a name atomic_path makes: the user's
    (out / ".checkpoint.pth.mine" / "notes.txt").write_text("keep")
    with (out / "metrics.jsonl").open("a") as f:
        f.write('{"step": 99, "loss": 1.2')
    done = torch.load(out / "checkpoint.pth", weights_only=True)["step"]
    r = edgedino("pretrain", "--preset", "tiny-cpu", "--data", DATA, "--out", str(out), "--max-steps", str(done + 1),
                 "run.batch=4", "data.workers=2", "run.checkpoint_every=1", "--resume")
    assert r.returncode == 0, r.stderr
    assert "dropped its last line" in r.stderr and f"removed {staging[0].name}" in r.stderr
    assert not [p for p in out.iterdir() if p.name.startswith(".checkpoint.pth.") and p.name != ".checkpoint.pth.mine"]
    assert (out / ".checkpoint.pth.mine" / "notes.txt").read_text() == "keep"
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(done + 1))


def test_metrics_log_keeps_whole_records_only(tmp_path, capsys):
    from edgedino.train.metrics import MetricsLog

    (tmp_path / "metrics.jsonl").write_text('{"step": 0}\n{"step": 1}\n{"step": 2, "lo')
    MetricsLog(tmp_path, 2).close()
    assert (tmp_path / "metrics.jsonl").read_text() == '{"step": 0}\n{"step": 1}\n'
    assert "dropped its last line" in capsys.readouterr().err
    (tmp_path / "metrics.jsonl").write_text('{"step": 0}\nnot json\n{"step": 2}\n')
    with pytest.raises(EdgeDinoError, match="metrics.jsonl line 2 is not a step's record"):
        MetricsLog(tmp_path, 3)


def test_out_is_locked_while_a_run_writes_it(tmp_path):
    from edgedino.train.rundir import run_folder

    with run_folder(tmp_path / "run", ["checkpoint.pth"]):
        with pytest.raises(ConfigError, match="another run is writing"):
            with run_folder(tmp_path / "run", ["checkpoint.pth"]):
                pass
    with run_folder(tmp_path / "run", ["checkpoint.pth"]):  # released at the end of the first
        pass


# ---------------------------------------------------------------- memory


@pytest.fixture(scope="module")
def tiny_step():
    from edgedino.train import distributed, schedules
    from edgedino.train.config import load_config, preset_path
    from edgedino.train.pretrain_step import SSLStep
    from edgedino.train.run import make_transform

    cfg = load_config(preset_path("tiny-cpu"), ["run.batch=8"])
    return SSLStep(cfg, distributed.Dist()), make_transform(cfg), schedules.at(cfg, 0)


def test_peak_bytes_counts_allocations_not_views():
    """A weight's transpose, a view or an in-place result allocates nothing; a new tensor counts until it is freed."""
    from edgedino.train.memory import PeakBytes

    w = torch.zeros(256, 256)
    with PeakBytes() as counter:
        w.t(), w[:10].view(-1), w.add_(1.0)
        assert counter.peak == 0
        a = w + 1.0
        b = a * 2.0
        assert counter.live == counter.peak == 2 * w.nbytes
        del a, b
        assert counter.live == 0
        c = torch.ones(64, 64)
    assert counter.peak == 2 * w.nbytes and c.nbytes == counter.live


def test_step_memory_is_measured_per_image(tiny_step):
    """The peak of a step grows with the images; the estimate reproduces the peaks it was measured from, adds
    AdamW's two moments (8 bytes a trainable parameter) and the batch itself, and the allocator's overhead."""
    from edgedino.train.memory import OVERHEAD, estimate, step_peak, synthetic_batch

    step, transform, sched = tiny_step
    peaks = {n: step_peak(step, synthetic_batch(transform, n), sched, "auto", "cpu") for n in (2, 4, 8)}
    assert peaks[2] < peaks[4] < peaks[8]
    assert (peaks[8] - peaks[4]) == pytest.approx(2 * (peaks[4] - peaks[2]), rel=0.05)  # linear in the batch
    est = estimate(step, transform, sched, "auto", "cpu", workers=0)
    sample = sum(t.nbytes for t in synthetic_batch(transform, 1).values())
    moments = 8 * sum(p.numel() for g in step.param_groups() for p in g["params"])
    assert est.at(8) == pytest.approx(OVERHEAD * (peaks[8] + moments + 8 * sample), rel=0.05)
    assert all(p.grad is None for p in step.student.parameters())  # the probe leaves no gradient behind


def test_a_batch_that_does_not_fit_names_one_that_does():
    from edgedino.train.memory import Estimate, check_fits

    est = Estimate(fixed=1_000_000_000, per_image=10_000_000)
    check_fits(est, 512, 1, 10e9, "this process has")  # 6.1 GB of 9 GB usable
    with pytest.raises(ConfigError, match=r"run\.batch=1024 needs about 11\.2 GB .* run\.batch=512 fits"):
        check_fits(est, 1024, 1, 10e9, "this process has")
    with pytest.raises(ConfigError, match=r"run\.batch=2048 .* run\.batch=1024 fits"):
        check_fits(est, 2048, 2, 10e9, "this process has")  # 2 processes: each holds half the batch
    with pytest.raises(ConfigError, match="before any image"):
        check_fits(est, 8, 1, 1e9, "run.memory_gb allows")


def test_pretrain_refuses_a_batch_too_big_for_its_memory(tmp_path):
    out = tmp_path / "run"
    r = edgedino("pretrain", "--preset", "tiny-cpu", "--data", DATA, "--out", str(out), "--max-steps", "1",
                 "run.batch=4096", "run.memory_gb=1")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    line = next(x for x in r.stderr.splitlines() if "error:" in x)
    suggested = int(line.split("run.batch=")[-1].split()[0])
    assert "run.batch=4096 needs about" in line and 1 <= suggested < 4096, line
    assert not out.exists()


# ---------------------------------------------------------------- tests that let real bugs through


def test_ema_update_by_hand():
    """teacher 0, student 1, momentum 0.9: the teacher moves a tenth of the way, to 0.1 (m and 1 - m swapped
    would give 0.9)."""
    from torch import nn

    from edgedino.train.ema import ema_update

    teacher, student = nn.Linear(2, 2), nn.Linear(2, 2)
    nn.init.zeros_(teacher.weight), nn.init.zeros_(teacher.bias)
    nn.init.ones_(student.weight), nn.init.ones_(student.bias)
    ema_update(teacher, student, 0.9)
    assert torch.allclose(teacher.weight, torch.full((2, 2), 0.1))
    assert torch.allclose(teacher.bias, torch.full((2,), 0.1))
    ema_update(teacher, student, 0.9)
    assert torch.allclose(teacher.weight, torch.full((2, 2), 0.19))
    assert torch.equal(student.weight, torch.ones(2, 2))


def test_presets_center_with_three_sinkhorn_iterations_and_targets_come_out_balanced(image_batch, monkeypatch):
    """DINOv3 centres teacher scores with 3 Sinkhorn-Knopp iterations. The targets a real training step uses must
    be balanced: every row a distribution, and the prototypes' total mass far more even than the plain softmax's
    (sinkhorn_iterations 0 would leave it as uneven as the softmax)."""
    from edgedino.train import distill_config, distributed, pretrain_step, schedules
    from edgedino.train.config import load_config, preset_path

    for name in ("pretrain", "gram_anchor", "high_res_adapt", "vits16", "convnext_tiny", "tiny-cpu"):
        assert load_config(preset_path(name)).loss.sinkhorn_iterations == 3, name
    for name in ("distill", "tiny-cpu", "teacher2x"):
        assert distill_config.load_config(distill_config.preset_path(name)).loss.sinkhorn_iterations == 3, name

    cfg = load_config(preset_path("tiny-cpu"))
    step = pretrain_step.SSLStep(cfg, distributed.Dist())
    calls = []
    real = pretrain_step.sinkhorn_knopp
    monkeypatch.setattr(pretrain_step, "sinkhorn_knopp", lambda logits, *a: calls.append((logits, real(logits, *a))) or
                        calls[-1][1])
    batch = torch.from_numpy(image_batch((64, 64)))
    step.loss({"global": torch.stack([batch, batch.flip(-1)], 1), "local": torch.zeros(8, 0, 3, 32, 32)}, 0,
              schedules.at(cfg, 0))
    logits, targets = calls[0]  # the DINO targets (the iBOT ones follow)
    assert torch.allclose(targets.sum(1), torch.ones(len(targets)), atol=1e-5)
    softmax = (logits / cfg.loss.teacher_temp_start).softmax(-1)
    spread = [float(x.sum(0).std() / x.sum(0).mean()) for x in (targets, softmax)]
    assert spread[0] < 0.5 * spread[1], spread
    assert np.isfinite(spread).all()
