"""Offline: files a run would download are named, with the config key that takes a local copy, before anything is
built (``lavis_latent.train.build_run``), instead of torchvision's or torch hub's raw ``URLError``.

The network is blocked for real (``socket.create_connection``, ``socket.socket.connect`` and ``urllib.request.urlopen``
raise) or ``LAVIS_LATENT_OFFLINE=1`` is set; every yaml is a real file under ``tmp_path``.
"""
import json
import os
import socket
import time
import urllib.error
import urllib.request

import pytest
import torch
import torch.hub
from lavis.common.registry import registry
from omegaconf import OmegaConf

from lavis_latent import train
from lavis_latent.common.config_check import ConfigError
from lavis_latent.common.offline_checks import OFFLINE_ENV, HostProbe, UnavailableFilesError, hub_cache_path
from lavis_latent.datasets.stock_datasets import dataset_file_problems

LAVIS_DATA = "https://storage.googleapis.com/sfr-vision-language-research/datasets"
ALBEF_PTH = "https://storage.googleapis.com/sfr-pcl-data-research/ALBEF/ALBEF.pth"
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
TASK = "latent_retrieval"
TINY = {"arch": "albef_latent_retrieval", "model_type": "tiny", "load_finetuned": False, "pretrained": None,
        "queue_size": 8}


class Built(Exception):
    """Raised by a patched task when it starts building datasets or a model."""


@pytest.fixture
def blocked(monkeypatch):
    """No network: every connection attempt raises (and is recorded); urllib raises ``URLError`` as offline."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise OSError("network blocked by the test")

    def no_urlopen(*args, **kwargs):
        calls.append(args)
        raise urllib.error.URLError("network blocked by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", no_urlopen)
    monkeypatch.delenv(OFFLINE_ENV, raising=False)
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)
    return calls


@pytest.fixture(params=["blocked", "env"])
def offline(request, blocked, monkeypatch):
    """Both ways of being offline: a blocked network (the host is probed once), or ``LAVIS_LATENT_OFFLINE=1`` (the
    network is never tried). Returns ``(mode, recorded connection attempts)``."""
    if request.param == "env":
        monkeypatch.setenv(OFFLINE_ENV, "1")
    return request.param, blocked


@pytest.fixture
def nothing_built(monkeypatch):
    """The task fails loudly as soon as it is asked to build datasets or the model."""
    task_cls = registry.get_task_class(TASK)

    def fail(what):
        def method(self, cfg):
            raise Built(what)
        return method

    monkeypatch.setattr(task_cls, "build_datasets", fail("datasets"))
    monkeypatch.setattr(task_cls, "build_model", fail("model"))


@pytest.fixture
def model_built_stops(monkeypatch):
    """The model's ``from_config`` raises ``Built('model')``: a run that gets there has passed every check and built
    its datasets."""
    for arch in ("albef_latent_retrieval", "albef_retrieval"):
        monkeypatch.setattr(registry.get_model_class(arch), "from_config",
                            classmethod(lambda cls, cfg: (_ for _ in ()).throw(Built("model"))))


@pytest.fixture
def local_data(tmp_path):
    """A training annotation file (one image, COCO karpathy train format), its image folder and an eval file."""
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(images / "a.jpg")
    train_json = tmp_path / "train.json"
    train_json.write_text(json.dumps([{"image": "a.jpg", "caption": "a red square", "image_id": i} for i in range(4)]))
    eval_json = tmp_path / "eval.json"
    eval_json.write_text(json.dumps([{"image": "a.jpg", "caption": ["a red square"]}]))
    return {"images": str(images), "train": str(train_json), "eval": str(eval_json)}


def write_yaml(tmp_path, dataset, annotations, images, model=TINY, **run):
    """A run yaml in ``tmp_path``: ``model`` (default a tiny ALBEF retrieval model), ``dataset`` with these
    annotation overrides and image folder, ``run`` keys over a one-epoch CPU run."""
    cfg = {
        "model": model,
        "datasets": {dataset: {
            "vis_processor": {s: {"name": "blip_image_eval", "image_size": 32} for s in ("train", "eval")},
            "text_processor": {s: {"name": "blip_caption"} for s in ("train", "eval")},
            "build_info": {"annotations": annotations, "images": {"storage": images}}}},
        "run": {"task": TASK, "lr_sched": "constant_lr", "init_lr": 1e-4, "weight_decay": 0.0, "max_epoch": 1,
                "batch_size_train": 4, "batch_size_eval": 4, "num_workers": 0, "train_splits": ["train"],
                "valid_splits": [], "test_splits": [], "k_test": 1, "seed": 0,
                "output_dir": str(tmp_path / "out"), "amp": False, "evaluate": False, "device": "cpu",
                "world_size": 1, "dist_url": "env://", "distributed": False, **run},
    }
    path = tmp_path / "run.yaml"
    OmegaConf.save(OmegaConf.create(cfg), path)
    return str(path)


def local(path):
    return {"url": path, "storage": path}


# ---------------------------------------------------------------------------------------------------------------------
# Dataset annotations
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", ["coco_retrieval", "coco_caption"])
def test_stock_builder_with_only_train_overridden_names_the_missing_split(
        session_cache_root, offline, nothing_built, local_data, tmp_path, dataset):
    mode, calls = offline
    yaml = write_yaml(tmp_path, dataset, {"train": local(local_data["train"])}, local_data["images"],
                      test_splits=["test"])
    with pytest.raises(UnavailableFilesError) as err:  # neither URLError nor Built
        train.main(["--cfg-path", yaml])
    message = str(err.value)
    assert isinstance(err.value, FileNotFoundError) and not isinstance(err.value, urllib.error.URLError)
    val_line = next(line for line in message.splitlines() if "split 'val'" in line)
    path = os.path.join(session_cache_root, "coco", "annotations", "coco_karpathy_val.json")
    assert val_line.startswith(f"- {dataset} annotation file for split 'val' not found: {path} ")
    assert f"{LAVIS_DATA}/coco_karpathy_val.json" in val_line
    assert f"config key datasets.{dataset}.build_info.annotations.val.storage = " in val_line
    # val is not used by this run: how to leave it out; test is used
    assert f"leave it out with datasets.{dataset}.build_info.annotations.val: null" in val_line
    assert "Split 'test' is used by this run (run.test_splits)" in message
    assert "split 'train'" not in message  # the local training file is fine
    if mode == "env":
        assert "LAVIS_LATENT_OFFLINE=1 is set, so the network is not tried" in val_line
        assert calls == []
    else:
        assert "storage.googleapis.com:443 cannot be reached (network blocked by the test)" in val_line
        assert calls == [(("storage.googleapis.com", 443),)]  # probed once for both URLs of the host


def test_null_split_is_left_out_and_the_run_gets_to_the_model(session_cache_root, blocked, model_built_stops,
                                                               local_data, tmp_path):
    anns = {"train": local(local_data["train"]), "val": None, "test": None}
    yaml = write_yaml(tmp_path, "coco_retrieval", anns, local_data["images"])
    with pytest.raises(Built, match="model"):
        cfg, *_ = train.build_run(train.parse_args(["--cfg-path", yaml]))
    assert blocked == []  # nothing to download, nothing tried

    # a null split the run uses is a config error naming both keys
    yaml = write_yaml(tmp_path, "coco_retrieval", anns, local_data["images"], valid_splits=["val"])
    with pytest.raises(ConfigError, match=r"datasets\.coco_retrieval\.build_info\.annotations\.val is null .*"
                                          r"run\.valid_splits"):
        train.main(["--cfg-path", yaml])


def test_reachable_host_is_left_to_lavis(session_cache_root, monkeypatch, blocked):
    class Connection:
        def close(self):
            pass

    opened = []
    def connect(address, timeout=None):
        opened.append(address)
        return Connection()

    monkeypatch.setattr(socket, "create_connection", connect)
    datasets = OmegaConf.create({"coco_retrieval": {"build_info": {
        "annotations": {s: {"url": f"{LAVIS_DATA}/x_{s}.json", "storage": f"nowhere/x_{s}.json"}
                        for s in ("train", "val")},
        "images": {"storage": str(session_cache_root)}}}})
    assert dataset_file_problems(datasets) == []  # LAVIS downloads them
    assert opened == [("storage.googleapis.com", 443)]


def test_probe_is_bounded_in_time(monkeypatch, blocked):
    monkeypatch.setattr(socket, "create_connection", lambda address, timeout=None: time.sleep(5))  # a hanging DNS
    start = time.monotonic()
    reason = HostProbe(timeout=0.2).unreachable("https://example.invalid/a.json")
    assert time.monotonic() - start < 2
    assert reason == "example.invalid:443 cannot be reached (no answer within 0.2 s)"


# ---------------------------------------------------------------------------------------------------------------------
# Model weights named by URL
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch, model_type, key, url, skip", [
    ("albef_latent_retrieval", "tiny", "model.pretrained", ALBEF_PTH,
     "model.load_pretrained: False (start from random weights)"),
    # LAVIS's own model and default config: load_finetuned True, the fine-tuned checkpoint's URL
    ("albef_retrieval", "coco", "model.finetuned",
     "https://storage.googleapis.com/sfr-vision-language-research/LAVIS/models/ALBEF/albef_coco_retrieval_lavis.pt",
     "model.load_finetuned: False (start from model.pretrained)"),
])
def test_checkpoint_url_offline_is_named_before_anything_is_built(
        session_cache_root, offline, nothing_built, monkeypatch, local_data, tmp_path, arch, model_type, key, url,
        skip):
    mode, calls = offline
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # a torch.hub.set_dir elsewhere would pin it
    # the plugin's tiny model given a URL; LAVIS's own model with nothing but its default config
    plugin = arch == "albef_latent_retrieval"
    model = {**TINY, "pretrained": url} if plugin else {"arch": arch, "model_type": model_type}
    annotations = {s: local(local_data["train" if s == "train" else "eval"]) for s in ("train", "val", "test")}
    yaml = write_yaml(tmp_path, "coco_retrieval", annotations, local_data["images"], model=model)
    with pytest.raises(UnavailableFilesError) as err:
        train.main(["--cfg-path", yaml])
    message = str(err.value)
    cached = os.path.join(str(tmp_path / "torch"), "hub", "checkpoints", os.path.basename(url))
    assert hub_cache_path(url) == cached
    assert message.startswith("1 file this run needs is missing and cannot be downloaded")
    assert (f"- model {arch} (model_type {model_type}): checkpoint {key} = {url} is not in LAVIS's download cache "
            f"({cached}) and cannot be downloaded: ") in message
    assert f"Download it on a machine with network and put it at {cached}, or set {key} to a local .pth file" in message
    assert skip in message
    assert ("LAVIS_LATENT_OFFLINE=1 is set" in message) == (mode == "env")
    assert len(calls) == (0 if mode == "env" else 1)


def test_checkpoint_in_the_download_cache_passes(session_cache_root, blocked, model_built_stops, monkeypatch,
                                                 local_data, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # a torch.hub.set_dir elsewhere would pin it
    yaml = write_yaml(tmp_path, "coco_retrieval", {"train": local(local_data["train"]), "val": None, "test": None},
                      local_data["images"], model={**TINY, "pretrained": ALBEF_PTH})
    os.makedirs(os.path.dirname(hub_cache_path(ALBEF_PTH)))
    open(hub_cache_path(ALBEF_PTH), "wb").close()
    with pytest.raises(Built, match="model"):  # checks passed, datasets built, the model is next
        train.main(["--cfg-path", yaml])
    assert blocked == []
