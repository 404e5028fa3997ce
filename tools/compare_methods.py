#!/usr/bin/env python
"""Train one teacher, then the same student with several methods over several seeds, and print mean ± std of the
test top-1 (best epoch and last epoch). Every method of a seed shares the seed, so the comparison is paired.

    python tools/compare_methods.py OUT --seeds 0,1,2 --methods vanilla,kd,wkd_l,wkd_lf
    python tools/compare_methods.py OUT --setting cifar100_r32x4_r8x4 --data-root /data/cifar --seeds 0

Runs are cached in OUT (a rerun reuses finished runs). A method may carry overrides: `wkd_lf:feat_weight=0.1`.
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from wkd.config import get_config
from wkd.cost import load_cost
from wkd.data import get_datasets
from wkd.teacher_cost import build_cost_matrix
from wkd.train import load_teacher, train


def _value(v):
    for cast in (int, float):
        try: return cast(v)
        except ValueError: pass
    return v


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--setting", default="fmnist")
    p.add_argument("--data-root", default=None)
    p.add_argument("--seeds", default="0")
    p.add_argument("--methods", default="vanilla,kd,wkd_l,wkd_lf")
    p.add_argument("--teacher-ckpt", default=None, help="default: the setting's, else trained into OUT/teacher")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    train_ds, test_ds, _ = get_datasets(get_config("vanilla", setting=a.setting).dataset, a.data_root)
    kw = dict(data=(train_ds, test_ds), progress=False, verbose=False)
    t0 = time.time()
    cfg0 = get_config("wkd_l", setting=a.setting)
    ckpt = a.teacher_ckpt or cfg0.teacher_ckpt
    if not ckpt:
        t = train(get_config("teacher", setting=a.setting), a.out / "teacher", resume=True, **kw)
        print(f"teacher {t['student']}: best {t['best_top1']:.2f} last {t['last_top1']:.2f} ({t['train_s']:.0f} s)")
        ckpt = a.out / "teacher" / "model.pt"
    teacher = load_teacher(cfg0, ckpt)
    cost = load_cost(build_cost_matrix(cfg0, teacher, train_ds, test_ds, root=a.out / "cost_matrices")).dist
    rows = []
    for seed in [int(s) for s in a.seeds.split(",")]:
        for spec in a.methods.split(","):
            method, *over = spec.split(":")
            over = {k: _value(v) for k, v in (o.split("=", 1) for o in over)}
            cfg = get_config(method, setting=a.setting, seed=seed, **over)
            r = train(cfg, a.out / f"{spec.replace(':', '_')}-s{seed}", resume=True, teacher=teacher, cost=cost, **kw)
            rows.append(dict(method=spec, seed=seed, best=r["best_top1"], last=r["last_top1"], train_s=r["train_s"]))
            print(json.dumps(rows[-1]), flush=True)
    print(f"total {time.time() - t0:.0f} s\n\n| method | best top-1 | last top-1 | runs |\n|---|---|---|---|")
    for spec in a.methods.split(","):
        best, last = ([r[k] for r in rows if r["method"] == spec] for k in ("best", "last"))
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
        print(f"| {spec} | {statistics.mean(best):.2f} ± {sd(best):.2f} | {statistics.mean(last):.2f} ± {sd(last):.2f} "
              f"| {len(best)} |")


if __name__ == "__main__":
    main()
