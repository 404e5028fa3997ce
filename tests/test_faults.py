"""Fault injection on `wkd.train.train`: a kill after every file write, two processes, divergence, bad input.

Each run is tiny (60 training images, resnet8, 3 epochs of 3 steps), so the whole file takes well under a minute.
"""
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch

from wkd import checkpoint, config as wconfig, runs
from wkd.checkpoint import RunLock, RunLockedError, UnsafeCheckpointError, load_checkpoint
from wkd.config import get_config
from wkd.data import get_datasets, subsample
from wkd.models import get_model
from wkd.runs import NonFiniteLossError
from wkd.train import train

ROOT = Path(__file__).resolve().parents[1]
TIMES = ("epoch_s", "data_s", "eval_s", "train_img_s", "train_s", "out_dir")
TINY = dict(student="resnet8", teacher="resnet8", epochs=3, batch_size=16, test_batch_size=16, lr_milestones=[2],
            decay_start=1)


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    train_ds, test_ds, _ = get_datasets("fashion_mnist")
    torch.manual_seed(0)
    teacher = get_model("resnet8", 10).eval()
    dist = 1 - torch.eye(10)  # a class distance (1 − CKA)
    dist[0, 1] = dist[1, 0] = 0.3
    kw = dict(teacher=teacher, dist=dist, data=(subsample(train_ds, 6), subsample(test_ds, 4)), progress=False,
              verbose=False)
    return get_config("wkd_lf", **TINY), kw, (train_ds, test_ds)


class Killed(BaseException):
    "The process dies here (not an Exception: nothing in the package may catch it)."


def killed_after(k: int):
    "A patch context in which the k-th completed file write of the package is followed by a kill."
    real, count = checkpoint.atomic_write, [0]
    def write(path, data):
        out = real(path, data)
        count[0] += 1
        if count[0] == k: raise Killed(str(path))
        return out
    patches = [mock.patch.object(m, "atomic_write", write) for m in (checkpoint, runs, wconfig)]
    class Ctx:
        def __enter__(self): [p.start() for p in patches]; return count
        def __exit__(self, *e): [p.stop() for p in patches]
    return Ctx()


def folder_state(out: Path) -> dict:
    "What a finished run leaves, without the timings: metrics rows, results, every tensor of the checkpoints."
    rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    strip = lambda d: {k: v for k, v in d.items() if k not in TIMES}
    res = strip(json.loads((out / "results.json").read_text()))
    tensors = {}
    for name in ("latest.pt", "best.pt", "model.pt"):
        ck = load_checkpoint(out / name)
        sd = ck["model"] if name == "model.pt" else {**ck["student"], **{f"p.{k}": v for k, v in ck["projector"].items()}}
        tensors[name] = (ck.get("epoch"), {k: v.clone() for k, v in sd.items()})
    return {"rows": [strip(r) for r in rows], "results": res, "tensors": tensors,
            "config": json.loads((out / "config.json").read_text()),
            "files": sorted(p.name for p in out.iterdir() if p.name != ".lock")}


def assert_same(a: dict, b: dict):
    assert a["rows"] == b["rows"] and a["results"] == b["results"] and a["config"] == b["config"]
    assert a["files"] == b["files"], (a["files"], b["files"])
    for name, (epoch, sd) in a["tensors"].items():
        e2, sd2 = b["tensors"][name]
        assert epoch == e2, name
        assert sd.keys() == sd2.keys() and all(torch.equal(sd[k], sd2[k]) for k in sd), name


def test_kill_after_every_write(setup, tmp_path):
    cfg, kw, _ = setup
    train(cfg, tmp_path / "straight", **kw)
    want = folder_state(tmp_path / "straight")
    assert [r["epoch"] for r in want["rows"]] == [1, 2, 3] and want["results"]["finished"]
    k = 0
    while True:
        k += 1
        out = tmp_path / f"kill{k}"
        with killed_after(k) as n:
            try:
                train(cfg, out, **kw)
                assert n[0] < k  # the run made fewer than k writes: every write has been tried
                break
            except Killed:
                pass
        with killed_after(1):  # the resume itself dies after its first write too
            try: train(cfg, out, resume=True, **kw)
            except Killed: pass
        res = train(cfg, out, resume=True, **kw)
        assert res["finished"], k
        assert_same(folder_state(out), want)
        assert not list(out.glob(".*.tmp")), k
    assert k > 10, k  # config, then latest/config/best/model/metrics per epoch, and results


def test_kill_mid_write_leaves_temp_file_cleaned(setup, tmp_path):
    cfg, kw, _ = setup
    out = tmp_path / "run"
    train(cfg, out, stop_after=1, **kw)
    (out / ".latest.pt.4242.tmp").write_bytes(b"half a checkpoint")  # what a SIGKILL inside atomic_write leaves
    (out / ".metrics.jsonl.77.tmp").write_bytes(b"{")
    assert train(cfg, out, resume=True, **kw)["finished"]
    assert not list(out.glob(".*.tmp"))


def test_second_process_is_refused_and_stale_lock_is_not(setup, tmp_path):
    cfg, kw, _ = setup
    out = tmp_path / "run"
    train(cfg, out, stop_after=1, **kw)
    child = ("import sys; from wkd.config import get_config; from wkd.train import train\n"
             f"train(get_config('wkd_lf', **{TINY!r}), sys.argv[1], resume=True, progress=False, verbose=False)")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    with RunLock(out):  # this process trains there
        r = subprocess.run([sys.executable, "-c", child, str(out)], capture_output=True, text=True, timeout=300,
                           env=env, cwd=tmp_path)
    assert r.returncode != 0 and "RunLockedError" in r.stderr and f"in use by process {os.getpid()}" in r.stderr, r.stderr[-2000:]
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from wkd.checkpoint import RunLock\n"
                               "RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(300)", str(out)],
                              stdout=subprocess.PIPE, text=True, env=env)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(RunLockedError, match=f"in use by process {holder.pid}"):
        train(cfg, out, resume=True, **kw)
    holder.kill(); holder.wait()  # SIGKILL: no clean-up ran, the lock file still names the dead process
    assert (out / ".lock").read_text().strip() == str(holder.pid)
    assert train(cfg, out, resume=True, **kw)["finished"]


def test_divergence_saves_nothing_and_resumes_with_lower_lr(setup, tmp_path):
    cfg, kw, (train_ds, test_ds) = setup
    kw = {**kw, "data": (subsample(train_ds, 12), subsample(test_ds, 4))}  # 30 steps of 4: lr=50 overflows
    cfg = dataclasses.replace(cfg, batch_size=4)
    with pytest.raises(NonFiniteLossError) as e:
        train(dataclasses.replace(cfg, lr=50.0), tmp_path / "first", **kw)
    assert "Nothing was saved" in str(e.value) and "latest.pt" not in str(e.value)
    assert not [p for p in ("latest.pt", "best.pt", "model.pt") if (tmp_path / "first" / p).exists()]

    out = tmp_path / "run"
    train(cfg, out, stop_after=1, **kw)
    good = load_checkpoint(out / "latest.pt")
    with pytest.raises(ValueError, match="change_lr=True"):
        train(dataclasses.replace(cfg, lr=50.0), out, resume=True, **kw)
    with pytest.raises(NonFiniteLossError) as e:
        train(dataclasses.replace(cfg, lr=50.0), out, resume=True, change_lr=True, **kw)
    assert f"{out / 'latest.pt'} still holds epoch 1" in str(e.value) and "change_lr=True" in str(e.value)
    for name in ("latest.pt", "best.pt"):
        ck = load_checkpoint(out / name)
        assert ck["epoch"] == 1 and all(torch.isfinite(v).all() for v in ck["student"].values() if v.is_floating_point())
        assert all(torch.equal(ck["student"][k], good["student"][k]) for k in good["student"])
    assert json.loads((out / "config.json").read_text())["lr"] == cfg.lr  # still the config latest.pt holds
    res = train(dataclasses.replace(cfg, lr=0.01), out, resume=True, change_lr=True, **kw)
    assert res["finished"] and [r["lr"] for r in res["history"]] == pytest.approx([cfg.lr, 0.01, 0.001])
    assert json.loads((out / "config.json").read_text())["lr"] == 0.01
    assert train(dataclasses.replace(cfg, lr=0.01), out, resume=True, **kw)["finished"]  # now the saved config


def test_unsafe_checkpoint_is_reported_as_unsafe(setup, tmp_path):
    cfg, kw, _ = setup
    out = tmp_path / "run"
    train(cfg, out, stop_after=1, **kw)
    ck = load_checkpoint(out / "latest.pt")
    ck["hook"] = print  # a callable: unpickling it means importing and referencing code
    torch.save(ck, out / "latest.pt")
    with pytest.raises(UnsafeCheckpointError) as e:
        train(cfg, out, resume=True, **kw)
    assert "UNSAFE" in str(e.value) and "print" in str(e.value) and "truncated" not in str(e.value)


def test_resume_checks_the_data(setup, tmp_path):
    cfg, kw, (train_ds, test_ds) = setup
    out = tmp_path / "run"
    train(cfg, out, stop_after=1, **kw)
    other = {**kw, "data": (subsample(train_ds, 6, seed=1), kw["data"][1])}
    with pytest.raises(ValueError, match="trained on other train data"):
        train(cfg, out, resume=True, **other)
    fewer = {**kw, "data": (kw["data"][0], subsample(test_ds, 3))}
    with pytest.raises(ValueError, match="other test data .*size 40.*now size 30"):
        train(cfg, out, resume=True, **fewer)
    assert train(cfg, out, resume=True, **kw)["finished"]


def test_full_disk_is_reported_early_with_the_path(setup, tmp_path):
    cfg, kw, _ = setup
    out = tmp_path / "run"
    fake = lambda p: type("U", (), {"free": 1000, "total": 10**9, "used": 10**9})()  # a disk with 1000 bytes free
    with mock.patch.object(runs.shutil, "disk_usage", fake):
        with pytest.raises(OSError, match=f"not enough free space in {out}"):
            train(cfg, out, **kw)
    assert not (out / "latest.pt").exists() and not (out / "metrics.jsonl").exists()  # before any epoch
    def full(f): raise OSError(28, "No space left on device")
    with pytest.raises(OSError, match=f"writing {out / 'x.bin'}"):
        checkpoint.atomic_write(out / "x.bin", full)


def test_small_cases(setup, tmp_path):
    cfg, kw, _ = setup
    with pytest.raises(ValueError, match="temperature"):
        get_config("wkd_l", temperature=0)
    with pytest.raises(ValueError, match="lr=inf: must be finite"):
        get_config("wkd_l", lr=float("inf"))
    with pytest.raises(ValueError, match="epochs must be"):
        wconfig.scale_epochs(cfg, 0)
    for bad in (dict(stop_after=True), dict(log_every=True), dict(stop_after=0)):
        with pytest.raises(ValueError, match=list(bad)[0]):
            train(cfg, tmp_path / "x", **bad, **kw)
    assert not (tmp_path / "x").exists()
