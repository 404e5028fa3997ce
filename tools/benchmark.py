#!/usr/bin/env python
"""Benchmarks of wkd against the released per-sample formulation, in one process, with ratios.

    python tools/benchmark.py transport            # WKD-L transport: shared kernel vs per-sample, fwd+bwd
    python tools/benchmark.py transport --sizes 64x100 256x1000
    python tools/benchmark.py distill              # Distiller step: WKD-L (and WKD-L+F) vs KD, CIFAR and ImageNet shapes
    python tools/benchmark.py distill --settings cifar100_r32x4_r8x4 --batch 64
    python tools/benchmark.py distill --settings fmnist --channels-last   # NCHW vs NHWC (the CPU default of wkd.train)
    python tools/benchmark.py features             # torchvision:resnet18 (torch.fx features) vs the zoo's ResNet18
    python tools/benchmark.py features --image-size 112 --batch 16 --timm

Times are medians over repeats (CUDA events on GPU, perf_counter on CPU); memory is the peak above what was allocated
before the step (CUDA: max_memory_allocated; CPU: peak resident set size, read from /proc after resetting it).
Needs only torch and torchvision (it runs where POT, papermill and timm are absent; `features --timm` needs timm).
"""
import argparse
import gc
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch

from wkd.cost import COST_FLOOR
from wkd.sinkhorn import drop_class, gibbs_kernel, per_sample_cost, sinkhorn, sinkhorn_per_sample


# ---------------------------------------------------------------------------------------------- measurement helpers
def _rss_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def measure(fn, device, repeats):
    "Median seconds of `fn()` over `repeats` runs after one warm-up, and peak bytes above the baseline."
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record(); fn(); end.record(); torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(); torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(); torch.cuda.reset_peak_memory_stats()
        fn(); torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset the peak RSS (VmHWM)
            base = _rss_kb("VmRSS"); fn(); peak = (_rss_kb("VmHWM") - base) * 1024
        except OSError:
            peak = float("nan")
    return statistics.median(times), peak


def fmt_bytes(b):
    if b != b: return "n/a"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(b) < 1024 or unit == "GB": return f"{b:.1f} {unit}" if unit != "B" else f"{b:.0f} B"
        b /= 1024


def random_cost(C, gen, device):
    "A symmetric cost in the range of the official CIFAR matrices after sharpening, zero diagonal, ReLU + 1e-8."
    D = torch.rand(C, C, generator=gen) * 0.2 + 0.4
    D = (D + D.T) / 2
    D.fill_diagonal_(0)
    return (D.clamp_min(0) + COST_FLOOR).to(device)


# ------------------------------------------------------------------------------------------------------- transport
def bench_transport(args, device):
    print(f"WKD-L transport, forward+backward, fp32, reg=0.05, 10 iterations, target masked; device: {device_name(device)}")
    print(f"{'N x C':>11} | {'shared kernel':>22} | {'per-sample (released)':>24} | {'speed-up':>8} | {'memory':>8} "
          f"| {'max |Δvalue|':>12} | {'max |Δgrad|':>11}")
    gen = torch.Generator().manual_seed(0)
    avail = _available_bytes(device)
    for size in args.sizes:
        N, C = (int(x) for x in size.lower().split("x"))
        zs = (torch.randn(N, C, generator=gen) * 3).to(device)
        zt = (torch.randn(N, C, generator=gen) * 3).to(device)
        target = torch.randint(0, C, (N,), generator=gen).to(device)
        cost = random_cost(C, gen, device)
        kern = gibbs_kernel(cost, 0.05)  # built once, as the distiller does
        tau = 4.0

        def ours(z):
            a = z.scatter(1, target[:, None], -math.inf).div(tau).softmax(-1)
            b = zt.scatter(1, target[:, None], -math.inf).div(tau).softmax(-1)
            return sinkhorn(a, b, kern, check=False).value

        def released(z):
            a = drop_class(z, target).div(tau).softmax(-1)
            b = drop_class(zt, target).div(tau).softmax(-1)
            M = per_sample_cost(cost, target).clamp_min(0) + 1e-8  # rebuilt every step, as released
            return sinkhorn_per_sample(a, b, M)

        def step(fn):
            z = zs.clone().requires_grad_()
            fn(z).mean().backward()
            return z

        t_ours, m_ours = measure(lambda: step(ours), device, args.repeats)
        need = 9 * N * C * C * 4  # ~ the released step's transient N×C×C tensors (cost, mask, K, plan, ...)
        if need > 0.6 * avail:
            print(f"{size:>11} | {t_ours*1e3:9.2f} ms {fmt_bytes(m_ours):>9} | {'skipped (needs ~' + fmt_bytes(need) + ')':>24} |")
            continue
        reps = max(1, args.repeats if N * C * C < 5e7 else args.repeats // 3)
        t_ref, m_ref = measure(lambda: step(released), device, reps)
        z1, z2 = zs.clone().requires_grad_(), zs.clone().requires_grad_()
        v1, v2 = ours(z1), released(z2)
        v1.mean().backward(); v2.mean().backward()
        dv, dg = float((v1 - v2).detach().abs().max()), float((z1.grad - z2.grad).abs().max())
        print(f"{size:>11} | {t_ours*1e3:9.2f} ms {fmt_bytes(m_ours):>9} | {t_ref*1e3:10.2f} ms {fmt_bytes(m_ref):>10} "
              f"| {t_ref/t_ours:7.1f}x | {_ratio(m_ref, m_ours):>8} | {dv:12.2e} | {dg:11.2e}")
        del kern, cost
        gc.collect()


# --------------------------------------------------------------------------------------------------------- distill
def bench_distill(args, device):
    from wkd.config import get_config
    from wkd.distill import Distiller
    from wkd.models import get_model

    amp = device.type == "cuda"
    layouts = (False, True) if args.channels_last else (False,)  # NCHW, and NHWC (channels_last) when asked
    print(f"Distiller step (forward + backward + SGD step{', AMP fp16' if amp else ', fp32'}); device: {device_name(device)}")
    print(f"{'setting':>22} {'N':>4} | {'method':>7} | {'layout':>6} | {'step':>10} | {'peak memory':>11} | "
          f"{'vs KD':>6} | {'vs NCHW':>7}")
    gen = torch.Generator().manual_seed(0)
    for setting in args.settings:
        batch = args.batch or (64 if not setting.startswith("imagenet") else 256)
        kd_time, nchw_time = {}, {}
        for method in ("kd", "wkd_l", "wkd_lf"):
            cfg = get_config(method, setting=setting)
            C = cfg.num_classes
            D = torch.rand(C, C, generator=gen) * 0.4 + 0.5
            D = (D + D.T) / 2
            D.fill_diagonal_(0)
            for cl in layouts:
                torch.manual_seed(1)  # the same weights and inputs in both layouts
                init = torch.Generator().manual_seed(1)
                student = get_model(cfg.student, cfg.num_classes, cfg.model_zoo)
                teacher = get_model(cfg.teacher, cfg.num_classes, cfg.model_zoo)
                d = Distiller.from_config(cfg, student, teacher, dist=D).to(device).train()
                if cl:
                    d = d.to(memory_format=torch.channels_last)
                opt = torch.optim.SGD(d.learnable_parameters(), lr=0.01, momentum=0.9, nesterov=True)
                scaler = torch.amp.GradScaler(enabled=amp)
                size = student.image_size
                x = torch.randn(batch, 3, size, size, generator=init).to(device)
                x = x.contiguous(memory_format=torch.channels_last) if cl else x
                y = torch.randint(0, C, (batch,), generator=init).to(device)

                def step():
                    with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                        _, losses = d(x, y)
                    opt.zero_grad(set_to_none=True)
                    scaler.scale(sum(losses.values())).backward()
                    scaler.step(opt)
                    scaler.update()

                t, m = measure(step, device, args.repeats)
                kd_time.setdefault(cl, t)
                nchw_time.setdefault(method, t)
                layout = "NHWC" if cl else "NCHW"
                print(f"{setting:>22} {batch:>4} | {method:>7} | {layout:>6} | {t*1e3:7.1f} ms | {fmt_bytes(m):>11} | "
                      f"{t/kd_time[cl]:5.2f}x | {t/nchw_time[method]:6.2f}x")
                del d, opt, student, teacher
                gc.collect()


# -------------------------------------------------------------------------------------------------------- features
def _interleaved(fns, device, repeats):
    "Median seconds of each `fns[k]()`, timed in turns (k = 0, 1, ..., 0, 1, ...) so drifts hit all alike."
    for fn in fns: fn(); fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            if device.type == "cuda":
                torch.cuda.synchronize()
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record(); fn(); end.record(); torch.cuda.synchronize()
                times[k].append(start.elapsed_time(end) / 1e3)
            else:
                t0 = time.perf_counter(); fn(); times[k].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def bench_features(args, device):
    "One training step of the same ResNet-18 with its feature map taken by the zoo's own forward or the generic path."
    import torch.nn.functional as F
    from wkd.models import get_model, load_weights

    size, batch = args.image_size, args.batch or (256 if device.type == "cuda" else 16)
    amp = device.type == "cuda"
    print(f"feature extraction: forward(return_features=True) + CE + mean(feats[-1]^2) + backward + SGD step, "
          f"{batch}x3x{size}x{size}{', AMP fp16' if amp else ', fp32'}; device: {device_name(device)}")
    zoo = get_model("ResNet18", 100, dataset="imagenet").to(device)
    models = {"zoo ResNet18 (built-in feats)": zoo}
    tv = load_weights(get_model("torchvision:resnet18", 100, dataset="imagenet", image_size=size), zoo.state_dict())
    models["torchvision:resnet18 (torch.fx)"] = tv.to(device)
    if args.timm:
        models["timm:resnet18 (forward_features)"] = get_model("timm:resnet18", 100, "imagenet", image_size=size).to(device)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=gen).to(device)
    y = torch.randint(0, 100, (batch,), generator=gen).to(device)
    with torch.no_grad():
        zl, zf = zoo.eval()(x, return_features=True)
        tl, tf = tv.eval()(x, return_features=True)
    print(f"same network, same weights: max |Δlogits| = {float((zl - tl).abs().max()):.1e}, "
          f"max |Δfeats[-1]| = {float((zf['feats'][-1] - tf['feats'][-1]).abs().max()):.1e}")

    def stepper(m):
        m.train()
        opt = torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9)
        scaler = torch.amp.GradScaler(enabled=amp)
        def step():
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                logits, f = m(x, return_features=True)
            loss = F.cross_entropy(logits.float(), y) + f["feats"][-1].float().pow(2).mean()
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward(); scaler.step(opt); scaler.update()
        return step

    times = _interleaved([stepper(m) for m in models.values()], device, args.repeats)
    print(f"{'model':>34} | {'step':>10} | {'vs zoo':>7}")
    for (name, _), t in zip(models.items(), times):
        print(f"{name:>34} | {t*1e3:7.1f} ms | {100 * (t / times[0] - 1):+6.1f}%")


def _ratio(ref, ours):
    return "n/a" if not ours > 0 else f"{ref / ours:.0f}x"


def _available_bytes(device):
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info()
        return free
    return _meminfo("MemAvailable")


def _meminfo(field):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 8 << 30


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"


def main(argv=None):
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") is None and sys.platform.startswith("linux"):
        # Large CPU tensors get their own mappings and return them on free, so the peak RSS measures the step.
        os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"
        os.execv(sys.executable, [sys.executable] + sys.argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["transport", "distill", "features"], help="which benchmark")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--sizes", nargs="+", default=["64x100", "64x1000", "256x1000", "512x1000", "256x10000"])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--settings", nargs="+", default=["cifar100_r32x4_r8x4", "imagenet_r34_r18"],
                   help="distill: wkd.config settings to time")
    p.add_argument("--batch", type=int, default=None,
                   help="distill: batch size (default 256 ImageNet, 64 the others); features: default 256 GPU, 16 CPU")
    p.add_argument("--channels-last", action="store_true", help="distill: also time NHWC (channels_last), with its ratio to NCHW")
    p.add_argument("--image-size", type=int, default=224, help="features: input side")
    p.add_argument("--timm", action="store_true", help="features: also time timm:resnet18 (needs timm)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    print(f"torch {torch.__version__}")
    {"transport": bench_transport, "distill": bench_distill, "features": bench_features}[args.what](args, device)


if __name__ == "__main__":
    main()
