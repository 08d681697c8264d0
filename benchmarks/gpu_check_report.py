"""The markdown of ``benchmarks.gpu_check`` (a list of lines) from its json-able report."""
from benchmarks import common

TITLES = {
    "albef": "2. ALBEF full size, batch {batch}: step time and peak memory vs LAVIS's AlbefPretrain (AMP)",
    "clip": "3. CLIP RN50 + BERT-base: train step at batch {batch}",
    "losses": "4. Each loss alone: forward + backward at N = {n}, D = 256",
    "torchrun": "5. torchrun, 1 process, {backend}",
}
QUICK_TITLES = {
    "albef": "2. ALBEF (quick: tiny size): step time and peak memory vs LAVIS's AlbefPretrain (AMP)",
    "clip": "3. CLIP (quick: tiny type): train step",
    "losses": "4. Each loss alone: forward + backward (quick: small N), D = 256",
    "torchrun": "5. torchrun, 1 process, {backend}",
}
ALBEF_METHOD = (
    "Method: LAVIS's `AlbefPretrain` (only `init_tokenizer` overridden for the local vocabulary) and "
    "`albef_latent_pretrain` without a `latent:` block (`none`) and with the blocks of `projects/albef_*.yaml` "
    "(ALBEF's default augmented view: one more momentum-encoder pass over the batch's second view), built as in "
    "`benchmarks.cost` on one pair of online encoders with the same weights and batch. A step is what LAVIS's runner "
    "does with `run.amp: True`: forward under autocast, `scaler.scale(loss).backward()`, `scaler.step(AdamW)`, "
    "`scaler.update()`; AdamW runs at learning rate 0 (the same kernels; the shared weights stay put, so the base "
    "ITC/ITM/MLM losses of every variant stay comparable with LAVIS's). Rounds run every variant once in a shuffled "
    "order; warm-up rounds (more while a GradScaler still backs off) are dropped; the time ratio is taken within "
    "each round, median [q1, q3] over rounds. "
    "Peak memory = the model's parameters and buffers + AdamW's state + the step's peak allocation above what was "
    "allocated before it ({memory}), with the momentum weights owned by the model.")
CLIP_METHOD = (
    "Method: `clip_latent` with the `base_loss` / `latent:` of `projects/clip/clip_{{baseline,fs,bb,gc}}.yaml` on one "
    "pair of random towers (ResNet-50 and BERT-base with its 30522-word table at full size; captions tokenized with "
    "the local vocabulary), one batch of random images and short captions with their augmented views, already on the "
    "device; the same AMP step, rounds and memory as section 2. `baseline` (CLIP's loss) encodes the batch once, the "
    "others (the paper's L_Con) also the augmented view: twice the encoder work.")
NOTES = [
    "- GradScaler starts at scale 65536 and halves it at every step whose float16 gradients overflow, skipping that "
    "optimizer step (cheaper than a real one): the warm-up goes on while any scaler still does so, and the "
    "`optimizer steps skipped` columns count the skipped steps among the measured ones (0 is what a fair timing "
    "needs).",
    "- The models are randomly initialised (offline): step time and memory depend on the shapes, not on the values.",
]


def fmt(x, spec=".3f"):
    return "-" if x is None else format(x, spec)


def mib(b):
    return "-" if b is None else f"{b / 2**20:,.0f}"


def machine_lines(m, device):
    rows = []
    if device.startswith("cuda"):
        rows += [("GPU", f"{m['gpu']} ({m['gpu_memory_gib']} GiB, compute capability {m['compute_capability']}; "
                         f"{m['gpu_count']} visible)"),
                 ("CUDA (torch build) / cuDNN / NCCL", f"{m['cuda']} / {m['cudnn']} / {m['nccl']}"),
                 ("driver", m.get("driver") or "unknown"),
                 ("cuDNN settings", m.get("cudnn_settings", "-"))]
    else:
        rows.append(("GPU", "none: CPU dry run (--device cpu)"))
    rows += [("torch", f"{m['torch']} (CPU threads: {m['torch_threads']})"),
             ("LAVIS / transformers / timm", f"{m['salesforce-lavis']} / {m['transformers']} / {m['timm']}"),
             ("Python", m["python"]),
             ("CPU", f"{m['cpu']}, {m['logical_cores']} logical cores"
                     + (f", {m['memory_gib']} GiB RAM" if "memory_gib" in m else "")),
             ("load average at start", common.format_load(m["load_average"]))]
    return ["## 1. Machine", ""] + common.markdown_table(["", ""], rows) + [""]


def albef_lines(res, memory):
    lavis = res["variants"]["lavis"]
    head = (f"{res['size']} size, batch {res['batch']}, {res['image_size']} px, {res['amp']} + AdamW; "
            f"rounds: {res['rounds']} measured, {res['warmup_rounds']} warm-up"
            + (", cut short by the time budget" if res["cut_by_budget"] else "")
            + f"; models built in {res['build_seconds']:.0f} s. LAVIS's step: {lavis['step_ms']['median']:.1f} ms "
              f"({lavis['samples_per_s']:.1f} samples/s), peak {mib(lavis['peak_bytes'])} MiB.")
    rows = [(v, fmt(e["time_ratio"]["median"]), f"[{fmt(e['time_ratio']['q1'])}, {fmt(e['time_ratio']['q3'])}]",
             f"{e['step_ms']['median']:.1f}", f"{e['samples_per_s']:.1f}", fmt(e["memory_ratio"]),
             mib(e["peak_bytes"]), e["skipped_optimizer_steps"], f"{e['max_base_loss_diff_vs_lavis']:.1e}")
            for v, e in res["variants"].items()]
    headers = ["variant", "time ratio vs LAVIS (median)", "IQR", "step ms (median)", "samples/s",
               "peak memory ratio vs LAVIS", "peak MiB", "optimizer steps skipped", "max base-loss diff vs LAVIS"]
    return [head, ""] + common.markdown_table(headers, rows) + ["", ALBEF_METHOD.format(memory=memory), ""]


def clip_lines(res, memory):
    base = res["variants"]["baseline"]
    head = (f"`{res['model_type']}`, batch {res['batch']}, {res['image_size']} px, {res['amp']} + AdamW; "
            f"rounds: {res['rounds']} measured, {res['warmup_rounds']} warm-up"
            + (", cut short by the time budget" if res["cut_by_budget"] else "")
            + f". Baseline: {base['samples_per_s']:.1f} samples/s, peak {mib(base['peak_bytes'])} MiB.")
    rows = [(v, f"{e['base_loss']}" + (" + " + ", ".join(e["latent"]) if e["latent"] else ""),
             f"{e['step_ms']['median']:.1f}", f"[{e['step_ms']['q1']:.1f}, {e['step_ms']['q3']:.1f}]",
             f"{e['samples_per_s']:.1f}", fmt(e["time_ratio"]["median"]), mib(e["peak_bytes"]),
             fmt(e["memory_ratio"]), e["skipped_optimizer_steps"])
            for v, e in res["variants"].items()]
    headers = ["variant", "loss", "step ms (median)", "IQR ms", "samples/s", "time ratio vs baseline", "peak MiB",
               "peak memory ratio vs baseline", "optimizer steps skipped"]
    return [head, ""] + common.markdown_table(headers, rows) + ["", CLIP_METHOD.format(memory=memory), ""]


def losses_lines(res, cuda):
    rows = [(name, f"{v['ms']['median']:.3g}", f"[{v['ms']['q1']:.3g}, {v['ms']['q3']:.3g}]",
             mib(v["peak_bytes"]) if cuda else "n/a (CPU)") for name, v in res["losses"].items()]
    head = (f"N = {res['n']}, D = 256 (encoder width 768 for the separation heads), random unit features; median of "
            f"{res['repeats']} interleaved repeats after one warm-up (float32: the regularizers switch autocast off).")
    return [head, ""] + common.markdown_table(["loss", "ms per call (median)", "IQR", "peak MiB above inputs"],
                                              rows) + [""]


def torchrun_lines(res):
    w = res["worker"] or {}
    rows = [("launch", f"`{res['command']}`"),
            ("result", "ok" if res["ok"] else f"FAILED (return code {res['returncode']})"),
            ("backend / world size / wrapper", f"{w.get('backend', '-')} / {w.get('world_size', '-')} / "
                                               f"{w.get('ddp', '-')}"),
            ("gather with gradient (all_gather + all_reduce)", "ok" if w.get("gather_with_grad_ok") else "FAILED"),
            ("training steps (tiny clip_latent, fs + bb + gc)",
             ", ".join(f"{t:.1f}" for t in w.get("step_ms", [])) + f" ms ({w.get('amp', '-')}; "
             f"{w.get('skipped_optimizer_steps', '-')} skipped by GradScaler)"),
            ("losses finite / weights moved", f"{w.get('losses_finite')} / {w.get('weights_moved')}"),
            ("wall time: whole launch / worker",
             f"{res['wall_seconds']:.1f} s / {fmt(w.get('worker_seconds'), '.1f')} s")]
    if w.get("nccl_version"):
        rows.append(("NCCL", w["nccl_version"]))
    lines = common.markdown_table(["check", "result"], rows) + [""]
    if w.get("error"):
        lines += [f"Worker error: `{w['error']}`", ""]
    if res.get("output_tail"):
        lines += ["```", res["output_tail"].rstrip(), "```", ""]
    return lines


def markdown(report):
    """The markdown report (list of lines) from the json-able ``report``."""
    quick, device = report["quick"], report["device"]
    cuda = device.startswith("cuda")
    memory = ("CUDA max_memory_allocated" if cuda
              else "CPU: peak RSS during the step minus the RSS before it, as benchmarks.cost")
    statuses = [e["status"] for e in report["sections"].values()]
    lines = ["# GPU check", "", f"Command: `{report['command']}`  ",
             "Mode: " + ("quick dry run at tiny sizes: the numbers exercise the code, they measure nothing  "
                         if quick else "full sizes  "),
             f"Result: {statuses.count('ok')} of {len(statuses)} sections ok"
             + (f", {statuses.count('failed')} FAILED" if "failed" in statuses else "")
             + (f", {statuses.count('skipped')} skipped by the time budget" if "skipped" in statuses else "")
             + f"; {report['total_seconds']:.0f} s of the {report['budget_s']:.0f} s budget", ""]
    lines += machine_lines(report["machine"], device)
    for name, entry in report["sections"].items():
        title = (QUICK_TITLES if quick else TITLES)[name].format(backend="nccl" if cuda else "gloo",
                                                                 **report["plans"][name])
        lines += [f"## {title}", ""]
        if entry["status"] == "skipped":
            lines += [f"_{entry['note']}_", ""]
            continue
        if entry["status"] == "failed" and "result" not in entry:
            lines += [f"**FAILED** after {entry['seconds']:.0f} s: `{entry['error']}`", ""]
            continue
        res = entry["result"]
        lines += {"albef": lambda: albef_lines(res, memory), "clip": lambda: clip_lines(res, memory),
                  "losses": lambda: losses_lines(res, cuda), "torchrun": lambda: torchrun_lines(res)}[name]()
    return lines + ["## Notes", ""] + NOTES + [""]
