"""Your own folder of images through the whole pipeline, and every bad input it must refuse clearly.

Tiny ImageFolder trees are written on disk (PNG and JPEG files, a gray, an RGBA and a palette image among them) and
one short epoch is run with a zoo pair, a torchvision pair, a timm CNN student and a timm ViT student distilled from
a CNN teacher (WKD-L and WKD-F). Models that `wkd.models` does not offer yet are skipped with the reason.
"""
import io
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
import torch
from PIL import Image

from wkd.config import get_config, scale_epochs
from wkd.cost import load_cost
from wkd.data import get_datasets
from wkd.images import ImageReadError, write_tree
from wkd.models import feature_shapes, get_model
from wkd.teacher_cost import build_cost_matrix
from wkd.train import LossBalanceWarning, train

torch.set_num_threads(1)
CLASSES = ("ant", "bee", "cow")
PER_CLASS = {"train": 8, "val": 4}


def make_tree(root, classes=CLASSES, per_class=PER_CLASS, size=32, seed=0):
    "A tiny tree: per class and split, PNG and JPEG colour images of two sizes, plus gray, RGBA and palette files."
    rng = np.random.default_rng(seed)
    for split, n in per_class.items():
        for k, c in enumerate(classes):
            base = np.zeros((n, size, size, 3), np.uint8)
            base[..., k % 3] = 160  # a class colour, so that one epoch can learn something
            imgs = np.clip(base + rng.integers(0, 90, base.shape), 0, 255).astype(np.uint8)
            half = n // 2
            write_tree(root, imgs[:half], [k] * half, classes, split, "png")
            write_tree(root, imgs[half:], [k] * (n - half), classes, split, "jpg", prefix="j")
    d = root / "train" / classes[0]
    Image.fromarray(rng.integers(0, 256, (size + 4, size), dtype=np.uint8), "L").save(d / "gray.jpg")
    Image.fromarray(rng.integers(0, 256, (size, size, 4), dtype=np.uint8), "RGBA").save(d / "rgba.png")
    if "val" in per_class:
        pal = Image.fromarray(rng.integers(0, 4, (size, size + 8), dtype=np.uint8), "P")
        pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
        pal.save(root / "val" / classes[-1] / "palette.png")
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("tree"))


def _has_model(name):
    try:
        get_model(name, 3, image_size=32) if "vit" in name else get_model(name, 3)
        return True
    except TypeError:  # no image_size argument yet
        return False
    except (ValueError, KeyError, ImportError):
        return False


def _need(*names):
    missing = [n for n in names if not _has_model(n)]
    if missing:
        pytest.skip(f"wkd.models.get_model does not build {', '.join(missing)} yet")


def _cfg(method, info, teacher, student, **kw):
    cfg = get_config(method, setting="imagefolder", num_classes=info.num_classes, image_size=info.image_size,
                     teacher=teacher, student=student, batch_size=8, test_batch_size=16, num_workers=0, amp=False, **kw)
    return scale_epochs(cfg, 1)


def _run(tmp_path, tree, teacher, student, methods, image_size=32):
    "Teacher (one epoch) → its cost matrix on the training split → one epoch of each distillation method."
    train_ds, test_ds, info = get_datasets("imagefolder", tree, image_size=image_size)
    data = (train_ds, test_ds)
    res = train(_cfg("teacher", info, teacher, student), tmp_path / "teacher", data=data, progress=False, verbose=False)
    assert res["finished"] and res["student"] == teacher
    t = res["model"].eval().requires_grad_(False)
    out = {}
    for method in methods:
        cfg = _cfg(method, info, teacher, student)
        dist = None
        if cfg.logit_weight:
            path = build_cost_matrix(cfg, t, train_ds, test_ds, path=tmp_path / "cost.pt")
            cm = load_cost(path, info.num_classes)
            assert cm.meta["class_names"] == list(CLASSES)
            dist = cm.dist
        r = train(cfg, tmp_path / method, teacher=t, dist=dist, data=data, progress=False, verbose=False)
        h = r["history"][-1]
        assert r["finished"] and r["student"] == student and h["epoch"] == 1
        assert np.isfinite(h["train_loss"]) and 0 <= h["test_top1"] <= 100
        terms = {"wkd_l": ["wkd_l"], "wkd_f": ["wkd_f"], "wkd_lf": ["wkd_l", "wkd_f"], "kd": ["kd"]}[method]
        assert all(np.isfinite(h[f"train_{k}"]) and h[f"train_{k}"] > 0 for k in terms)
        out[method] = r
    return out


# ---------------------------------------------------------------------------------------------- end to end

def test_zoo_pair(tmp_path, tree):
    _run(tmp_path, tree, "resnet20", "resnet8", ["wkd_lf"])


def test_torchvision_pair(tmp_path, tree):
    _need("torchvision:resnet18", "torchvision:mobilenet_v3_small")
    # ImageNet-style networks downsample 32×: at 64 px their last maps are 2×2, enough positions for WKD-F.
    # The teacher, trained for one epoch of a few steps, has huge last maps: the run reports that WKD-F swamps the CE.
    with pytest.warns(LossBalanceWarning, match=r"wkd_f is [\d,]+× the cross-entropy in epoch 1"):
        _run(tmp_path, tree, "torchvision:resnet18", "torchvision:mobilenet_v3_small", ["wkd_lf"], image_size=64)


def test_timm_cnn_student(tmp_path, tree):
    _need("timm:test_efficientnet")
    _run(tmp_path, tree, "resnet20", "timm:test_efficientnet", ["wkd_lf"], image_size=64)


def test_timm_vit_student_from_cnn_teacher(tmp_path, tree):
    _need("timm:test_vit")
    _run(tmp_path, tree, "resnet20", "timm:test_vit", ["wkd_l", "wkd_f"])


# ---------------------------------------------------------------------------------------------- the data

def test_tree_reads_with_classes_from_folders(tree):
    train_ds, test_ds, info = get_datasets("imagefolder", tree)
    assert info.class_names == CLASSES and info.num_classes == 3
    assert info.image_size == 32 and info.augment == "pad_crop"  # 32-px images: the CIFAR recipe
    assert len(train_ds) == 3 * 8 + 2 and len(test_ds) == 3 * 4 + 1
    # gray, RGBA and palette files are converted, not refused: every item is (3, 32, 32)
    for ds in (train_ds, test_ds):
        for i, (path, _) in enumerate(ds.samples):
            if os.path.basename(path) in ("gray.jpg", "rgba.png", "palette.png"):
                assert ds[i][0].shape == (3, 32, 32)
    # statistics from the training split (a sample of it): not ImageNet's
    assert not np.allclose(info.mean, (0.485, 0.456, 0.406), atol=1e-3)
    assert get_datasets("imagefolder", tree, stats="imagenet")[2].mean == (0.485, 0.456, 0.406)


def test_large_images_get_the_imagenet_recipe(tmp_path):
    root = make_tree(tmp_path / "big", per_class={"train": 2, "val": 1}, size=120)
    _, test_ds, info = get_datasets("imagefolder", root)
    assert (info.image_size, info.augment) == (224, "resized_crop")
    assert test_ds[0][0].shape == (3, 224, 224)
    cfg = get_config("wkd_lf", setting="imagefolder", num_classes=info.num_classes, image_size=info.image_size)
    small = get_config("wkd_lf", setting="imagefolder", num_classes=info.num_classes, image_size=32)
    assert cfg.model_zoo == "imagenet" and small.model_zoo == "cifar100"


@pytest.mark.parametrize("case", ["one_class", "different_classes", "empty_class"])
def test_bad_layouts_name_the_folder(tmp_path, case):
    root = tmp_path / case
    if case == "one_class":
        make_tree(root, classes=("solo",), per_class={"train": 2, "val": 1})
        expect = [str(root / "train"), "single class", "at least 2 classes"]
    elif case == "different_classes":
        make_tree(root, per_class={"train": 2, "val": 1})
        make_tree(root, classes=("yak",), per_class={"train": 2})
        expect = [str(root / "train"), str(root / "val"), "different class folders", "yak",
                  "same class folders"]
    else:
        make_tree(root, per_class={"train": 2, "val": 1})
        (root / "train" / "zebra").mkdir()
        (root / "val" / "zebra").mkdir()
        expect = [str(root / "train" / "zebra"), "holds no image files", "add images"]
    with pytest.raises(ValueError) as e:
        get_datasets("imagefolder", root)
    for s in expect:
        assert s in str(e.value)


@pytest.mark.parametrize("kind", ["truncated_jpeg", "not_an_image"])
def test_unreadable_images_are_named(tmp_path, kind):
    root = make_tree(tmp_path / kind, per_class={"train": 2, "val": 1})
    bad = root / "train" / CLASSES[2] / "broken.jpg"
    if kind == "truncated_jpeg":  # the header is intact: PIL only fails when decoding the pixels
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
        bad.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
        assert Image.open(bad).size == (64, 64)
    else:
        bad.write_text("this is not a picture")
    with pytest.raises(ImageReadError) as e:
        get_datasets("imagefolder", root)
    assert str(bad) in str(e.value) and "replace" in str(e.value)
    # without the up-front check, the loader names the file when it reaches it
    train_ds, _, _ = get_datasets("imagefolder", root, image_size=32, stats="imagenet", verify=False)
    i = [p for p, _ in train_ds.samples].index(str(bad))
    with pytest.raises(ImageReadError, match="broken.jpg"):
        train_ds[i]


def test_fewer_images_than_one_batch(tmp_path, tree):
    train_ds, test_ds, info = get_datasets("imagefolder", tree)
    cfg = scale_epochs(get_config("vanilla", setting="imagefolder", num_classes=3, image_size=32, student="resnet8",
                                  batch_size=64, num_workers=0, amp=False), 1)
    with pytest.raises(ValueError) as e:
        train(cfg, tmp_path / "run", data=(train_ds, test_ds), progress=False, verbose=False)
    msg = str(e.value)
    assert "batch_size=64" in msg and str(tree / "train") in msg and "26" in msg
    assert not (tmp_path / "run" / "latest.pt").exists()


def test_image_size_too_small_for_the_model():
    _need("timm:test_vit")
    model = get_model("timm:test_vit", 3, image_size=8)  # 16-px patches do not fit an 8-px image
    with pytest.raises(ValueError, match="image_size=8 does not fit timm:test_vit"):
        feature_shapes(model)


def test_recipe_overrides_and_required_class_count():
    with pytest.raises(ValueError, match="num_classes"):
        get_config("wkd_lf", setting="imagefolder")
    c = get_config("wkd_lf", setting="imagefolder", num_classes=7, image_size=32, teacher="resnet56", student="resnet14")
    assert (c.teacher, c.student, c.num_classes, c.image_size, c.dataset) == ("resnet56", "resnet14", 7, 32,
                                                                               "imagefolder")
    t = get_config("teacher", setting="imagefolder", num_classes=7, teacher="resnet56", student="resnet14")
    assert (t.student, t.teacher, t.method) == ("resnet56", "", "vanilla")  # the teacher recipe trains the teacher
    f = get_config("wkd_lf", teacher="resnet56", student="resnet14")  # the overrides work for every setting
    assert (f.setting, f.teacher, f.student) == ("fmnist", "resnet56", "resnet14")
