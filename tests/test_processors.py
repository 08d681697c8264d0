"""Paired-view processors of ``clip_latent``: ``clip_latent_image_train`` and ``eda_caption``."""
import collections
import random

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import default_collate

import lavis_latent  # noqa: F401  (registers the processors)
from lavis.common.registry import registry
from lavis_latent.processors import PairedViews, unpack_views
from lavis_latent.processors.eda import eda
from omegaconf import OmegaConf

CAPTION = "A Red square, on the LEFT of a big blue circle; under the bright yellow sun!"


def eda_processor(**cfg):
    return registry.get_processor_class("eda_caption").from_config(OmegaConf.create(cfg))


def image_processor(**cfg):
    return registry.get_processor_class("clip_latent_image_train").from_config(OmegaConf.create(cfg))


def test_registered_names():
    assert registry.get_processor_class("eda_caption") is not None
    assert registry.get_processor_class("clip_latent_image_train") is not None


def test_eda_returns_cleaned_caption_and_augmentation():
    proc = eda_processor(max_words=12)
    clean = registry.get_processor_class("blip_caption").from_config(OmegaConf.create({"max_words": 12}))(CAPTION)
    out = proc(CAPTION)
    assert isinstance(out, PairedViews) and out.view == clean
    assert out.aug and out.aug == out.aug.lower() and "!" not in out.aug


def test_eda_deterministic_under_a_seed_and_differs_across_seeds():
    caps = [CAPTION, "a dog runs on the grass with a red ball", "two cats sleep on a sofa"] * 10
    p1, p1_again, p2 = eda_processor(seed=1), eda_processor(seed=1), eda_processor(seed=2)
    torch.manual_seed(0)  # the stream follows torch's RNG (as LAVIS's random crops do)
    a = [p1(c).aug for c in caps]
    torch.manual_seed(0)
    b = [p1_again(c).aug for c in caps]
    torch.manual_seed(0)
    c = [p2(c).aug for c in caps]
    assert a == b
    assert a != c
    assert len(set(a)) > 3  # it really augments, and not always the same way


def test_eda_stream_follows_torch_seed():
    """The stream follows torch's RNG: DataLoader workers (own torch seeds) differ, a restored RNG state resumes it."""
    caps = ["a dog runs on the grass with a red ball and a blue frisbee"] * 20
    proc = eda_processor(seed=0)
    torch.manual_seed(10)
    a = [proc(c).aug for c in caps]
    torch.manual_seed(11)
    b = [proc(c).aug for c in caps]
    torch.manual_seed(10)
    again = [proc(c).aug for c in caps]
    assert a == again and a != b
    torch.manual_seed(10)
    half = [proc(c).aug for c in caps[:10]]
    state = torch.get_rng_state()  # a checkpoint of torch's RNG mid-stream, restored after other draws
    torch.rand(100)
    torch.set_rng_state(state)
    assert half + [proc(c).aug for c in caps[10:]] == a


@pytest.mark.parametrize("caption", ["dog", "Dog.", "a dog", "red red red"])
def test_eda_never_empty_on_short_captions(caption):
    for seed in range(20):
        for ops in (["deletion"], ["swap"], ["swap", "deletion"]):
            out = eda_processor(seed=seed, p_rd=1.0, operations=ops)(caption)
            assert out.aug.strip(), (caption, seed, ops)
            assert set(out.aug.split()) <= set(out.view.split())


def test_eda_full_deletion_keeps_one_word():
    rng = random.Random(0)
    for _ in range(50):
        out = eda("a dog runs on the grass", rng, p_rd=1.0, operations=("deletion",))
        assert len(out.split()) == 1 and out in "a dog runs on the grass".split()


def test_eda_deletion_only_removes_words_in_order():
    rng = random.Random(3)
    words = "one two three four five six seven eight nine ten".split()
    for _ in range(50):
        out = eda(" ".join(words), rng, p_rd=0.3, operations=("deletion",)).split()
        it = iter(words)
        assert all(w in it for w in out) and 1 <= len(out) <= len(words)  # a subsequence


def test_eda_swap_preserves_the_multiset_of_words():
    rng = random.Random(0)
    caption = "a small red square next to a big red circle and a tiny blue star"
    changed = 0
    for _ in range(50):
        out = eda(caption, rng, alpha_rs=0.2, operations=("swap",))
        assert collections.Counter(out.split()) == collections.Counter(caption.split())
        changed += out != caption
    assert changed > 40


def test_eda_empty_caption_unchanged_and_bad_options():
    assert eda_processor()("") == PairedViews("", "")
    with pytest.raises(ValueError, match="operations"):
        eda_processor(operations=["flip"])
    with pytest.raises(ValueError, match="p_rd"):
        eda_processor(p_rd=1.5)


def test_eda_without_wordnet_uses_swap_and_deletion(monkeypatch):
    import importlib

    eda_module = importlib.import_module("lavis_latent.processors.eda")

    monkeypatch.setattr(eda_module, "_wordnet", False)
    rng = random.Random(0)
    caption = "a small red square next to a big red circle"
    for _ in range(30):
        out = eda(caption, rng)  # all four operations allowed, only swap / deletion possible
        assert collections.Counter(out.split()) <= collections.Counter(caption.split())
    # synonym replacement alone is impossible without WordNet: the caption comes back unchanged
    assert eda(caption, rng, operations=("synonym",)) == caption


def test_image_processor_two_different_views_of_right_shape():
    torch.manual_seed(0)
    img = Image.fromarray((np.random.RandomState(0).rand(96, 80, 3) * 255).astype("uint8"))
    proc = image_processor(image_size=48, min_scale=0.3, max_scale=0.6)
    out = proc(img)
    assert isinstance(out, PairedViews)
    assert out.view.shape == out.aug.shape == (3, 48, 48)
    assert not torch.allclose(out.view, out.aug)
    # normalised like LAVIS's clip_image_train
    ref = registry.get_processor_class("clip_image_train").from_config(
        OmegaConf.create({"image_size": 48, "min_scale": 1.0, "max_scale": 1.0}))
    torch.manual_seed(1)
    mild = image_processor(image_size=48, view_min_scale=1.0, view_max_scale=1.0)(img).view
    torch.manual_seed(1)
    assert torch.allclose(mild, ref(img), atol=1e-6)


def test_image_processor_flip_and_scale_options():
    img = Image.fromarray(np.tile(np.linspace(0, 255, 64, dtype="uint8")[None, :, None], (64, 1, 3)))
    proc = image_processor(image_size=64, min_scale=1.0, max_scale=1.0, flip=True)
    torch.manual_seed(0)
    augs = [proc(img).aug for _ in range(20)]
    flipped = [bool(a[0, 0, 0] > a[0, 0, -1]) for a in augs]  # the ramp runs left to right unless flipped
    assert any(flipped) and not all(flipped)
    no_flip = image_processor(image_size=64, min_scale=1.0, max_scale=1.0, flip=False)
    assert all(bool(no_flip(img).aug[0, 0, 0] < no_flip(img).aug[0, 0, -1]) for _ in range(10))
    with pytest.raises(ValueError, match="min_scale"):
        image_processor(min_scale=0.8, max_scale=0.5)


def test_default_collate_of_paired_views():
    img = Image.fromarray((np.random.RandomState(1).rand(70, 70, 3) * 255).astype("uint8"))
    vis, txt = image_processor(image_size=32), eda_processor()
    items = [{"image": vis(img), "text_input": txt(c), "image_id": i}
             for i, c in enumerate(["a red square", "a blue circle", "dog"])]
    batch = default_collate(items)
    assert isinstance(batch["image"], PairedViews) and isinstance(batch["text_input"], PairedViews)
    assert batch["image"].view.shape == batch["image"].aug.shape == (3, 3, 32, 32)
    assert list(batch["text_input"].view) == ["a red square", "a blue circle", "dog"]
    assert len(batch["text_input"].aug) == 3
    view, aug = unpack_views(batch["image"])
    assert view is batch["image"].view and unpack_views(view) == (view, None)


class _FakeWordNet:
    """A two-entry stand-in for nltk's WordNet reader (nltk is not a dependency): exercises SR and RI."""

    class _Synset:
        def __init__(self, names):
            self._names = names

        def lemmas(self):
            return [type("Lemma", (), {"name": (lambda self, n=n: n)})() for n in self._names]

    TABLE = {"dog": ["dog", "domestic_dog", "Canis_familiaris"], "grass": ["grass", "lawn"]}

    def synsets(self, word):
        return [self._Synset(self.TABLE[word])] if word in self.TABLE else []


def test_eda_synonym_replacement_and_insertion_with_wordnet(monkeypatch):
    import importlib

    eda_module = importlib.import_module("lavis_latent.processors.eda")
    monkeypatch.setattr(eda_module, "_wordnet", _FakeWordNet())
    rng = random.Random(0)
    caption = "a dog runs on the grass"
    outs = {eda(caption, rng, operations=("synonym",)) for _ in range(30)}
    assert outs <= {"a domestic dog runs on the grass", "a canis familiaris runs on the grass", "a dog runs on the lawn"}
    assert len(outs) >= 2
    for _ in range(20):
        out = eda(caption, rng, alpha_ri=0.1, operations=("insertion",)).split()
        extra = collections.Counter(out) - collections.Counter(caption.split())
        assert sum(extra.values()) in (1, 2) and set(extra) <= {"domestic", "dog", "canis", "familiaris", "lawn"}


def test_wordnet_notice_logged_once(monkeypatch, caplog):
    import importlib
    import logging

    eda_module = importlib.import_module("lavis_latent.processors.eda")
    monkeypatch.setattr(eda_module, "_wordnet", None)
    monkeypatch.setitem(__import__("sys").modules, "nltk", None)  # as if nltk were not installed
    with caplog.at_level(logging.INFO):
        proc = eda_processor()
        for _ in range(5):
            proc("a dog runs on the grass")
    notices = [r for r in caplog.records if "WordNet not available" in r.getMessage()]
    assert len(notices) == 1 and "\n" not in notices[0].getMessage()
    assert eda_module.wordnet_available() is False


class _CaptionDataset(torch.utils.data.Dataset):
    CAPTIONS = [f"a dog runs on the green grass with a red ball number {i}" for i in range(8)]

    def __init__(self):
        self.proc = eda_processor()

    def __len__(self):
        return len(self.CAPTIONS)

    def __getitem__(self, i):
        return self.proc(self.CAPTIONS[i]).aug


def test_eda_reproducible_with_dataloader_workers():
    """Under a fixed torch seed, two runs with 2 workers over 2 epochs give the same augmented captions."""
    def run(seed):
        torch.manual_seed(seed)
        loader = torch.utils.data.DataLoader(_CaptionDataset(), batch_size=2, num_workers=2, shuffle=True)
        return [list(batch) for _epoch in range(2) for batch in loader]

    a, b, c = run(1), run(1), run(2)
    assert a == b and a != c
