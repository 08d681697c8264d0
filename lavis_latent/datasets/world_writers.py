"""Writers of the demo world's files, one per format (paths from :data:`~lavis_latent.datasets.world_layout.LAYOUT`).

Each writer takes the output root and the image records of :func:`write_images` grouped by split (``by_split``);
every random choice comes from its own :func:`~lavis_latent.datasets.scenes.world_rng` stream, so the writers are
independent of each other and of their order.
"""
import os

from lavis_latent.datasets.generated_files import JPEG_QUALITY, write_json
from lavis_latent.datasets.scenes import express, render_scene, sample_scene, world_rng
from lavis_latent.datasets.world import ATTRIBUTES, IMAGE_ONLY, MODALITY, SHARED, SPLITS, TEXT_ONLY, VALUES
from lavis_latent.datasets.world_layout import LAYOUT
from lavis_latent.datasets.world_text import NLVR_TEMPLATES, QUESTIONS, article, caption, statement

_SNLI_LABELS = ("entailment", "neutral", "contradiction")


def _write(out, key, obj):
    write_json(os.path.join(out, LAYOUT[key]), obj)


def write_images(out, p, active):
    """Render and save every image (``images/<split>/<index>.jpg``) and draw its captions.

    Returns ``{split: [record]}``, a record per image: ``image_id`` (running over the splits), ``split``, ``image``
    (relative path), ``attributes`` (expressed), ``latent`` (sampled), ``layout`` and ``captions``.
    """
    counts = {"train": p["num_train"], "val": p["num_val"], "test": p["num_test"]}
    by_split = {s: [] for s in SPLITS}
    image_id = 0
    for split in SPLITS:
        os.makedirs(os.path.join(out, LAYOUT["images"], split), exist_ok=True)
        for index in range(counts[split]):
            latent, layout = sample_scene(p["seed"], split, index)
            attrs = express(latent, active)
            rel = f"{split}/{index:06d}.jpg"
            render_scene(attrs, layout, p["image_size"]).save(
                os.path.join(out, LAYOUT["images"], rel), format="JPEG", quality=JPEG_QUALITY)
            crng = world_rng(p["seed"], split, index, "captions")
            captions = [caption(attrs, active, crng) for _ in range(p["captions_per_image"])]
            by_split[split].append({"image_id": image_id, "split": split, "image": rel, "attributes": attrs,
                                    "latent": latent, "layout": layout, "captions": captions})
            image_id += 1
    return by_split


def write_retrieval_and_captions(out, by_split):
    """Retrieval (COCO karpathy style) and captioning / pretraining (CaptionDataset) files: the same rows, one per
    caption for train, one per image with its caption list for val / test (karpathy eval format)."""
    for split, recs in by_split.items():
        if split == "train":
            rows = [{"image": r["image"], "caption": c, "image_id": r["image_id"]} for r in recs for c in r["captions"]]
        else:
            rows = [{"image": r["image"], "caption": list(r["captions"]), "image_id": r["image_id"]} for r in recs]
        _write(out, f"retrieval_{split}", rows)
        _write(out, f"caption_{split}", rows)


def _vqa_questions(split, recs, visible, seed):
    """One question record per visible attribute per image of a split."""
    records = []
    for r in recs:
        qrng = world_rng(seed, split, r["image"], "vqa")
        for qi, attr in enumerate(visible):
            question = qrng.choice(QUESTIONS[attr]).format(shape=r["attributes"]["shape"],
                                                           color=r["attributes"]["color"])
            records.append({"image": r["image"], "image_id": r["image_id"], "question": question,
                            "question_id": r["image_id"] * 10 + qi, "answer": r["attributes"][attr],
                            "attribute": attr, "modality": MODALITY[attr]})
    return records


def official_vqa_files(split, records):
    """The official VQA questions / annotations dicts (lavis/common/vqa_tools/vqa.py reads these keys)."""
    common = {"info": {"description": "lavis_latent demo VQA", "version": "1.0"},
              "license": {"name": "CC0", "url": ""}, "data_type": "lavis_latent_demo", "data_subtype": split}
    questions = dict(common, task_type="Open-Ended",
                     questions=[{"image_id": r["image_id"], "question": r["question"],
                                 "question_id": r["question_id"]} for r in records])
    annotations = dict(common, annotations=[{
        "image_id": r["image_id"], "question_id": r["question_id"], "question_type": r["attribute"],
        "answer_type": r["modality"], "multiple_choice_answer": r["answer"],
        "answers": [{"answer": r["answer"], "answer_confidence": "yes", "answer_id": i + 1} for i in range(10)],
    } for r in records])
    return questions, annotations


def write_vqa(out, by_split, visible, seed):
    """VQA files: the answer list, one question per visible (shared or active image-only) attribute per image in
    LAVIS's format, and for val / test the official VQA questions and annotations files."""
    answer_list = list(dict.fromkeys(v for attr in SHARED + IMAGE_ONLY for v in VALUES[attr]))  # first-seen order
    _write(out, "vqa_answer_list", answer_list)
    for split, recs in by_split.items():
        records = _vqa_questions(split, recs, visible, seed)
        if split == "train":
            _write(out, "vqa_train", [{"image": q["image"], "question": q["question"], "answer": [q["answer"]],
                                       "question_id": q["question_id"], "question_type": q["attribute"]}
                                      for q in records])
            continue
        _write(out, f"vqa_{split}", [{"image": q["image"], "question": q["question"], "question_id": q["question_id"],
                                      "answer": [q["answer"]], "question_type": q["attribute"]} for q in records])
        questions, annotations = official_vqa_files(split, records)
        _write(out, f"vqa_{split}_questions", questions)
        _write(out, f"vqa_{split}_annotations", annotations)


def _nlvr_statement(recs, i, want, templates, rng):
    """A statement about image ``i`` (left) and another image of the split, drawn until its label is ``want`` (at
    most 200 draws: the last one is kept)."""
    left = recs[i]
    for _ in range(200):
        attr, template, truth = rng.choice(templates)
        right = recs[rng.choice([j for j in range(len(recs)) if j != i])]
        value = rng.choice(VALUES[attr])
        label = truth(left["attributes"], right["attributes"], value)
        if label == want:
            break
    return {"images": [left["image"], right["image"]], "sentence": article(template.format(v=value)),
            "label": "True" if label else "False", "attribute": attr}


def write_nlvr(out, by_split, visible, seed, per_image):
    """NLVR2 files: ``per_image`` statements about (left, right) pairs of the same split per image, labels
    alternating True / False (balanced by rejection sampling)."""
    templates = [t for t in NLVR_TEMPLATES if t[0] in visible]
    for split, recs in by_split.items():
        rng = world_rng(seed, split, "nlvr")
        rows = [_nlvr_statement(recs, i, (i * per_image + n) % 2 == 0, templates, rng)
                for i in range(len(recs)) for n in range(per_image)]
        _write(out, f"nlvr_{split}", rows)


def _snli_hypothesis(r, label, visible, rng):
    """``(attribute, value)`` of a hypothesis: a true visible fact (entailment), a false one (contradiction), or a
    text-only fact the image cannot confirm (neutral)."""
    if label == "neutral":
        attr = rng.choice(TEXT_ONLY)
        return attr, rng.choice(VALUES[attr])
    attr = rng.choice(visible)
    true = r["attributes"][attr]
    return attr, true if label == "entailment" else rng.choice([v for v in VALUES[attr] if v != true])


def write_snli_ve(out, by_split, visible, seed, per_image):
    """SNLI-VE files: ``per_image`` hypotheses per image, labels cycling entailment / neutral / contradiction."""
    for split, recs in by_split.items():
        rng = world_rng(seed, split, "snli_ve")
        rows = []
        for r in recs:
            for n in range(per_image):
                label = _SNLI_LABELS[(r["image_id"] + n) % 3]
                attr, value = _snli_hypothesis(r, label, visible, rng)
                rows.append({"image": os.path.splitext(r["image"])[0], "sentence": article(statement(attr, value)),
                             "label": label, "attribute": attr})
        _write(out, f"snli_ve_{split}", rows)


def write_metadata(out, p, active, by_split):
    """``metadata.json``: the parameters, the active attributes, each attribute's modality, values and whether it is
    active, and every image record (see :func:`write_images`)."""
    metadata = {
        "params": p,
        "active": active,
        "attributes": {a: {"modality": MODALITY[a], "values": list(VALUES[a]),
                           "active": a in SHARED or a in active["image_only"] or a in active["text_only"]}
                       for a in ATTRIBUTES},
        "images": [r for split in SPLITS for r in by_split[split]],
    }
    _write(out, "metadata", metadata)
