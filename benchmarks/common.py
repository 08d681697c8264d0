"""Small helpers shared by the benchmarks: the offline environment, LAVIS's registry with the plugin registered,
progress lines, robust statistics, process memory, machine description, markdown / json output and matplotlib PNGs
(Agg backend, no display needed).

Nothing here imports LAVIS or torch at import time; they are imported lazily where needed.
"""
import ctypes
import importlib
import json
import math
import os
import platform
import re
import shlex
import sys
import time

_START = time.perf_counter()


# -- environment and LAVIS's registry ----------------------------------------------------------------------------
def offline_environment(**extra):
    """Default the Hugging Face libraries to offline mode (``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE``) and set
    the ``extra`` variables, each only where the environment does not set it already; call before they import."""
    for name, value in dict(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **extra).items():
        os.environ.setdefault(name, value)


def plugin_registry():
    """LAVIS's registry with LAVIS's and the plugin's models, processors, tasks and builders registered (importing
    ``lavis_latent`` registers them)."""
    importlib.import_module("lavis_latent")
    from lavis.common.registry import registry

    return registry


def default_model_config(model_name, model_type="tiny"):
    """The ``model`` section (an OmegaConf node) of registered model ``model_name``'s default yaml of
    ``model_type``."""
    from omegaconf import OmegaConf

    cls = plugin_registry().get_model_class(model_name)
    return OmegaConf.load(cls.default_config_path(model_type)).model


def build_registered_model(model_name, *overrides, model_type="tiny"):
    """Registered model ``model_name`` built by its ``from_config`` from its default ``model_type`` config merged
    with each of ``overrides`` (dicts or OmegaConf nodes, later ones win)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.merge(default_model_config(model_name, model_type), *overrides)
    return plugin_registry().get_model_class(model_name).from_config(cfg)


# -- progress ----------------------------------------------------------------------------------------------------
def log(msg):
    """Print one progress line ``[  12.3 s] msg`` (seconds since this module was imported), flushed at once."""
    print(f"[{time.perf_counter() - _START:7.1f} s] {msg}", flush=True)


# -- statistics --------------------------------------------------------------------------------------------------
def quantile(values, q):
    """The q-quantile (0 <= q <= 1) of ``values`` with linear interpolation (numpy's default); NaN if empty."""
    xs = sorted(float(v) for v in values)
    if not xs:
        return float("nan")
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summary(values):
    """``{"median", "q1", "q3", "iqr", "min", "max", "n"}`` of a list of numbers (NaN entries if empty)."""
    q1, med, q3 = quantile(values, 0.25), quantile(values, 0.5), quantile(values, 0.75)
    return {"median": med, "q1": q1, "q3": q3, "iqr": q3 - q1,
            "min": min(values) if values else float("nan"), "max": max(values) if values else float("nan"),
            "n": len(values)}


# -- device timing -----------------------------------------------------------------------------------------------
def synchronize(device):
    """Wait for queued work on ``device`` (a ``torch.device`` or string): ``torch.cuda.synchronize`` on CUDA."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


# -- process memory (Linux) --------------------------------------------------------------------------------------
def _status_kib(field):
    try:
        with open("/proc/self/status") as f:
            m = re.search(rf"^{field}:\s+(\d+)\s+kB", f.read(), re.M)
        return int(m.group(1)) if m else None
    except OSError:
        return None


def rss_bytes():
    """Resident set size of this process in bytes (``VmRSS``), or None where /proc is unavailable."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def peak_rss_bytes():
    """Peak resident set size of this process since start or the last :func:`reset_peak_rss` (``VmHWM``)."""
    kib = _status_kib("VmHWM")
    return None if kib is None else kib * 1024


def reset_peak_rss():
    """Reset the kernel's peak-RSS mark (``VmHWM``) to the current RSS (Linux >= 4.0, ``/proc/self/clear_refs``).

    Returns True on success, False where the kernel or the sandbox refuses it.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def release_free_memory():
    """Hand glibc's free heap pages back to the OS (``malloc_trim(0)``), so the RSS shows live memory only.

    Returns True if it ran (glibc), False otherwise.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


# -- machine -----------------------------------------------------------------------------------------------------
def cpu_model():
    """The CPU model name from /proc/cpuinfo (or ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average():
    """The 1-, 5- and 15-minute load averages (None where unsupported)."""
    try:
        return tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        return None


def machine_info(device="cpu"):
    """A dict describing the machine and stack: CPU model, logical cores, memory, torch version and threads,
    device name (the GPU's on CUDA), Python, platform and load average."""
    import torch

    info = {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": load_average(),
        "device": str(device),
    }
    try:
        with open("/proc/meminfo") as f:
            kib = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
        info["memory_gib"] = round(kib / 2**20, 1)
    except (OSError, AttributeError):
        pass
    if torch.device(device).type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
    return info


def format_load(load):
    """``(1.2, 0.9, 0.5)`` from a load-average tuple or list (as json gives it back); ``unknown`` for None."""
    return "unknown" if load is None else "(" + ", ".join(f"{x:g}" for x in load) + ")"


def machine_description(info):
    """One line for a report from :func:`machine_info`'s dict."""
    dev = info.get("device_name", info["device"])
    mem = f", {info['memory_gib']} GiB RAM" if "memory_gib" in info else ""
    return (f"{info['cpu']}, {info['logical_cores']} logical cores{mem}; torch {info['torch']} with "
            f"{info['torch_threads']} thread(s); device {dev}; Python {info['python']}; "
            f"load average {format_load(info['load_average'])}")


def command_line(module=None, argv=None):
    """The command line as a user would type it: ``python -m <module> <argv>`` when ``module`` is given (``argv``
    defaults to ``sys.argv[1:]``), else the command that started this process."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if module is None:
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        head = ["python", "-m", spec.name] if spec is not None and spec.name else ["python", sys.argv[0]]
    else:
        head = ["python", "-m", module]
    return " ".join(head + [shlex.quote(a) for a in argv])


# -- output ------------------------------------------------------------------------------------------------------
def markdown_table(headers, rows):
    """A GitHub markdown table (list of lines) from ``headers`` and ``rows`` (lists of cells, any type)."""
    lines = ["| " + " | ".join(str(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def write_text(path, lines):
    """Write ``lines`` (a list of strings) to ``path`` with newlines, creating the folder; returns ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines).rstrip("\n") + "\n")
    return path


def _jsonable(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None  # strict JSON has no NaN / inf
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def write_json(path, obj):
    """Write ``obj`` as indented strict JSON (NaN / inf become null), creating the folder; returns ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(_jsonable(obj), f, indent=1)
        f.write("\n")
    return path


def pyplot():
    """``matplotlib.pyplot`` with the non-interactive Agg backend (for PNGs on a machine without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path, dpi=120):
    """Save a matplotlib figure as a PNG (creating the folder), close it, and return ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return path
