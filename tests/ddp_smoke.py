#!/usr/bin/env python
"""Test harness (run by tests/test_ddp.py): a multi-process check of `wkd.train.train` on the CPU (Gloo), a few seconds of tiny WKD-L+F training:

    torchrun --standalone --nproc_per_node 2 tests/ddp_smoke.py OUT_DIR

Checks that
- every process ends with identical weights (their data shards differ, so gradients were averaged),
- the all-reduced test accuracy equals a single-process evaluation of the saved student on the whole test set,
- the training shards of the processes are disjoint and reshuffled every epoch,
- only rank 0 wrote files, and a resumed run continues (exactly as on one process).
Prints "DDP smoke OK" on rank 0 when all hold.
"""
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from wkd.config import get_config
from wkd.checkpoint import load_checkpoint
from wkd.data import get_datasets, make_train_loader, set_loader_epoch, subsample
from wkd.models import get_model, load_weights
from wkd.teacher_cost import teacher_cost_matrix
from wkd.train import dist_info, init_distributed, train


def gather(t):
    "All processes' copies of a 1-D tensor, stacked (P, n)."
    out = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(out, t)
    return torch.stack(out)


def main(out):
    torch.set_num_threads(1)
    init_distributed("gloo")
    rank, world = dist_info()
    assert world == 2, f"run with --nproc_per_node 2 (got world size {world})"
    train_ds, test_ds, _ = get_datasets("fashion_mnist")
    tr, te = subsample(train_ds, 8), subsample(test_ds, 5)  # 80 and 50 images
    cfg = get_config("wkd_lf", student="resnet8", teacher="resnet8", epochs=3, batch_size=8, test_batch_size=16,
                     lr_milestones=[2], decay_start=1)
    torch.manual_seed(0)
    teacher = get_model("resnet8", 10).eval()
    class_dist = teacher_cost_matrix(teacher, tr, per_class=2)  # (`dist` is torch.distributed here)
    kw = dict(teacher=teacher, dist=class_dist, data=(tr, te), progress=False, verbose=False)

    # shards: disjoint between processes, different from one epoch to the next
    loader = make_train_loader(tr, cfg.batch_size, cfg.seed, rank, world)
    orders = []
    for epoch in (1, 2):
        set_loader_epoch(loader, epoch, cfg.seed, rank)
        orders.append(torch.tensor(list(loader.sampler)))
    both = gather(orders[0])
    assert not set(both[0].tolist()) & set(both[1].tolist()), "the two shards overlap"
    assert not torch.equal(orders[0], orders[1]), "the shard was not reshuffled between epochs"

    res = train(cfg, out / "straight", **kw)
    flat = torch.cat([v.flatten().double() for v in res["model"].state_dict().values()])
    copies = gather(flat)
    assert torch.equal(copies[0], copies[1]), "the processes ended with different weights"

    # the all-reduced accuracy is the accuracy on the whole test set
    if rank == 0:
        model = load_weights(get_model("resnet8", 10), out / "straight" / "model.pt").eval()
        with torch.no_grad():
            pred = torch.cat([model(te[i][0][None]).argmax(1) for i in range(len(te))])
        labels = torch.tensor([te[i][1] for i in range(len(te))])
        top1 = 100 * (pred == labels).double().mean().item()
        assert abs(top1 - res["last_top1"]) < 1e-9, (top1, res["last_top1"])
        assert res["history"][-1]["world_size"] == 2
        assert sorted(p.name for p in (out / "straight").iterdir()) == sorted(  # .lock: rank 0's, released
            [".lock", "best.pt", "config.json", "latest.pt", "metrics.jsonl", "model.pt", "results.json"])
    dist.barrier()

    # stop after epoch 1, resume: the same weights as the straight run
    train(cfg, out / "resumed", stop_after=1, **kw)
    res2 = train(cfg, out / "resumed", resume=True, **kw)
    for k, v in res["model"].state_dict().items():
        assert torch.equal(v, res2["model"].state_dict()[k]), f"resumed run differs in {k}"
    if rank == 0:
        a, b = (load_checkpoint(out / d / "latest.pt") for d in ("straight", "resumed"))
        for k in a["projector"]:
            assert torch.equal(a["projector"][k], b["projector"][k]), f"resumed projector differs in {k}"
        print("DDP smoke OK", flush=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]).resolve())
