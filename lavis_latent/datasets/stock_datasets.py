"""Dataset files a run needs, checked before anything is built: what is missing, why LAVIS cannot fetch it, which
config key takes a local copy, and how to leave out a split the run does not use.

LAVIS's ``BaseDatasetBuilder._download_ann`` downloads every split listed in ``build_info.annotations`` whose
``storage`` file is missing (torchvision's ``download_url``: offline a raw ``URLError``), and a user yaml cannot
remove a split from a stock builder's defaults (OmegaConf merging never deletes a key; ``val: null`` merges to a
``None`` entry on which LAVIS's builder crashes). LAVIS never downloads images: a missing image folder only warns,
and the run fails later. Two stock builders point at files nobody outside Salesforce can reach
(:data:`UNREACHABLE_DEFAULTS`: ``snli_ve``, ``nlvr``); their errors say where the files come from.

* :func:`drop_null_splits` removes the annotation splits a run config sets to ``null``: with ``lavis_latent.train``
  (and ``evaluate``) ``datasets.<name>.build_info.annotations.<split>: null`` leaves a split out.
* :func:`dataset_file_problems` lists, for every dataset of the config: each annotation file that is missing at
  its ``storage`` path and cannot be fetched (its ``url`` is an http(s) URL whose host is unreachable, see
  :class:`~lavis_latent.common.offline_checks.HostProbe` and ``$LAVIS_LATENT_OFFLINE``, or neither a URL nor an
  existing file), for builders that download with LAVIS's ``_download_ann``; and, for LAVIS's own builders, a
  missing image folder.
* :func:`check_stock_dataset_files` raises them as one
  :class:`~lavis_latent.common.offline_checks.UnavailableFilesError` (a ``FileNotFoundError``).
"""
import os

from lavis.common.registry import registry
from lavis.datasets.builders.base_dataset_builder import BaseDatasetBuilder

from lavis_latent.common.config_check import ConfigError
from lavis_latent.common.offline_checks import PROBE_NOTE, HostProbe, Problem, is_http_url, raise_if_unavailable
from lavis_latent.datasets.storage import cache_root, config_entries, resolve_storage

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
#: LAVIS builders whose files the plugin checks elsewhere, in more detail (lavis_latent.datasets.imagenet)
OWN_CHECKS = ("imagenet",)
RUN_SPLIT_KEYS = ("train_splits", "valid_splits", "test_splits")
IMAGES_HINT = ("LAVIS never downloads images (the download scripts in LAVIS's repository, "
               "lavis/datasets/download_scripts, fetch some of them): put them there or set {key} to the folder that "
               "holds them.")


def _cache_root_note():
    return f"Relative storage paths are joined to LAVIS's cache_root ({cache_root()}; $LAVIS_CACHE_ROOT moves it)."


def _run_splits(run_cfg):
    """``{split: [run keys that name it]}`` for ``run.train_splits`` / ``valid_splits`` / ``test_splits``."""
    used = {}
    for key in RUN_SPLIT_KEYS:
        for split in (run_cfg.get(key) or []) if run_cfg is not None else []:
            used.setdefault(str(split), []).append(f"run.{key}")
    return used


def _annotations(dataset_cfg):
    return (dataset_cfg.get("build_info") or {}).get("annotations") or {}


def drop_null_splits(datasets_cfg, run_cfg=None):
    """Remove the annotation splits a run config sets to ``null`` (``datasets.<name>.build_info.annotations.<split>:
    null``), in place, so that LAVIS neither downloads nor builds them; returns ``{name: [dropped splits]}``.

    LAVIS itself cannot leave out a split its builder's default yaml lists: merging the user yaml over it cannot
    delete a key, and a ``null`` split makes ``BaseDatasetBuilder._download_ann`` fail with ``'NoneType' object has
    no attribute 'get'``.

    Raises:
        ConfigError: a dropped split is one the run uses (``run.train_splits`` / ``valid_splits`` /
            ``test_splits``) and no dataset of the config still provides it.
    """
    dropped = {}
    for name in datasets_cfg or {}:
        anns = _annotations(datasets_cfg[name])
        for split in [s for s in anns.keys() if anns.get(s) is None]:
            del anns[split]
            dropped.setdefault(name, []).append(str(split))
    used = _run_splits(run_cfg)
    for split, keys in used.items():
        null_in = [name for name, splits in dropped.items() if split in splits]
        if null_in and len(null_in) == len(datasets_cfg):
            raise ConfigError(
                f"datasets.{null_in[0]}.build_info.annotations.{split} is null (left out), but {' and '.join(keys)} "
                f"uses split {split!r}: give the split a url and storage, or take it out of {' and '.join(keys)}.")
    return dropped


def _uses_lavis_download(builder_cls, step):
    """Whether a builder downloads with LAVIS's own ``_download_data`` and ``step`` (``_download_ann`` /
    ``_download_vis``), i.e. whether it fetches (or only warns) exactly as ``BaseDatasetBuilder`` does."""
    return (builder_cls is not None
            and builder_cls._download_data is BaseDatasetBuilder._download_data
            and getattr(builder_cls, step) is getattr(BaseDatasetBuilder, step))


def _leave_out(name, split, used):
    """How to leave out a split, or why it must stay."""
    fix = f"datasets.{name}.build_info.annotations.{split}: null"
    if used is None:
        return f" If the run does not use split {split!r}, leave it out with {fix}."
    if split in used:
        return f" Split {split!r} is used by this run ({' and '.join(used[split])})."
    return (f" This run does not use split {split!r} (not in run.train_splits / valid_splits / test_splits): "
            f"leave it out with {fix}.")


def _annotation_problems(name, anns, used, probe):
    """Missing annotation files of one dataset that LAVIS cannot fetch, in config order: ``[(text, probed)]``
    (``probed``: an http(s) URL was found unreachable)."""
    problems = []
    for split in anns.keys():
        info = anns[split]
        if info is None:
            continue  # left out (drop_null_splits removes it before LAVIS sees it)
        key = f"datasets.{name}.build_info.annotations.{split}.storage"
        urls, storages = config_entries(info.get("url")), config_entries(info.get("storage"))
        if not storages:
            problems.append((f"{name} annotation split {split!r} names no file: {key} is not set. Set it to a local "
                             f"file (and .url to the same path).{_leave_out(name, split, used)}", False))
            continue
        first = True
        for i, storage in enumerate(storages):
            url = urls[i] if i < len(urls) else None
            path = resolve_storage(storage)
            where = key if isinstance(info.get("storage"), str) else f"{key}[{i}]"
            head = f"{name} annotation file for split {split!r} not found: {path} (config key {where} = {storage!r})"
            if url is None and len(urls) != len(storages):
                if os.path.isfile(path):
                    problems.append((f"{name} annotation split {split!r}: {where} names {path}, but "
                                     f"datasets.{name}.build_info.annotations.{split}.url has no entry for it; "
                                     "LAVIS's builder needs one url per storage entry: set the url to the same path.",
                                     False))
                    continue
                why = "it has no url, so LAVIS cannot fetch it"
            elif os.path.isfile(path) or (isinstance(url, str) and os.path.isfile(url)):
                continue  # in place, or LAVIS copies it from the local url
            elif is_http_url(url):
                reason = probe.unreachable(url)
                if reason is None:
                    continue  # reachable: LAVIS downloads it
                why = f"LAVIS would download it from {url}, but {reason}"
            else:
                why = f"its url {url!r} is neither an http(s) URL nor an existing file, so LAVIS cannot fetch it"
            text = (f"{head}; {why}. Put the file at that path, or set {where} to a local copy (LAVIS then uses it "
                    "and never downloads).")
            problems.append((text + (_leave_out(name, split, used) if first else ""), is_http_url(url)))
            first = False
    return problems


def _image_problem(name, dataset_cfg, build_info):
    """The missing image (or video, feature) folder of one dataset, or ``None``."""
    data_type = dataset_cfg.get("data_type", "images")
    vis = build_info.get(data_type) or {}
    storage = vis.get("storage")
    key = f"datasets.{name}.build_info.{data_type}.storage"
    if storage and os.path.exists(resolve_storage(storage)):
        return None
    what = "image folder" if data_type == "images" else f"{data_type} storage"
    where = resolve_storage(storage) if storage else "(not set)"
    return f"{name} {what} not found: {where} (config key {key} = {storage!r}). " + IMAGES_HINT.format(key=key)


def dataset_file_problems(datasets_cfg, run_cfg=None, probe=None):
    """Every dataset file of a run config that is missing and cannot be fetched, as a list of
    :class:`~lavis_latent.common.offline_checks.Problem` (empty when everything is in place or downloadable).

    Annotation files are checked for builders that download with LAVIS's ``_download_ann`` (the plugin's own
    builders generate or check their files themselves) and for :data:`UNREACHABLE_DEFAULTS`: a file is fine when it
    exists at its ``storage`` path, when its ``url`` is an existing local file (LAVIS copies it), or when its ``url``
    is an http(s) URL whose host answers (LAVIS downloads it); otherwise it is a problem naming the dataset, the split,
    the path, the URL and why it cannot be fetched, the config key that takes a local file, and how to leave the
    split out (``null``, see :func:`drop_null_splits`) when the run does not use it. The image folder
    (``build_info.<data_type>.storage``) must exist for LAVIS's own builders (LAVIS never downloads images), except
    those in :data:`OWN_CHECKS`.

    Args:
        datasets_cfg: the ``datasets`` node of a LAVIS run config (``Config.datasets_cfg``: user keys merged over
            each builder's defaults).
        run_cfg: the ``run`` node (which splits the run uses), or ``None`` when unknown.
        probe: a :class:`~lavis_latent.common.offline_checks.HostProbe` shared with the run's other checks (a new
            one when ``None``; ``$LAVIS_LATENT_OFFLINE=1`` makes every URL unreachable).
    """
    probe = probe or HostProbe()
    used = _run_splits(run_cfg) if run_cfg is not None else None
    problems = []
    for name in datasets_cfg or {}:
        cfg = datasets_cfg[name]
        build_info = cfg.get("build_info") or {}
        builder_cls = registry.get_builder_class(name)
        parts, hint = UNREACHABLE_DEFAULTS.get(name, ((), None))
        found = []  # (part, text, probed)
        if "annotations" in parts or _uses_lavis_download(builder_cls, "_download_ann"):
            found += [("annotations", text, probed)
                      for text, probed in _annotation_problems(name, _annotations(cfg), used, probe)]
        stock = builder_cls is not None and builder_cls.__module__.split(".")[0] == "lavis" and name not in OWN_CHECKS
        if "images" in parts or (stock and _uses_lavis_download(builder_cls, "_download_vis")):
            text = _image_problem(name, cfg, build_info)
            if text:
                found.append(("images", text, False))
        hinted = False
        for part, text, probed in found:
            if hint and not hinted and part in parts:  # the builder's own explanation, once
                text, hinted = f"{text} {hint}", True
            problems.append(Problem(text, (_cache_root_note(),) + ((PROBE_NOTE,) if probed else ())))
    return problems


def check_stock_dataset_files(datasets_cfg, run_cfg=None, probe=None):
    """Raise :class:`~lavis_latent.common.offline_checks.UnavailableFilesError` (a ``FileNotFoundError``) listing
    every problem :func:`dataset_file_problems` finds, each naming the missing path, its config key and where the
    file comes from; nothing when all files are in place or can be downloaded."""
    raise_if_unavailable(dataset_file_problems(datasets_cfg, run_cfg, probe))
