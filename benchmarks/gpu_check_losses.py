"""Each loss alone for ``benchmarks.gpu_check``: forward + backward of every regularizer term of
``benchmarks.cost_scaling`` and of the open_clip-style ``LatentStructureLoss`` with every regularizer, at one batch
size N (D = 256), interleaved, median of repeats after one warm-up; CUDA also gives each call's peak memory."""
import time

import torch

from benchmarks import common
from benchmarks.cost_scaling import SCALING_D, SCALING_ENCODER_WIDTH, loss_functions, loss_inputs
from benchmarks.gpu_check_steps import step_peak_bytes

#: the ``latent:`` block of the LatentStructureLoss timed here: every regularizer at its defaults
ALL_REGULARIZERS = {"inmodal": {}, "separation": {}, "bridge": {}, "geometric": {}}
STRUCTURE_LOSS = "LatentStructureLoss (CLIP loss + all four)"


def all_loss_functions(d, width, device):
    """:func:`benchmarks.cost_scaling.loss_functions` plus the ``LatentStructureLoss`` with every regularizer
    (its separation heads map the augmented view with gradient, as in CLIP)."""
    from lavis_latent.regularizers import LatentStructureLoss

    fns = loss_functions(d, width, device)
    torch.manual_seed(0)
    structure = LatentStructureLoss(ALL_REGULARIZERS, image_dim=width, text_dim=width, embed_dim=d).to(device)

    def structure_loss(x):
        return structure(x["z_v"], x["z_t"], 1 / 0.07, x["z_v_aug"], x["z_t_aug"], image_embeds=x["h_v"],
                         text_embeds=x["h_t"], image_embeds_aug=x["h_v_aug"], text_embeds_aug=x["h_t_aug"])

    fns[STRUCTURE_LOSS] = structure_loss
    return fns


def measure_losses(n, repeats, device, deadline, d=SCALING_D, width=SCALING_ENCODER_WIDTH):
    """``{loss: {"ms": summary, "peak_bytes": bytes or None}}`` of forward + backward at batch ``n``; repeats stop
    early (after two) once ``deadline`` (a ``time.perf_counter`` value) is past."""
    device = torch.device(device)
    fns = all_loss_functions(d, width, device)
    x = loss_inputs(n, d, width, device)
    samples = {name: [] for name in fns}

    def call(fn):
        for t in x.values():
            t.grad = None
        fn(x).backward()

    for r in range(repeats + 1):
        for name, fn in fns.items():
            common.synchronize(device)
            t0 = time.perf_counter()
            call(fn)
            common.synchronize(device)
            if r > 0:
                samples[name].append(time.perf_counter() - t0)
        if r >= 2 and time.perf_counter() > deadline:
            break
    peak = {name: step_peak_bytes(lambda: call(fn), device) if device.type == "cuda" else None
            for name, fn in fns.items()}
    out = {name: {"ms": common.summary([s * 1e3 for s in samples[name]]), "peak_bytes": peak[name]}
           for name in fns}
    common.log(f"losses N={n}: " + ", ".join(f"{name.split(' ')[0]} {v['ms']['median']:.2f} ms"
                                             for name, v in out.items()))
    return out
