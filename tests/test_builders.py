"""The demo builders, read by LAVIS's own builder and dataset classes (no mocks)."""
import argparse
import json
import os

import pytest
import torch
from lavis.common.config import Config
from lavis.common.registry import registry
from lavis.common.vqa_tools.vqa import VQA
from lavis.common.vqa_tools.vqa_eval import VQAEval
from lavis.datasets.builders.base_dataset_builder import BaseDatasetBuilder
from lavis.tasks.vqa import VQATask
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from lavis_latent.common.paths import set_cache_root
from lavis_latent.datasets import check_annotation_files, demo_data

NAMES = ("demo_retrieval", "demo_caption", "demo_vqa", "demo_nlvr", "demo_snli_ve")
SMALL = {"num_train": 8, "num_val": 4, "num_test": 4, "info_gap": 1.0}
STOCK = {"demo_retrieval": "coco_retrieval", "demo_caption": "coco_caption", "demo_vqa": "coco_vqa",
         "demo_nlvr": "nlvr", "demo_snli_ve": "snli_ve"}


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    """LAVIS's cache_root pointed at a temporary folder for this module, restored afterwards."""
    old = registry.mapping["paths"].get("cache_root")
    root = set_cache_root(tmp_path_factory.mktemp("cache"))
    yield root
    registry.mapping["paths"]["cache_root"] = old


def small_config(name, **generator):
    """The builder's default config with a smaller world (a merge, as LAVIS's Config does)."""
    cls = registry.get_builder_class(name)
    default = OmegaConf.load(cls.default_config_path()).datasets
    merged = OmegaConf.merge(default, {name: {"build_info": {"generator": dict(SMALL, **generator)}}})
    return merged[name]


def build(name, **generator):
    cfg = small_config(name, **generator)
    return cfg, registry.get_builder_class(name)(cfg).build_datasets()


def metadata_for(cfg):
    root = os.path.join(registry.get_path("cache_root"), cfg.build_info.generator.root)
    meta = demo_data.load_metadata(root)
    return meta, {r["image"]: r for r in meta["images"]}


def collate(dataset, n=3):
    loader = DataLoader(dataset, batch_size=n, shuffle=False, num_workers=0, collate_fn=dataset.collater)
    return next(iter(loader))


def test_registered_and_subclass_lavis_builders():
    for name in NAMES:
        cls = registry.get_builder_class(name)
        assert cls is not None, name
        assert issubclass(cls, registry.get_builder_class(STOCK[name])) and issubclass(cls, BaseDatasetBuilder)
        assert os.path.isabs(cls.default_config_path()) and os.path.isfile(cls.default_config_path())
        cfg = OmegaConf.load(cls.default_config_path()).datasets[name]
        assert set(cfg.build_info.annotations) == {"train", "val", "test"}
        assert cfg.vis_processor.train.image_size == 64 and cfg.text_processor.eval.name
        for split in ("train", "val", "test"):  # relative storage, under lavis_latent_demo/
            storage = OmegaConf.to_container(cfg.build_info.annotations[split], resolve=True)["storage"]
            for path in [storage] if isinstance(storage, str) else storage:
                assert path.startswith("lavis_latent_demo/seed0_gap0.5/") and not os.path.isabs(path)


def test_default_config_builds(cache_root):
    ds = registry.get_builder_class("demo_retrieval")().build_datasets()  # no cfg: the default yaml
    assert (len(ds["train"]), len(ds["val"]), len(ds["test"])) == (600, 50, 50)
    assert os.path.isfile(os.path.join(cache_root, "lavis_latent_demo", "seed0_gap0.5", "manifest.json"))


def test_retrieval(cache_root):
    cfg, ds = build("demo_retrieval")
    meta, by_image = metadata_for(cfg)
    train, val = ds["train"], ds["val"]
    assert type(train).__name__ == "RetrievalDataset" and type(val).__name__ == "RetrievalEvalDataset"
    assert len(train) == 8 * 3 and len(val) == 4 and len(ds["test"]) == 4
    s = train[4]
    assert set(s) == {"image", "text_input", "image_id", "instance_id"}
    assert s["image"].shape == (3, 64, 64) and s["image"].dtype == torch.float32
    rec = by_image[train.annotation[4]["image"]]
    assert s["text_input"] == train.text_processor(rec["captions"][4 % 3])
    assert rec["attributes"]["color"] in s["text_input"] and rec["attributes"]["shape"] in s["text_input"]
    # eval: txt2img / img2txt consistent, texts are the image's processed captions
    assert len(val.text) == 4 * 3 and len(val.image) == 4
    for img_idx, txt_ids in val.img2txt.items():
        assert txt_ids == list(range(3 * img_idx, 3 * img_idx + 3))
        rec = by_image[val.image[img_idx]]
        assert [val.text[t] for t in txt_ids] == [val.text_processor(c) for c in rec["captions"]]
        assert all(val.txt2img[t] == img_idx for t in txt_ids)
    assert sorted(val.txt2img) == list(range(12))
    batch = collate(train)
    assert batch["image"].shape == (3, 3, 64, 64) and len(batch["text_input"]) == 3
    batch = collate(val)
    assert batch["image"].shape == (3, 3, 64, 64) and batch["index"].tolist() == [0, 1, 2]


def test_caption_for_pretraining(cache_root):
    cfg, ds = build("demo_caption")
    _, by_image = metadata_for(cfg)
    train = ds["train"]
    assert type(train).__name__ == "CaptionDataset" and len(train) == 24
    s = train[0]
    assert set(s) >= {"image", "text_input"} and s["image"].shape == (3, 64, 64)
    assert s["text_input"] in [train.text_processor(c) for c in by_image[train.annotation[0]["image"]]["captions"]]
    batch = collate(train)
    assert batch["image"].shape == (3, 3, 64, 64) and isinstance(batch["text_input"], list)
    ev = ds["val"][1]
    assert ev["image"].shape == (3, 64, 64) and ev["image_id"] == "000001"


def test_vqa_and_official_eval(cache_root):
    cfg, ds = build("demo_vqa")
    _, by_image = metadata_for(cfg)
    train, val = ds["train"], ds["val"]
    assert type(train).__name__ == "COCOVQADataset" and type(val).__name__ == "COCOVQAEvalDataset"
    assert len(train) == 8 * 7 and len(val) == 4 * 7
    s = train[5]
    ann = train.annotation[5]
    assert s["answers"] == [by_image[ann["image"]]["attributes"][ann["question_type"]]] and s["weights"] == [1.0]
    batch = collate(train, 4)
    assert batch["image"].shape == (4, 3, 64, 64) and batch["n_answers"].tolist() == [1, 1, 1, 1]
    assert len(batch["answer"]) == 4 and batch["weight"].shape == (4,)
    batch = collate(val, 4)
    assert batch["question_id"].dtype == torch.int64 and len(batch["text_input"]) == 4
    assert val.answer_list and all(isinstance(a, str) for a in val.answer_list)
    assert val.coco_fmt_qust_file and val.coco_fmt_anno_file

    # LAVIS's vqa task picks the official files up; its scorer gives 100 to the right answers
    task = VQATask(num_beams=1, max_len=5, min_len=1, evaluate=False, num_ans_candidates=8)
    datasets = task.build_datasets(argparse.Namespace(datasets_cfg=OmegaConf.create({"demo_vqa": cfg})))
    assert set(task.ques_files) == {"val", "test"} and task.answer_list == val.answer_list
    results = [{"question_id": a["question_id"], "answer": a["answer"][0]}
               for a in datasets["demo_vqa"]["val"].annotation]
    res_file = os.path.join(cache_root, "vqa_result.json")
    with open(res_file, "w") as f:
        json.dump(results, f)
    vqa = VQA(task.anno_files["val"], task.ques_files["val"])
    scorer = VQAEval(vqa, vqa.loadRes(resFile=res_file, quesFile=task.ques_files["val"]), n=2)
    scorer.evaluate()
    assert scorer.accuracy["overall"] == 100.0
    assert set(scorer.accuracy["perAnswerType"]) == {"shared", "image_only"}


def test_nlvr(cache_root):
    cfg, ds = build("demo_nlvr")
    _, by_image = metadata_for(cfg)
    assert type(ds["train"]).__name__ == "NLVRDataset" and type(ds["val"]).__name__ == "NLVREvalDataset"
    val = ds["val"]
    assert len(ds["train"]) == 16 and len(val) == 8
    s = val[0]
    assert s["image0"].shape == s["image1"].shape == (3, 64, 64) and s["label"] in (0, 1)
    ann = val.annotation[0]
    assert s["label"] == (1 if ann["label"] == "True" else 0)
    assert all(img in by_image for img in ann["images"])
    batch = collate(ds["train"], 4)
    assert batch["image0"].shape == (4, 3, 64, 64) and batch["label"].shape == (4,)


def test_snli_ve(cache_root):
    cfg, ds = build("demo_snli_ve")
    _, by_image = metadata_for(cfg)
    train = ds["train"]
    assert type(train).__name__ == "SNLIVisualEntialmentDataset" and len(train) == 24 and len(ds["test"]) == 12
    labels = [train[i]["label"] for i in range(len(train))]
    assert sorted(set(labels)) == [0, 1, 2] and labels.count(1) == 8  # contradiction, neutral, entailment
    for i in range(6):
        s, ann = train[i], train.annotation[i]
        assert s["image"].shape == (3, 64, 64) and s["image_id"] + ".jpg" in by_image
        facts = by_image[s["image_id"] + ".jpg"]["attributes"]
        true_statement = train.text_processor(demo_data._article(demo_data._statement(ann["attribute"],
                                                                                      facts[ann["attribute"]])))
        if ann["label"] == "entailment":
            assert s["text_input"] == true_statement
        elif ann["label"] == "contradiction":
            assert s["text_input"] != true_statement
    batch = collate(train)
    assert batch["image"].shape == (3, 3, 64, 64) and batch["label"].shape == (3,)


def test_user_yaml_through_lavis_config(cache_root, tmp_path):
    yaml = tmp_path / "user.yaml"
    yaml.write_text("model:\n  arch: albef_retrieval\n  model_type: coco\nrun:\n  task: retrieval\n"
                    "datasets:\n  demo_retrieval: {}\n  demo_snli_ve:\n    vis_processor:\n      eval:\n"
                    "        image_size: 32\n")
    opts = ["datasets.demo_retrieval.build_info.generator.num_train=6",
            "datasets.demo_retrieval.build_info.generator.seed=5"]
    cfg = Config(argparse.Namespace(cfg_path=str(yaml), options=opts))
    ret = cfg.datasets_cfg.demo_retrieval
    assert ret.build_info.images.storage == "lavis_latent_demo/seed5_gap0.5/images"
    assert ret.build_info.annotations.train.storage.startswith("lavis_latent_demo/seed5_gap0.5/")
    ds = registry.get_builder_class("demo_retrieval")(ret).build_datasets()
    assert len(ds["train"]) == 18
    snli = registry.get_builder_class("demo_snli_ve")(cfg.datasets_cfg.demo_snli_ve).build_datasets()
    assert snli["val"][0]["image"].shape == (3, 32, 32) and snli["train"][0]["image"].shape == (3, 64, 64)


def test_missing_files_raise_clear_errors(cache_root, tmp_path):
    # generation disabled, nothing there
    cfg = small_config("demo_nlvr", enabled=False, root=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError) as err:
        registry.get_builder_class("demo_nlvr")(cfg).build_datasets()
    msg = str(err.value)
    assert os.path.join(str(tmp_path), "nowhere", "annotations", "nlvr_train.json") in msg
    assert "datasets.demo_nlvr.build_info.annotations.train.storage" in msg and "generator" in msg

    # one file of the VQA val list removed: named with its list index
    root = tmp_path / "w"
    cfg = small_config("demo_vqa", root=str(root))
    registry.get_builder_class("demo_vqa")(cfg).build_datasets()
    os.remove(root / "annotations" / "vqa_val_annotations.json")
    cfg = small_config("demo_vqa", root=str(root), enabled=False)
    with pytest.raises(FileNotFoundError, match=r"build_info\.annotations\.val\.storage\[3\]"):
        registry.get_builder_class("demo_vqa")(cfg).build_datasets()
    # with generation enabled, the incomplete world is regenerated
    cfg = small_config("demo_vqa", root=str(root))
    assert len(registry.get_builder_class("demo_vqa")(cfg).build_datasets()["val"]) == 28

    # a missing image is caught up front (LAVIS itself would crash later in __getitem__)
    os.remove(root / "images" / "test" / "000002.jpg")
    cfg = small_config("demo_snli_ve", root=str(root), enabled=False)
    with pytest.raises(FileNotFoundError, match=r"test/000002\.jpg"):
        registry.get_builder_class("demo_snli_ve")(cfg).build_datasets()

    # unknown generator parameter
    cfg = small_config("demo_caption", num_trian=3)
    with pytest.raises(ValueError, match="build_info.generator"):
        registry.get_builder_class("demo_caption")(cfg).build_datasets()

    # the helper works on a stock LAVIS config too
    stock = registry.get_builder_class("coco_retrieval")
    with pytest.raises(FileNotFoundError, match="coco_karpathy_train.json") as err:
        check_annotation_files(OmegaConf.load(stock.default_config_path()).datasets.coco_retrieval,
                               name="coco_retrieval")
    assert "datasets.coco_retrieval.build_info.annotations.train.storage" in str(err.value)
    assert str(cache_root) in str(err.value)
