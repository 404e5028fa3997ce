#!/usr/bin/env python
"""Regenerate the embedded Fashion-MNIST data `data/fashion_mnist_subset.npz` from the Debian package files.

    apt-get install -y dataset-fashion-mnist      # IDX .gz files in /usr/share/datasets/fashion-mnist
    python tools/make_embedded_data.py            # writes data/fashion_mnist_subset.npz

It holds a seeded stratified choice of 500 training images per class and, by default, the whole 10,000-image test
set (1,000 per class, which is every test image, in the original order). The file is written with fixed timestamps
and compression settings, so the same inputs always give the same bytes. See data/README.md.
"""
import argparse
import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, installed or not
from wkd.embedded import EMBEDDED_FILE, FASHION_MNIST_DEBIAN, make_embedded_subset  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", default=str(FASHION_MNIST_DEBIAN), help="folder with the four Fashion-MNIST IDX(.gz) files")
    p.add_argument("--out", default=str(EMBEDDED_FILE), help="the .npz to write")
    p.add_argument("--train-per-class", type=int, default=500)
    p.add_argument("--test-per-class", type=int, default=1000, help="1000: the whole test set")
    p.add_argument("--seed", type=int, default=0, help="train choice uses seed, test choice seed + 1")
    a = p.parse_args(argv)
    out = make_embedded_subset(a.out, a.src, a.train_per_class, a.test_per_class, a.seed)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"wrote {out} ({out.stat().st_size:,} bytes, sha256 {digest})")


if __name__ == "__main__":
    main()
