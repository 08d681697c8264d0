"""LAVIS builders whose default config points at files nobody outside Salesforce can reach (``snli_ve``, ``nlvr``):
fail early, saying where the files go."""
import os

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


def _downloadable(url):
    return isinstance(url, str) and (url.startswith(("http://", "https://")) or os.path.isfile(url))


def _check_annotations(name, build_info, fix):
    """Every annotation file whose ``url`` cannot be fetched must already be at its ``storage`` path."""
    anns = build_info.get("annotations") or {}
    for split in anns.keys():
        urls = config_entries(anns[split].get("url"))
        storages = config_entries(anns[split].get("storage"))
        for i, storage in enumerate(storages):
            url = urls[i] if i < len(urls) else None
            path = resolve_storage(storage)
            if not _downloadable(url) and not os.path.isfile(path):
                key = f"datasets.{name}.build_info.annotations.{split}.storage"
                raise FileNotFoundError(
                    f"{name} annotation file for split {split!r} not found: {path} (config key {key} = "
                    f"{storage!r}; its url {url!r} cannot be downloaded).{fix}")


def _check_image_folder(name, cfg, build_info, fix):
    """The image folder (``build_info.<data_type>.storage``) must exist."""
    data_type = cfg.get("data_type", "images")
    vis = build_info.get(data_type) or {}
    storage = vis.get("storage")
    key = f"datasets.{name}.build_info.{data_type}.storage"
    if not storage or not os.path.isdir(resolve_storage(storage)):
        where = resolve_storage(storage) if storage else "(not set)"
        raise FileNotFoundError(f"{name} image folder not found: {where} (config key {key} = {storage!r}).{fix}")


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
        fix = f" {hint} Relative paths are joined to LAVIS's cache_root ({cache_root()}; $LAVIS_CACHE_ROOT moves it)."
        if "annotations" in parts:
            _check_annotations(name, build_info, fix)
        if "images" in parts:
            _check_image_folder(name, cfg, build_info, fix)
