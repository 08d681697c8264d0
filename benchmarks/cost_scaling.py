"""Part 2 of ``benchmarks.cost``: each loss alone (forward + backward) as the batch grows, its log-log plot with
O(N) and O(N^2) guide lines, and the log-log slopes."""
import math
import time

import torch
import torch.nn.functional as F

from benchmarks import common
from benchmarks.common import log

SCALING_NS = (64, 128, 256, 512, 1024, 2048, 4096)
SCALING_D = 256
SCALING_ENCODER_WIDTH = 768  # input width of FeatureSeparation's heads (ALBEF base: ViT-B / BERT-base CLS)


def loss_functions(d, width, device):
    """name -> callable(inputs) returning a scalar loss; inputs from :func:`loss_inputs`."""
    from lavis_latent.regularizers import (FeatureSeparation, brownian_bridge_loss, contrastive_loss,
                                           geometric_consistency_loss, orthogonal_loss, uniformity_loss)

    torch.manual_seed(0)
    heads = FeatureSeparation(width, width, d).to(device)
    heads_m = heads.momentum_copy()

    def separation(x):
        zvi, zti = heads(x["h_v"], x["h_t"])
        with torch.no_grad():
            zvia, ztia = heads_m(x["h_v_aug"], x["h_t_aug"])
        return heads.loss(x["z_v"], x["z_t"], zvi, zti, zvia, ztia)

    return {
        "contrastive (ITC: V2T+T2V)": lambda x: contrastive_loss(x["z_v"], x["z_t"]),
        "contrastive + in-modal (4 terms)": lambda x: contrastive_loss(x["z_v"], x["z_t"], x["z_v_aug"], x["z_t_aug"]),
        "brownian_bridge_loss": lambda x: brownian_bridge_loss(x["z_v"], x["z_t"], x["z_v_aug"]),
        "geometric_consistency_loss": lambda x: geometric_consistency_loss(x["z_v"], x["z_t"], x["z_v_aug"],
                                                                           x["z_t_aug"]),
        "FeatureSeparation.loss (with heads)": separation,
        "orthogonal_loss": lambda x: orthogonal_loss(x["z_v"], x["z_v_ind"]),
        "uniformity_loss": lambda x: uniformity_loss(x["z_v_ind"]),
    }


def loss_inputs(n, d, width, device, seed=0):
    """Random inputs of batch ``n``: unit features [n, d] (online ones need grad), encoder features [n, width]."""
    g = torch.Generator().manual_seed(seed)

    def unit(requires_grad):
        return F.normalize(torch.randn(n, d, generator=g), dim=-1).to(device).requires_grad_(requires_grad)

    def enc(requires_grad):
        return torch.randn(n, width, generator=g).to(device).requires_grad_(requires_grad)

    return {"z_v": unit(True), "z_t": unit(True), "z_v_aug": unit(False), "z_t_aug": unit(False),
            "z_v_ind": unit(True), "h_v": enc(True), "h_t": enc(True), "h_v_aug": enc(False),
            "h_t_aug": enc(False)}


def measure_scaling(ns, d, repeats, device, width=SCALING_ENCODER_WIDTH):
    """Part 2: forward + backward seconds of each loss alone at each batch size (median of ``repeats``, one
    warm-up; the losses interleaved within each repeat)."""
    device = torch.device(device)
    fns = loss_functions(d, width, device)
    out = {name: {} for name in fns}
    for n in ns:
        x = loss_inputs(n, d, width, device)
        samples = {name: [] for name in fns}
        for r in range(repeats + 1):
            for name, fn in fns.items():
                for t in x.values():
                    t.grad = None
                common.synchronize(device)
                t0 = time.perf_counter()
                fn(x).backward()
                common.synchronize(device)
                if r > 0:
                    samples[name].append(time.perf_counter() - t0)
        for name in fns:
            out[name][str(n)] = common.summary([s * 1e3 for s in samples[name]])
        log(f"scaling N={n}: " + ", ".join(f"{name.split(' ')[0]} {out[name][str(n)]['median']:.2f} ms"
                                          for name in fns))
        del x
    return out


def plot_scaling(scaling, ns, path):
    """Log-log plot of time vs N per loss, with O(N) and O(N^2) guide lines; returns ``path``."""
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for name, per_n in scaling.items():
        ax.plot(ns, [per_n[str(n)]["median"] for n in ns], marker="o", label=name)
    big = max(max(per_n[str(ns[-1])]["median"] for per_n in scaling.values()), 1e-3)
    n_max = ns[-1]
    ax.plot(ns, [big * n / n_max for n in ns], "k:", lw=1, label="O(N) guide")
    ax.plot(ns, [big * (n / n_max) ** 2 for n in ns], "k--", lw=1, label="O(N$^2$) guide")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(f"batch size N (D = {SCALING_D})")
    ax.set_ylabel("forward + backward time, ms (median)")
    ax.set_title("Cost of each loss alone")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return common.save_png(fig, path)


def slopes(scaling, ns):
    """Log-log slope of each loss's median time between the two largest batch sizes (1: O(N), 2: O(N^2))."""
    if len(ns) < 2:
        return {}
    a, b = ns[-2], ns[-1]
    return {name: math.log(per_n[str(b)]["median"] / per_n[str(a)]["median"]) / math.log(b / a)
            for name, per_n in scaling.items()}
