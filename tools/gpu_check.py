#!/usr/bin/env python
"""GPU readiness of wkd in one command (needs only torch, torchvision and numpy: no POT, papermill or tqdm):

    python tools/gpu_check.py                  # on a CUDA GPU: full sizes, fp16 autocast + GradScaler
    python tools/gpu_check.py --cpu            # reduced sizes on the CPU (what tests/test_gpu_check.py runs)
    python tools/gpu_check.py --out check.json # also write the table as JSON

1. transport: WKD-L's batched Sinkhorn over one shared Gibbs kernel (`wkd.sinkhorn.sinkhorn`) against the released
   per-sample formulation (`sinkhorn_per_sample` over N (C-1)x(C-1) costs), forward + backward, with the largest
   difference of the values and of the gradients;
2. distiller step: forward + backward + SGD step of `wkd.distill.Distiller` for WKD-L and WKD-L+F against KD on the
   CIFAR-100 resnet32x4 -> resnet8x4 shapes (CUDA events, peak memory above the baseline);
3. kill and resume: a tiny CIFAR-shaped WKD-L+F run (random 32x32 images, 100 classes; fp16 + GradScaler on the GPU)
   killed right after its first epoch's commit, resumed, and compared with the same run straight through.
Prints one table and exits with 1 if a check fails.
"""
import argparse
import json
import math
import sys
import tempfile
import time
import types
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch

try:
    import tqdm.auto  # noqa: F401
except ImportError:  # a bare GPU python: progress bars become no-ops
    class _Bar:
        def __init__(self, iterable=None, *a, **k): self.iterable = iterable
        def __iter__(self): return iter(self.iterable)
        def update(self, *a): pass
        def set_postfix(self, *a, **k): pass
        def close(self): pass
    _auto = types.ModuleType("tqdm.auto"); _auto.tqdm = _Bar
    sys.modules.update({"tqdm": types.ModuleType("tqdm"), "tqdm.auto": _auto})

from wkd import checkpoint, config as wconfig, runs
from wkd.checkpoint import load_checkpoint
from wkd.config import get_config
from wkd.data import TensorImageDataset
from wkd.cost import COST_FLOOR
from wkd.distill import Distiller
from wkd.models import get_model
from wkd.sinkhorn import drop_class, gibbs_kernel, per_sample_cost, sinkhorn, sinkhorn_per_sample
from wkd.train import train

from benchmark import measure  # tools/benchmark.py: median time and peak memory above the baseline


def symmetric_dist(C, gen):
    "A class distance in the range of the official CIFAR matrices: symmetric, zero diagonal."
    D = torch.rand(C, C, generator=gen) * 0.4 + 0.5
    D = (D + D.T) / 2
    return D.fill_diagonal_(0)


def check_transport(sizes, device, repeats):
    gen, rows = torch.Generator().manual_seed(0), []
    for N, C in sizes:
        zs, zt = (torch.randn(N, C, generator=gen) * 3).to(device), (torch.randn(N, C, generator=gen) * 3).to(device)
        y = torch.randint(0, C, (N,), generator=gen).to(device)
        cost = (symmetric_dist(C, gen) + COST_FLOOR).to(device)  # the transport cost, κ = 0
        kern = gibbs_kernel(cost, 0.05)
        hist = lambda z: z.scatter(1, y[:, None], -math.inf).div(4.0).softmax(-1)  # the target class masked
        ours = lambda z: sinkhorn(hist(z), hist(zt), kern, check=False).value
        released = lambda z: sinkhorn_per_sample(drop_class(z, y).div(4.0).softmax(-1),
                                                 drop_class(zt, y).div(4.0).softmax(-1), per_sample_cost(cost, y))
        def step(fn):
            z = zs.clone().requires_grad_()
            v = fn(z); v.mean().backward()
            return v.detach(), z.grad
        t1, m1 = measure(lambda: step(ours), device, repeats)
        t2, m2 = measure(lambda: step(released), device, repeats)
        (v1, g1), (v2, g2) = step(ours), step(released)
        dv, dg = float((v1 - v2).abs().max()), float((g1 - g2).abs().max())
        rows.append(dict(check="transport fwd+bwd", case=f"N={N} C={C}", time_ms=1e3 * t1, peak_mb=m1 / 2**20,
                         vs=f"{t2 / t1:.1f}x faster, {m2 / max(m1, 1):.0f}x less memory than per-sample"
                         if device.type == "cuda" else f"{t2 / t1:.1f}x faster than per-sample",
                         note=f"max|dvalue| {dv:.1e} max|dgrad| {dg:.1e}", ok=dv < 1e-4 and dg < 1e-4))
    return rows


def check_distiller(device, repeats, small):
    gen, rows, base = torch.Generator().manual_seed(0), [], None
    amp = device.type == "cuda"
    arch = dict(student="resnet8", teacher="resnet8") if small else {}
    batch = 4 if small else 64
    for method in ("kd", "wkd_l", "wkd_lf"):
        cfg = get_config(method, setting="cifar100_r32x4_r8x4", **arch)
        student, teacher = (get_model(a, cfg.num_classes, cfg.model_zoo, image_size=cfg.image_size or None)
                            for a in (cfg.student, cfg.teacher))
        d = Distiller.from_config(cfg, student, teacher, symmetric_dist(cfg.num_classes, gen)).to(device).train()
        opt = torch.optim.SGD(d.learnable_parameters(), lr=0.01, momentum=0.9, nesterov=True)
        scaler = torch.amp.GradScaler(device.type, enabled=amp)
        x = torch.randn(batch, 3, 32, 32, generator=gen).to(device)
        y = torch.randint(0, cfg.num_classes, (batch,), generator=gen).to(device)
        def step():
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                _, losses = d(x, y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(sum(losses.values())).backward()
            scaler.step(opt); scaler.update()
            return losses
        t, m = measure(step, device, repeats)
        base = t if method == "kd" else base
        finite = all(bool(torch.isfinite(v).all()) for v in step().values())
        rows.append(dict(check=f"distiller step {method}", case=f"{cfg.teacher}->{cfg.student} N={batch}"
                         f"{' fp16' if amp else ' fp32'}", time_ms=1e3 * t, peak_mb=m / 2**20,
                         vs=f"{t / base:.2f}x KD", note="losses finite" if finite else "NON-FINITE loss", ok=finite))
    return rows


class Killed(BaseException):
    "The process dies here."


def check_resume(device, small):
    gen = torch.Generator().manual_seed(0)
    n = 2 if small else 8  # images per class
    imgs = torch.randint(0, 256, (100 * n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    labels = torch.arange(100).repeat(n)
    mk = lambda train: TensorImageDataset(imgs, labels, [0.5] * 3, [0.25] * 3, train=train)
    cfg = get_config("wkd_lf", setting="cifar100_r32x4_r8x4", student="resnet8", teacher="resnet8", epochs=2,
                     batch_size=16 if small else 64, test_batch_size=64, lr_milestones=[1], decay_start=1,
                     num_workers=0)
    amp = "fp16" if device.type == "cuda" else False
    torch.manual_seed(0)
    kw = dict(teacher=get_model("resnet8", 100).eval(), dist=symmetric_dist(100, gen), data=(mk(True), mk(False)),
              device=device, amp=amp, deterministic=True, progress=False, verbose=False)
    real = checkpoint.atomic_write
    def write(path, data):  # killed right after epoch 1's commit point is on disk
        out = real(path, data)
        if Path(path).name == "latest.pt" and load_checkpoint(path)["epoch"] == 1: raise Killed(path)
        return out
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        train(cfg, Path(tmp) / "straight", **kw)
        secs = time.perf_counter() - t0
        with mock.patch.object(checkpoint, "atomic_write", write), mock.patch.object(runs, "atomic_write", write), \
                mock.patch.object(wconfig, "atomic_write", write):
            try: train(cfg, Path(tmp) / "killed", **kw); killed = False
            except Killed: killed = True
        res = train(cfg, Path(tmp) / "killed", resume=True, **kw)
        a, b = (load_checkpoint(Path(tmp) / d / "latest.pt") for d in ("straight", "killed"))
        diff = max(float((a["student"][k].double() - b["student"][k].double()).abs().max()) for k in a["student"])
        scaler = a["scaler"].get("scale") if amp else None
    ok = killed and res["finished"] and diff == 0.0
    return [dict(check="kill + resume run", case=f"WKD-L+F 100 classes {len(labels)} images 2 epochs "
                 f"{'fp16+GradScaler' if amp else 'fp32'}", time_ms=1e3 * secs, peak_mb=float("nan"),
                 vs="bitwise = straight run" if diff == 0 else f"max|dweight| {diff:.1e}",
                 note=f"killed after epoch 1: {killed}; finished: {res['finished']}"
                 + (f"; scaler scale {float(scaler):g}" if scaler is not None else ""), ok=ok)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu", action="store_true", help="reduced sizes on the CPU")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--out", type=Path, default=None, help="write the table as JSON here")
    a = p.parse_args(argv)
    if not a.cpu and not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --cpu for the reduced CPU check")
    device = torch.device("cpu" if a.cpu else "cuda")
    repeats = a.repeats or (2 if a.cpu else 20)
    torch.manual_seed(0)
    name = "CPU" if a.cpu else torch.cuda.get_device_name(0)
    sizes = [(16, 100)] if a.cpu else [(64, 100), (256, 100), (256, 1000)]
    rows = check_transport(sizes, device, repeats) + check_distiller(device, repeats, a.cpu) + check_resume(device, a.cpu)
    print(f"wkd GPU check on {name}, torch {torch.__version__}")
    head = f"{'check':<24} | {'case':<44} | {'time':>10} | {'peak':>9} | {'comparison':<44} | note"
    print(head + "\n" + "-" * len(head))
    for r in rows:
        peak = "n/a" if r["peak_mb"] != r["peak_mb"] else f"{r['peak_mb']:.1f} MB"
        print(f"{r['check']:<24} | {r['case']:<44} | {r['time_ms']:7.1f} ms | {peak:>9} | {r['vs']:<44} | "
              f"{r['note']}{'' if r['ok'] else '  FAILED'}")
    ok = all(r["ok"] for r in rows)
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    if a.out is not None:
        a.out.write_text(json.dumps({"device": name, "torch": torch.__version__, "ok": ok, "rows": rows}, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
