"""Files a run would download, checked before anything is built: stop with an error that says what to do offline.

LAVIS fetches what a config names by URL only when it gets to it: a dataset builder downloads every annotation
split whose ``storage`` file is missing (``BaseDatasetBuilder._download_ann``, torchvision's ``download_url``), a
model downloads its ``model.pretrained`` / ``model.finetuned`` checkpoint into torch hub's cache
(``lavis.common.dist_utils.download_cached_file``). Offline, either is a raw ``urllib.error.URLError`` traceback
that names neither the dataset nor the config key, after the datasets (or the model) have been half built.

This module decides, before anything is built, whether a URL can be fetched: :class:`HostProbe` opens one TCP
connection to the URL's host (or to the proxy ``$https_proxy`` / ``$http_proxy`` names), bounded to
:data:`CONNECT_TIMEOUT_S` seconds including name resolution, once per host. ``LAVIS_LATENT_OFFLINE=1``
(:data:`OFFLINE_ENV`) skips the network altogether: every URL then counts as unreachable (deterministic, for tests
and air-gapped machines). ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` are the HuggingFace hub's and play no part.

:func:`model_weight_problems` finds the checkpoint a model config would load and reports it when it is neither in
torch hub's cache nor reachable; the dataset side is :func:`lavis_latent.datasets.stock_datasets.dataset_file_problems`.
:func:`raise_if_unavailable` turns the problems of both into one :class:`UnavailableFilesError`.
"""
import os
import socket
import threading
import urllib.parse
import urllib.request
from collections import namedtuple

from lavis.common.registry import registry
from lavis.common.utils import is_url

OFFLINE_ENV = "LAVIS_LATENT_OFFLINE"
CONNECT_TIMEOUT_S = 3.0
_TRUE = ("1", "true", "yes", "on")

#: one missing file: ``text`` (one line: what, where, why, how to fix) and ``notes`` (footnotes shared by several
#: problems, printed once after the list)
Problem = namedtuple("Problem", "text notes")

PROBE_NOTE = (
    f"A URL counts as unreachable when its host (or the proxy that $https_proxy / $http_proxy names) does not "
    f"accept a TCP connection within {CONNECT_TIMEOUT_S:g} s; {OFFLINE_ENV}=1 skips the network altogether and "
    "treats every URL as unreachable.")


class UnavailableFilesError(FileNotFoundError):
    """Files a run needs are missing and cannot be downloaded; ``problems`` lists them (one line each)."""

    problems = ()


def offline_requested():
    """Whether ``$LAVIS_LATENT_OFFLINE`` asks to treat every URL as unreachable (``1``, ``true``, ``yes``, ``on``)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in _TRUE


def is_http_url(value):
    """Whether ``value`` is an ``http(s)://`` URL: LAVIS's own test (``lavis.common.utils.is_url``, which decides
    whether ``load_checkpoint`` downloads), for strings only."""
    return isinstance(value, str) and is_url(value)


def _proxy_for(scheme, host):
    """``(host, port)`` of the proxy urllib would use for ``scheme://host``, or ``None``."""
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if not parts.hostname:
        return None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def _connect(address, timeout):
    """``None`` when a TCP connection to ``address`` opens within ``timeout`` seconds (name resolution included),
    else the reason as text. The attempt runs in a daemon thread so that a hanging DNS lookup cannot stall the run."""
    outcome = []

    def attempt():
        try:
            socket.create_connection(address, timeout=timeout).close()
            outcome.append(None)
        except Exception as err:  # gaierror, timeout, refused (all OSError) or anything a patched socket raises
            outcome.append(str(err) or type(err).__name__)

    worker = threading.Thread(target=attempt, name=f"probe {address[0]}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        return f"no answer within {timeout:g} s"
    return outcome[0]


class HostProbe:
    """Whether a URL's host can be reached, asked once per host and port and remembered (one instance per run).

    Args:
        timeout: seconds one probe may take, name resolution included.
    """

    def __init__(self, timeout=CONNECT_TIMEOUT_S):
        self.timeout = timeout
        self._answers = {}

    def unreachable(self, url):
        """``None`` when ``url`` can be fetched as far as a cheap probe can tell (LAVIS may then download it), else
        why not, as text naming the host."""
        if offline_requested():
            return f"{OFFLINE_ENV}=1 is set, so the network is not tried"
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        host, port = parts.hostname, parts.port or (443 if scheme == "https" else 80)
        if not host:
            return "the URL names no host"
        proxy = _proxy_for(scheme, host)
        target = proxy or (host, port)
        if target not in self._answers:
            self._answers[target] = _connect(target, self.timeout)
        reason = self._answers[target]
        if reason is None:
            return None
        via = f" through the proxy {proxy[0]}:{proxy[1]}" if proxy else ""
        return f"{host}:{port} cannot be reached{via} ({reason})"


def hub_cache_path(url):
    """Where LAVIS's ``download_cached_file`` (timm's, into torch hub's cache) keeps the download of ``url``:
    ``<torch.hub.get_dir()>/checkpoints/<file name of the URL>`` (``$TORCH_HOME`` moves it)."""
    import torch.hub

    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(urllib.parse.urlsplit(url).path))


def _checkpoint_to_load(model_cfg, plugin_model):
    """``(key, value, how to skip it)`` of the checkpoint a model config makes the model load, or ``None``.

    LAVIS's ``load_checkpoint_from_config``: ``load_finetuned`` (default True) loads ``finetuned``, else
    ``pretrained``. The plugin's models (``lavis_latent.models.encoders.load_weights_from_config``): ``load_finetuned``
    defaults to False, and ``pretrained`` is loaded only when ``load_pretrained`` is not false.
    """
    if model_cfg.get("load_finetuned", not plugin_model):
        skip = "model.load_finetuned: False (start from model.pretrained)"
        return "model.finetuned", model_cfg.get("finetuned"), skip
    if plugin_model and not model_cfg.get("load_pretrained", True):
        return None
    skip = "model.load_pretrained: False (start from random weights)" if plugin_model else None
    return "model.pretrained", model_cfg.get("pretrained"), skip


def model_weight_problems(model_cfg, probe=None):
    """The checkpoint a model config loads, as a :class:`Problem` when it cannot be had; an empty list otherwise.

    A checkpoint named by an http(s) URL is a problem when it is not in torch hub's cache (:func:`hub_cache_path`)
    and its host is unreachable (:class:`HostProbe`, ``$LAVIS_LATENT_OFFLINE``); for the plugin's models a local
    path that does not exist is one too. LAVIS models whose ``from_config`` loads no checkpoint (``albef_pretrain``)
    leave ``load_finetuned`` unset and name no ``finetuned``, so nothing is checked for them.

    Args:
        model_cfg: the ``model`` node of a LAVIS run config (``Config.model_cfg``: the user's keys merged over the
            model type's defaults).
        probe: a :class:`HostProbe` shared with the other checks of the run (a new one when ``None``).
    """
    if model_cfg is None:
        return []
    arch, model_type = model_cfg.get("arch"), model_cfg.get("model_type")
    model_cls = registry.get_model_class(arch)
    plugin_model = model_cls is not None and model_cls.__module__.startswith("lavis_latent.")
    which = _checkpoint_to_load(model_cfg, plugin_model)
    if which is None or not which[1]:
        return []
    key, value, skip = which
    model = f"model {arch} (model_type {model_type})"
    fixes = f"set {key} to a local .pth file" + (f", or set {skip}" if skip else "")
    if not is_http_url(value):
        if plugin_model and not os.path.isfile(value):
            return [Problem(f"{model}: {key} = {value!r} is not a file and not an http(s) URL: {fixes}.", ())]
        return []
    cached = hub_cache_path(value)
    if os.path.isfile(cached):
        return []
    reason = (probe or HostProbe()).unreachable(value)
    if reason is None:
        return []  # reachable: LAVIS downloads it into the cache
    return [Problem(
        f"{model}: checkpoint {key} = {value} is not in LAVIS's download cache ({cached}) and cannot be downloaded: "
        f"{reason}. Download it on a machine with network and put it at {cached}, or {fixes}.", (PROBE_NOTE,))]


def raise_if_unavailable(problems):
    """Raise one :class:`UnavailableFilesError` listing ``problems`` (each on its own line, then their notes once);
    nothing when the list is empty."""
    if not problems:
        return
    notes = []
    for problem in problems:
        notes += [note for note in problem.notes if note not in notes]
    count = f"{len(problems)} file{'s' if len(problems) > 1 else ''}"
    lines = [f"{count} this run needs {'are' if len(problems) > 1 else 'is'} missing and cannot be downloaded "
             "(checked before building anything):"]
    lines += [f"- {problem.text}" for problem in problems]
    lines += notes
    err = UnavailableFilesError("\n".join(lines))
    err.problems = [problem.text for problem in problems]
    raise err
