"""The demo-world generator: formats, ground truth, determinism, the info_gap knob, idempotence and atomicity."""
import filecmp
import json
import os
import time

import pytest
from PIL import Image

from lavis_latent.datasets import demo_data
from lavis_latent.datasets.demo_data import IMAGE_ONLY, SHARED, TEXT_ONLY, VALUES

SMALL = dict(num_train=12, num_val=4, num_test=4, captions_per_image=3)


def _load(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def world_full(tmp_path_factory):
    """A small world with every modality-specific attribute active."""
    return demo_data.generate(tmp_path_factory.mktemp("w") / "full", seed=0, info_gap=1.0, **SMALL)


@pytest.fixture(scope="module")
def world_none(tmp_path_factory):
    """The same seed with no modality-specific information."""
    return demo_data.generate(tmp_path_factory.mktemp("w") / "none", seed=0, info_gap=0.0, **SMALL)


def _words(text):
    return set(text.replace(",", " ").split())


def test_layout_and_sizes(world_full):
    p = world_full
    for key in demo_data.LAYOUT:
        assert os.path.exists(p[key]), key
    meta = demo_data.load_metadata(p["root"])
    assert [sum(r["split"] == s for r in meta["images"]) for s in ("train", "val", "test")] == [12, 4, 4]
    assert len({r["image_id"] for r in meta["images"]}) == 20
    for r in meta["images"]:
        img = Image.open(os.path.join(p["images"], r["image"]))
        assert img.format == "JPEG" and img.size == (64, 64) and img.mode == "RGB"
    manifest = _load(p["manifest"])
    assert manifest["params"] == demo_data.world_params(seed=0, info_gap=1.0, **SMALL)
    assert manifest["params"]["k_image_only"] == 4 and manifest["params"]["k_text_only"] == 4


def test_annotation_formats(world_full):
    p = world_full
    train = _load(p["retrieval_train"])
    assert len(train) == 12 * 3 and set(train[0]) == {"image", "caption", "image_id"}
    for split in ("val", "test"):
        rows = _load(p[f"retrieval_{split}"])
        assert len(rows) == 4 and isinstance(rows[0]["caption"], list) and len(rows[0]["caption"]) == 3
        assert _load(p[f"caption_{split}"]) == rows
    assert _load(p["caption_train"]) == train

    vqa = _load(p["vqa_train"])
    assert {"image", "question", "answer"} <= set(vqa[0]) and isinstance(vqa[0]["answer"], list)
    answers = _load(p["vqa_answer_list"])
    assert all(isinstance(a, str) for a in answers) and len(answers) == len(set(answers)) == 26
    for split in ("val", "test"):
        evq = _load(p[f"vqa_{split}"])
        assert {"image", "question", "question_id"} <= set(evq[0])
        assert all(isinstance(q["question_id"], int) for q in evq)
        assert len({q["question_id"] for q in evq}) == len(evq) == 4 * 7  # 3 shared + 4 image-only questions
        ques, anno = _load(p[f"vqa_{split}_questions"]), _load(p[f"vqa_{split}_annotations"])
        for key in ("info", "task_type", "data_type", "data_subtype", "license"):
            assert key in ques
        assert [q["question_id"] for q in ques["questions"]] == [q["question_id"] for q in evq]
        for a in anno["annotations"]:
            assert {"question_type", "answer_type", "image_id", "question_id", "answers"} <= set(a)
            assert len(a["answers"]) == 10 and a["answers"][0]["answer"] in answers
            assert a["answer_type"] in ("shared", "image_only")

    for split in ("train", "val", "test"):
        nlvr = _load(p[f"nlvr_{split}"])
        assert all(len(r["images"]) == 2 and r["label"] in ("True", "False") and r["sentence"] for r in nlvr)
        snli = _load(p[f"snli_ve_{split}"])
        for r in snli:
            assert not r["image"].endswith(".jpg")
            assert os.path.isfile(os.path.join(p["images"], r["image"] + ".jpg"))
            assert r["label"] in ("entailment", "neutral", "contradiction")


def test_captions_and_pixels_match_ground_truth(world_full):
    p = world_full
    meta = demo_data.load_metadata(p["root"])
    image_only_words = set(VALUES["background"] + VALUES["size"] + VALUES["texture"]) | {"nothing", "corner"}
    for r in meta["images"]:
        a = r["attributes"]
        for cap in r["captions"]:
            w = _words(cap)
            assert {a["color"], a["shape"], a["position"]} <= w, cap  # shared facts are written
            assert not (w & image_only_words), cap  # image-only facts never are
            for attr in TEXT_ONLY:
                assert a[attr] in w, (attr, cap)  # every active text-only fact is written
        img = Image.open(os.path.join(p["images"], r["image"])).convert("RGB")
        y = {"top": 16, "middle": 32, "bottom": 48}[a["position"]]
        centre = img.getpixel((r["layout"]["x"], y))
        assert max(abs(c - t) for c, t in zip(centre, demo_data._RGB[a["color"]])) < 40, (r["image"], centre)
        if a["texture"] == "plain" and a["companion"] == "nothing":
            corner = img.getpixel((0, 0))
            assert max(abs(c - t) for c, t in zip(corner, demo_data._RGB[a["background"]])) < 40


def test_task_labels_match_ground_truth(world_full):
    p = world_full
    meta = demo_data.load_metadata(p["root"])
    by_image = {r["image"]: r["attributes"] for r in meta["images"]}
    for q in _load(p["vqa_train"]):
        assert q["answer"] == [by_image[q["image"]][q["question_type"]]]
    for split in ("train", "val", "test"):
        rows = _load(p[f"nlvr_{split}"])
        for row in rows:
            left, right = (by_image[i] for i in row["images"])
            matches = []
            for attr, template, truth in demo_data._NLVR_TEMPLATES:
                for v in VALUES[attr]:
                    if demo_data._article(template.format(v=v)) == row["sentence"]:
                        matches.append(truth(left, right, v))
            assert matches and all(m == (row["label"] == "True") for m in matches), row
        labels = [r["label"] for r in rows]
        assert abs(labels.count("True") - labels.count("False")) <= 1
        for row in _load(p[f"snli_ve_{split}"]):
            a = by_image[row["image"] + ".jpg"]
            stated = demo_data._article(demo_data._statement(row["attribute"], a[row["attribute"]]))
            if row["label"] == "neutral":
                assert row["attribute"] in TEXT_ONLY
            else:
                assert row["attribute"] in SHARED + IMAGE_ONLY
                assert (stated == row["sentence"]) == (row["label"] == "entailment"), row


def test_info_gap_knob(world_full, world_none):
    full, none = demo_data.load_metadata(world_full["root"]), demo_data.load_metadata(world_none["root"])
    assert none["active"] == {"shared": list(SHARED), "image_only": [], "text_only": []}
    assert full["active"]["image_only"] == list(IMAGE_ONLY) and full["active"]["text_only"] == list(TEXT_ONLY)
    text_words = set().union(*(VALUES[a] for a in TEXT_ONLY))
    for rf, rn in zip(full["images"], none["images"]):
        # the same seed gives the same scenes: only the modality-specific content changes
        assert rf["latent"] == rn["latent"]
        assert {a: rf["attributes"][a] for a in SHARED} == {a: rn["attributes"][a] for a in SHARED}
        assert all(rn["attributes"][a] == demo_data.INACTIVE_IMAGE_VALUE[a] for a in IMAGE_ONLY)
        assert all(rn["attributes"][a] is None for a in TEXT_ONLY)
        assert all(not (_words(c) & text_words) for c in rn["captions"])
    assert len({r["attributes"]["background"] for r in full["images"]}) > 1
    assert len({r["attributes"]["background"] for r in none["images"]}) == 1
    # VQA asks only about visible facts; with no image-only attribute active, only the shared ones
    assert {q["question_type"] for q in _load(world_none["vqa_train"])} == set(SHARED)
    # images differ where image-only facts are drawn
    assert not filecmp.cmp(os.path.join(world_full["images"], "train/000000.jpg"),
                           os.path.join(world_none["images"], "train/000000.jpg"), shallow=False)
    # counts, and explicit overrides
    assert demo_data.active_attributes(0.5) == {"shared": list(SHARED), "image_only": ["background", "size"],
                                                "text_only": ["name", "mood"]}
    act = demo_data.active_attributes(0.0, k_image_only=1, k_text_only=3)
    assert act["image_only"] == ["background"] and act["text_only"] == ["name", "mood", "time"]
    with pytest.raises(ValueError, match="info_gap"):
        demo_data.world_params(info_gap=1.5)
    with pytest.raises(ValueError, match="k_text_only"):
        demo_data.world_params(k_text_only=5)
    with pytest.raises(ValueError, match="unknown"):
        demo_data.world_params(num_trian=3)
    labels = demo_data.attribute_labels(full, "train", "background")
    assert len(labels[0]) == 12 and all(0 <= y < 4 for y in labels[1])
    with pytest.raises(ValueError, match="inactive"):
        demo_data.attribute_labels(none, "train", "name")


def _all_files(root):
    out = []
    for d, _, files in os.walk(root):
        out.extend(os.path.relpath(os.path.join(d, f), root) for f in files)
    return sorted(out)


def test_determinism(tmp_path, world_full):
    a = demo_data.generate(tmp_path / "a", seed=0, info_gap=1.0, **SMALL)
    files = _all_files(a["root"])
    assert files == _all_files(world_full["root"])
    _, mismatch, errors = filecmp.cmpfiles(a["root"], world_full["root"], files, shallow=False)
    assert not mismatch and not errors
    b = demo_data.generate(tmp_path / "b", seed=1, info_gap=1.0, **SMALL)
    _, mismatch, _ = filecmp.cmpfiles(a["root"], b["root"], files, shallow=False)
    assert "metadata.json" in mismatch and "annotations/retrieval_train.json" in mismatch
    assert sum(f.startswith("images/") for f in mismatch) >= 15


def test_idempotent_regenerates_on_change_and_is_atomic(tmp_path, monkeypatch):
    root = tmp_path / "w"
    p = demo_data.generate(root, **SMALL)
    stamp = os.stat(p["metadata"]).st_mtime_ns
    time.sleep(0.01)
    assert demo_data.generate(root, **SMALL) == p
    assert os.stat(p["metadata"]).st_mtime_ns == stamp  # skipped
    demo_data.generate(root, **dict(SMALL, num_train=14))  # other parameters: regenerated in place
    assert len(_load(p["retrieval_train"])) == 14 * 3
    assert _load(p["manifest"])["params"]["num_train"] == 14
    os.remove(p["nlvr_val"])  # a missing file makes the world incomplete
    demo_data.generate(root, **dict(SMALL, num_train=14))
    assert os.path.isfile(p["nlvr_val"])

    def boom(out, params):
        with open(os.path.join(out, "partial.txt"), "w") as f:
            f.write("x")
        raise KeyboardInterrupt

    monkeypatch.setattr(demo_data, "_write_world", boom)
    with pytest.raises(KeyboardInterrupt):
        demo_data.generate(root, **SMALL)  # interrupted: the previous complete world stays
    assert _load(p["manifest"])["params"]["num_train"] == 14
    with pytest.raises(KeyboardInterrupt):
        demo_data.generate(tmp_path / "fresh", **SMALL)
    assert not os.path.exists(tmp_path / "fresh")  # no folder, let alone a manifest claiming completeness
    assert sorted(os.listdir(tmp_path)) == ["w"]  # no staging folders left behind

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep")
    monkeypatch.undo()
    with pytest.raises(FileExistsError, match="refusing"):
        demo_data.generate(foreign, **SMALL)
    assert (foreign / "mine.txt").read_text() == "keep"


def test_default_generation_time(tmp_path):
    start = time.time()
    p = demo_data.generate(tmp_path / "default")
    assert time.time() - start < 10
    assert len(_load(p["retrieval_train"])) == 200 * 3
    assert len(_load(p["retrieval_val"])) == 50 and len(_load(p["retrieval_test"])) == 50
