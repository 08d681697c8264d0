"""LAVIS dataset builders for the embedded demo world (:mod:`lavis_latent.datasets.demo_data`).

=================  =====================================  =====================================================
builder name       LAVIS builder it subclasses            dataset classes (train / eval)
=================  =====================================  =====================================================
``demo_retrieval`` ``coco_retrieval``                     RetrievalDataset / RetrievalEvalDataset
``demo_caption``   ``coco_caption``                       CaptionDataset / COCOCapEvalDataset (pretraining)
``demo_vqa``       ``coco_vqa``                           COCOVQADataset / COCOVQAEvalDataset
``demo_nlvr``      ``nlvr``                               NLVRDataset / NLVREvalDataset
``demo_snli_ve``   ``snli_ve``                            SNLIVisualEntialmentDataset (both)
=================  =====================================  =====================================================

Each default yaml (``lavis_latent/configs/datasets/demo_<task>/defaults.yaml``) declares every split with storage
paths relative to LAVIS's ``cache_root`` (under ``lavis_latent_demo/``), processors for a 64 px model, and a
``build_info.generator`` block with the :func:`~lavis_latent.datasets.demo_data.generate` parameters. So
``datasets: {demo_retrieval: {}}`` in a user yaml just works: on the main process ``_download_data`` generates the
world when it is missing or was generated with other parameters (instead of LAVIS's download), and ``build`` checks
every annotation file, the image folder and every referenced image before LAVIS builds the datasets.
"""
import json
import logging
import os

from lavis.common.registry import registry
from lavis.datasets.builders.classification_builder import NLVRBuilder, SNLIVisualEntailmentBuilder
from lavis.datasets.builders.retrieval_builder import COCORetrievalBuilder
from lavis.datasets.builders.vqa_builder import COCOVQABuilder
from omegaconf import OmegaConf

from lavis_latent.common.paths import config_path
from lavis_latent.datasets import demo_data

# lavis/datasets/builders/caption_builder.py defines two classes named COCOCapBuilder (the second is the "nocaps"
# builder, eval only) so importing the name gives the wrong one: take coco_caption's class from the registry.
COCOCapBuilder = registry.get_builder_class("coco_caption")

GENERATOR_CONTROL_KEYS = ("enabled", "root")

# root -> params of the generated data (demo worlds, digits) the builders of this process have generated or checked
_GENERATED_IN_USE = {}


def _cache_root():
    return registry.get_path("cache_root")


def resolve_storage(path):
    """A storage path as LAVIS resolves it: absolute paths pass through, relative ones are joined to ``cache_root``."""
    path = os.path.expanduser(str(path))
    if os.path.isabs(path):
        return path
    return os.path.join(os.path.expanduser(_cache_root()), path)


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _referenced_images(ann_path, image_suffix=""):
    """Image paths (relative to the image folder) referenced by a LAVIS annotation list; [] for other json."""
    try:
        with open(ann_path) as f:
            rows = json.load(f)
    except (OSError, ValueError):
        return []
    out = []
    if isinstance(rows, list):
        for row in rows:
            if not isinstance(row, dict):
                continue
            if isinstance(row.get("image"), str):
                out.append(row["image"] + image_suffix)
            for img in row.get("images", []) if isinstance(row.get("images"), list) else []:
                out.append(img + image_suffix)
    return out


def check_annotation_files(builder_config, name=None, check_images=False, image_suffix="", hint=None):
    """Check up front that a LAVIS builder config's files exist; raise ``FileNotFoundError`` naming what is missing.

    Works for any LAVIS builder config (a dataset node such as ``cfg.datasets_cfg.coco_retrieval``): every
    ``build_info.annotations.<split>.storage`` entry (a path or a list of paths) and the visual folder
    ``build_info.<data_type>.storage``, resolved as LAVIS resolves them (relative paths are joined to
    ``cache_root``). With ``check_images`` every image named in the annotation lists (``"image"`` or ``"images"``
    entries, plus ``image_suffix``: ``".jpg"`` for SNLI-VE, whose dataset appends it) must exist as well; LAVIS itself
    only warns at build time and crashes later in ``__getitem__``.

    Args:
        builder_config: the dataset config node (OmegaConf or dict) with ``build_info``.
        name: the dataset name, used to spell the config key in messages (``datasets.<name>.build_info...``).
        check_images: also check every referenced image file.
        image_suffix: appended to each referenced image name.
        hint: an extra sentence for the error message (how to fix it for this dataset).

    Returns:
        ``{"annotations": {split: [absolute paths]}, "images": absolute folder}``.
    """
    cfg = OmegaConf.create(builder_config) if isinstance(builder_config, dict) else builder_config
    prefix = f"datasets.{name}." if name else ""
    build_info = cfg.get("build_info")
    if build_info is None:
        raise KeyError(f"{prefix or 'dataset config '}build_info is missing: nothing says where the data lives")
    data_type = cfg.get("data_type", "images")
    fix = (f" Relative paths are joined to LAVIS's cache_root ({_cache_root()}; set $LAVIS_CACHE_ROOT or call "
           f"lavis_latent.common.paths.set_cache_root to move it).")
    if hint:
        fix = " " + hint + fix

    result = {"annotations": {}, "images": None}
    anns = build_info.get("annotations") or {}
    for split in anns.keys():
        storage = anns[split].get("storage") if anns[split] is not None else None
        entries = _as_list(storage)
        key = f"{prefix}build_info.annotations.{split}.storage"
        if not entries:
            raise FileNotFoundError(f"{key} is not set: split {split!r} names no annotation file.{fix}")
        resolved = []
        for i, entry in enumerate(entries):
            path = resolve_storage(entry)
            if not os.path.isfile(path):
                where = key if isinstance(storage, str) else f"{key}[{i}]"
                raise FileNotFoundError(
                    f"annotation file for split {split!r} not found: {path} (config key {where} = {entry!r}).{fix}")
            resolved.append(path)
        result["annotations"][split] = resolved

    vis = build_info.get(data_type)
    key = f"{prefix}build_info.{data_type}.storage"
    if vis is None or vis.get("storage") is None:
        raise FileNotFoundError(f"{key} is not set: no folder for the {data_type}.{fix}")
    folder = resolve_storage(vis.get("storage"))
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"{data_type} folder not found: {folder} (config key {key} = {vis.get('storage')!r}).{fix}")
    result["images"] = folder

    if check_images:
        for split, paths in result["annotations"].items():
            for ann_path in paths:
                for rel in _referenced_images(ann_path, image_suffix):
                    if not os.path.isfile(os.path.join(folder, rel)):
                        raise FileNotFoundError(
                            f"image {os.path.join(folder, rel)} named in {ann_path} (split {split!r}) does not exist "
                            f"(images are read from config key {key} = {vis.get('storage')!r}).{fix}")
    return result


def generator_settings(builder_config, validate=None, what="demo world"):
    """``(enabled, absolute root, params)`` of a builder config's ``build_info.generator`` block.

    ``params`` are the generator's keyword arguments, validated and normalised by ``validate`` (default
    :func:`~lavis_latent.datasets.demo_data.world_params`, for :func:`~lavis_latent.datasets.demo_data.generate`);
    ``(False, None, None)`` when the block is absent or ``enabled: false``. Raises ``ValueError`` naming the config
    key on an unknown parameter; ``what`` names the data in messages.
    """
    gen = builder_config.get("build_info", {}).get("generator")
    if gen is None:
        return False, None, None
    gen = OmegaConf.to_container(gen, resolve=True) if not isinstance(gen, dict) else dict(gen)
    if not gen.get("enabled", True):
        return False, None, None
    root = gen.get("root")
    if not root:
        raise ValueError(f"build_info.generator.root is not set: the folder (relative to cache_root) of the {what}")
    params = {k: v for k, v in gen.items() if k not in GENERATOR_CONTROL_KEYS}
    try:
        params = (validate or demo_data.world_params)(**params)
    except ValueError as e:
        raise ValueError(f"build_info.generator: {e}") from None
    return True, resolve_storage(root), params


def _declared_paths(builder_config):
    build_info = builder_config.build_info
    paths = []
    anns = build_info.get("annotations") or {}
    for split in anns.keys():
        paths.extend(resolve_storage(p) for p in _as_list(anns[split].get("storage")))
    vis = build_info.get(builder_config.get("data_type", "images"))
    if vis is not None and vis.get("storage") is not None:
        paths.append(resolve_storage(vis.get("storage")))
    return paths


def _is_under(path, root):
    path, root = os.path.abspath(path), os.path.abspath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class GeneratedDataMixin:
    """``prepare_demo_data`` for a builder whose data a generator writes under ``build_info.generator.root``.

    A subclass names its generator: ``generate_data(root, **params)`` (idempotent; returns the paths), the
    ``generator_params`` validator of the config block, and ``generated_what`` for messages.
    """

    name = None  # registered name, for messages
    generated_what = "demo world"
    generator_params = staticmethod(demo_data.world_params)
    generate_data = staticmethod(demo_data.generate)

    def prepare_demo_data(self):
        """Generate the data when the config's files live under ``build_info.generator.root`` and it is missing or
        was generated with other parameters; returns the generator's paths dict (``None`` if not generating)."""
        enabled, root, params = generator_settings(self.config, self.generator_params, self.generated_what)
        if not enabled:
            return None
        if not any(_is_under(p, root) for p in _declared_paths(self.config)):
            return None  # the config points at other data: nothing to generate
        previous = _GENERATED_IN_USE.get(root)
        if previous is not None and previous != params:
            logging.warning(
                "%s: regenerating the %s in %s with different parameters than another dataset of this process "
                "used (%s -> %s); give each parameter set its own build_info.generator.root", self.name,
                self.generated_what, root, previous, params)
        paths = self.generate_data(root, **params)
        _GENERATED_IN_USE[root] = params
        return paths


class DemoBuilderMixin(GeneratedDataMixin):
    """Generation and up-front checks shared by the demo builders (mixed in before a LAVIS builder class)."""

    image_suffix = ""  # appended to annotation image names by the dataset class (SNLI-VE: ".jpg")
    check_images = True  # every referenced image must exist (off under run.skip_bad_images: they are dropped)

    @classmethod
    def default_config_path(cls, type="default"):
        """Absolute path of the default yaml (LAVIS would join a relative one to its own package root)."""
        return cls.DATASET_CONFIG_DICT[type]

    def check_files(self):
        """:func:`check_annotation_files` on this builder's config, with images and a demo-specific hint."""
        return check_annotation_files(
            self.config, name=self.name, check_images=self.check_images, image_suffix=self.image_suffix,
            hint=("Demo data is generated into build_info.generator.root when build_info.generator.enabled is true and "
                  "the storage paths lie under that root; otherwise point the key at an existing file."))

    def _download_data(self):
        # LAVIS calls this on the main process only, then barriers: generate instead of downloading
        self.prepare_demo_data()
        self.check_files()

    def _download_ann(self):
        self.prepare_demo_data()

    def _download_vis(self):
        pass

    def build(self):
        """Check every file up front (on every rank), then LAVIS's own ``build``."""
        self.check_files()
        return super().build()


@registry.register_builder("demo_retrieval")
class DemoRetrievalBuilder(DemoBuilderMixin, COCORetrievalBuilder):
    """Image-text retrieval on the demo world (COCO karpathy format)."""

    name = "demo_retrieval"
    DATASET_CONFIG_DICT = {"default": config_path("datasets", "demo_retrieval", "defaults.yaml")}


@registry.register_builder("demo_caption")
class DemoCaptionBuilder(DemoBuilderMixin, COCOCapBuilder):
    """Image-caption pairs for ALBEF / CLIP pretraining (``image_text_pretrain``) on the demo world."""

    name = "demo_caption"
    DATASET_CONFIG_DICT = {"default": config_path("datasets", "demo_caption", "defaults.yaml")}


@registry.register_builder("demo_vqa")
class DemoVQABuilder(DemoBuilderMixin, COCOVQABuilder):
    """VQA on the demo world; val/test carry the official VQA files, so LAVIS's vqa task reports ``agg_metrics``
    and per answer type (``shared`` / ``image_only``) accuracies."""

    name = "demo_vqa"
    DATASET_CONFIG_DICT = {"default": config_path("datasets", "demo_vqa", "defaults.yaml")}


@registry.register_builder("demo_nlvr")
class DemoNLVRBuilder(DemoBuilderMixin, NLVRBuilder):
    """NLVR2-style statements about pairs of demo scenes."""

    name = "demo_nlvr"
    DATASET_CONFIG_DICT = {"default": config_path("datasets", "demo_nlvr", "defaults.yaml")}


@registry.register_builder("demo_snli_ve")
class DemoSNLIVEBuilder(DemoBuilderMixin, SNLIVisualEntailmentBuilder):
    """SNLI-VE-style entailment on demo scenes (neutral = a text-only fact the image cannot confirm)."""

    name = "demo_snli_ve"
    image_suffix = ".jpg"
    DATASET_CONFIG_DICT = {"default": config_path("datasets", "demo_snli_ve", "defaults.yaml")}


DEMO_BUILDERS = {
    cls.name: cls
    for cls in (DemoRetrievalBuilder, DemoCaptionBuilder, DemoVQABuilder, DemoNLVRBuilder, DemoSNLIVEBuilder)
}

# ---------------------------------------------------------------------------------------------------------------------
# LAVIS builders whose default config points at files nobody outside Salesforce can reach
# ---------------------------------------------------------------------------------------------------------------------
#: builder name -> (which parts LAVIS cannot fetch, where a user puts the files)
UNREACHABLE_DEFAULTS = {
    "snli_ve": (
        ("annotations", "images"),
        "SNLI-VE: LAVIS's default annotation 'url's are internal Salesforce paths, so nothing is downloaded. Put "
        "ve_train.json, ve_dev.json and ve_test.json (LAVIS's format, a json list of {\"image\": <Flickr30k image "
        "id without .jpg>, \"sentence\", \"label\": entailment|neutral|contradiction}, as in ALBEF's data release) "
        "at datasets.snli_ve.build_info.annotations.<split>.storage (default snli/annotations/ve_<split>.json under "
        "the cache root) and the Flickr30k images in datasets.snli_ve.build_info.images.storage (default "
        "flickr30k/images/flickr30k-images).",
    ),
    "nlvr": (
        ("images",),
        "NLVR2: LAVIS's default image folder is an internal Salesforce path (the annotations do download). Put "
        "the NLVR2 images (https://lil.nlp.cornell.edu/nlvr/) in one folder, laid out as the annotation files' "
        "relative image paths say, and set datasets.nlvr.build_info.images.storage to it (projects/albef/nlvr_*.yaml: "
        "nlvr2/images under the cache root).",
    ),
}


def _downloadable(url):
    return isinstance(url, str) and (url.startswith(("http://", "https://")) or os.path.isfile(url))


def check_stock_dataset_files(datasets_cfg):
    """Fail early, saying where the files go, when a LAVIS builder in ``UNREACHABLE_DEFAULTS`` lacks its data.

    For ``snli_ve`` every annotation file whose ``url`` LAVIS could not fetch (not http(s), not an existing file)
    must already sit at its ``storage`` path, and the image folder must exist; for ``nlvr`` the image folder must
    exist (LAVIS itself downloads the annotations, only warns about a missing image folder and then crashes in
    ``__getitem__``). Other builders are not checked.

    Args:
        datasets_cfg: the ``datasets`` node of a LAVIS run config (``Config.datasets_cfg``: user keys merged over
            each builder's defaults).

    Raises:
        FileNotFoundError: naming the missing path, its config key and where the files come from.
    """
    for name in datasets_cfg or {}:
        if name not in UNREACHABLE_DEFAULTS:
            continue
        parts, hint = UNREACHABLE_DEFAULTS[name]
        cfg = datasets_cfg[name]
        build_info = cfg.get("build_info") or {}
        fix = f" {hint} Relative paths are joined to LAVIS's cache_root ({_cache_root()}; $LAVIS_CACHE_ROOT moves it)."
        if "annotations" in parts:
            anns = build_info.get("annotations") or {}
            for split in anns.keys():
                urls = _as_list(anns[split].get("url"))
                storages = _as_list(anns[split].get("storage"))
                for i, storage in enumerate(storages):
                    url = urls[i] if i < len(urls) else None
                    path = resolve_storage(storage)
                    if not _downloadable(url) and not os.path.isfile(path):
                        key = f"datasets.{name}.build_info.annotations.{split}.storage"
                        raise FileNotFoundError(
                            f"{name} annotation file for split {split!r} not found: {path} (config key {key} = "
                            f"{storage!r}; its url {url!r} cannot be downloaded).{fix}")
        if "images" in parts:
            data_type = cfg.get("data_type", "images")
            vis = build_info.get(data_type) or {}
            storage = vis.get("storage")
            key = f"datasets.{name}.build_info.{data_type}.storage"
            if not storage or not os.path.isdir(resolve_storage(storage)):
                where = resolve_storage(storage) if storage else "(not set)"
                raise FileNotFoundError(f"{name} image folder not found: {where} (config key {key} = {storage!r}).{fix}")
