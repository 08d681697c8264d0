"""Evidence that tells a gain from noise: every regularizer against its own base, on the same seeds and data, with
paired 95 % confidence intervals and a verdict per measure.

Both frameworks train in-process on one embedded world (``benchmarks/clip_world.py``, ``benchmarks/albef_world.py``;
2,000 training images x 3 captions, 1,000 test images x 3 captions):

* **CLIP** (tiny ``clip_latent``): the base is the paper's base loss ``L_Con`` (``inmodal``, ``base_loss: paper``);
  ``plain`` is CLIP's loss, compared with ``inmodal`` (what the in-modal terms do).
* **ALBEF** (tiny ``albef_latent_pretrain``, ITC + ITM + MLM, the demo's settings): the base is ALBEF with the
  in-modal term (``inmodal``); ``plain`` is LAVIS's ALBEF, compared with ``inmodal``.
* Each regularizer on top of the base at three weights: ``fs`` (separation), ``bb`` (bridge), ``gc`` (geometric
  consistency under ``normalization: paper``, whose 1/N double sums grow with the batch, so its weights are
  smaller) and ``gcm`` (geometric consistency under ``normalization: mean``).
* The information-gap knob (CLIP): the base and each regularizer at its middle weight at ``info_gap`` 0, 0.5, 1.

Measures (test split): retrieval R@1 / R@5 both ways where a hit is an item with the query's shared facts (shape,
colour, position: all a caption can say about an image, so about 14 test images are indistinguishable per caption),
zero-shot top-1 of shape and colour (prompt ensembles written like the captions), linear probes of the shared,
image-only and text-only facts on ``z`` and on ``[z, +]`` (``[z, z^i]`` for separation, ``[z, c]`` for every other
row: ``c`` an untrained head of the same width, the same-size control), and the modality gap (mean paired distance,
centroid distance). Every comparison is paired by seed (:mod:`benchmarks.paired`).

Runs are stored under a key of their exact configuration (:mod:`benchmarks.run_store`): a rerun computes only what
is missing, and processes sharing one ``--store`` split the work (``--workers 2`` starts two).

    python -m benchmarks.evidence --workers 2          # the full run (about 2 h 20 min on 2 cores)
    python -m benchmarks.evidence --quick              # a few minutes: a tiny grid, incl. the known-answer rows
    python -m benchmarks.evidence --render-only        # tables and plots from the stored runs

Writes ``evidence.md``, ``evidence.json`` and ``evidence.png`` under ``--output-dir``.
"""
import argparse
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Dict, List, Optional

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from benchmarks import paired  # noqa: E402
from benchmarks.common import command_line, log, machine_description, machine_info, pyplot, save_png  # noqa: E402
from benchmarks.common import write_json, write_text  # noqa: E402
from benchmarks.run_store import RunStore, run_key  # noqa: E402

VERSION = 1  # part of every run's key: bump when a change to the code changes what a run computes

#: (result key, column title, direction: +1 higher is better, -1 lower is better, 0 neither)
MEASURES = [
    ("txt_r1_shared", "txt R@1", 1),
    ("img_r1_shared", "img R@1", 1),
    ("txt_r5_shared", "txt R@5", 1),
    ("img_r5_shared", "img R@5", 1),
    ("zs_shape_ens", "ZS shape", 1),
    ("zs_color_ens", "ZS colour", 1),
    ("probe_shared[z]", "probe shared z", 1),
    ("probe_image_only[z]", "probe img-only z", 1),
    ("probe_image_only[z+]", "probe img-only [z,+]", 1),
    ("probe_text_only[z+]", "probe txt-only [z,+]", 1),
    ("gap_paired_distance", "gap paired", 0),
    ("gap_centroid_distance", "gap centroid", 0),
]
DOWNSTREAM_MEASURES = [("vqa_acc", "VQA acc", 1), ("nlvr_acc", "NLVR2 acc", 1), ("snli_ve_acc", "SNLI-VE acc", 1)]
README_MEASURES = ("txt_r1_shared", "img_r1_shared", "zs_color_ens", "probe_image_only[z]", "probe_image_only[z+]",
                   "probe_text_only[z+]", "gap_paired_distance")
REGULARIZERS = {"fs": ("separation", {}), "bb": ("bridge", {}), "gc": ("geometric", {"normalization": "paper"}),
                "gcm": ("geometric", {"normalization": "mean"})}


@dataclass
class Row:
    """One configuration of the grid, run at every seed. ``base``: the row it is compared with (same framework and
    information gap), or None. ``lr_scale`` and ``replica`` exist for the known-answer rows of ``--quick``."""

    framework: str
    info_gap: float
    name: str
    base: Optional[str]
    latent: Dict = field(default_factory=dict)
    base_loss: str = "paper"
    lr_scale: float = 1.0
    replica: int = 0
    stage: str = "pretrain"  # or "downstream": the row's pretrained checkpoints fine-tuned on VQA, NLVR2, SNLI-VE

    @property
    def label(self):
        suffix = "" if self.stage == "pretrain" else f" [{self.stage}]"
        return f"{self.framework} gap {self.info_gap:g} {self.name}{suffix}"

    def base_row(self):
        """The row this one is compared with (only its identity: framework, gap, name, stage)."""
        return Row(self.framework, self.info_gap, self.base, None, stage=self.stage)


@dataclass
class Settings:
    """The size of a benchmark: seeds, steps, world, weights, which frameworks and information gaps."""

    seeds: List[int]
    frameworks: List[str]
    world: Dict
    clip: Dict
    albef: Dict
    weights: Dict[str, List[float]]  # CLIP's, and ALBEF's unless albef_weights says otherwise
    main_gap: float
    sweep_gaps: List[float]
    known_answer_rows: bool = False
    #: ALBEF downstream: the fine-tuning world (the benchmark world's first images), extra runner options, and the
    #: rows fine-tuned (the base and each regularizer at its middle weight)
    downstream: Dict = field(default_factory=dict)
    downstream_rows: List[str] = field(default_factory=list)
    albef_weights: Optional[Dict[str, List[float]]] = None
    #: framework -> {measure: why}: measures the base does not learn at this size, left out of the verdicts (their
    #: values stay in the absolute tables)
    not_learned: Dict[str, Dict[str, str]] = field(default_factory=dict)

    def weights_of(self, framework: str) -> Dict[str, List[float]]:
        """The regularizer weights swept in ``framework``."""
        return self.albef_weights if framework == "albef" and self.albef_weights is not None else self.weights


FULL = Settings(
    seeds=[0, 1, 2, 3, 4],
    frameworks=["clip", "albef"],
    world={"seed": 0, "num_train": 2000, "num_val": 50, "num_test": 1000},
    clip={"steps": 250, "batch_size": 32, "lr": 1e-3, "weight_decay": 0.1},
    # plain ALBEF's ITC stays near chance (ln 80) on this world at 200 and at 600 steps; with the in-modal term (the
    # base of every regularizer) it learns by 300 (see the README); 300 keeps the whole benchmark within 3 hours
    albef={"steps": 300, "batch_size": 16, "lr": 1e-3, "weight_decay": 0.02},
    weights={"fs": [0.1, 0.3, 1.0], "bb": [0.1, 0.3, 1.0], "gc": [0.03, 0.1, 0.3], "gcm": [0.1, 0.3, 1.0]},
    albef_weights={"fs": [0.1, 0.3, 1.0], "bb": [0.1, 0.3, 1.0], "gc": [0.03, 0.1, 0.3], "gcm": [0.3]},
    main_gap=0.5,
    sweep_gaps=[0.0, 1.0],
    downstream={"world": {"num_train": 400, "num_val": 50, "num_test": 300}, "options": []},
    downstream_rows=["inmodal", "fs w=0.3", "bb w=0.3", "gc w=0.1"],
    not_learned={
        "clip": {"zs_shape_ens": "at info_gap 0.5 and 1 the tiny ResNet tower barely learns shape (a linear probe "
                                 "of shape on the base's z: 36 %, chance 25 %; colour and position: 100 %), so "
                                 "zero-shot shape sits near chance (27 %); at info_gap 0, with no image-only facts "
                                 "drawn, it reaches 60 %"},
        "albef": {"zs_shape_ens": "the tiny ViT does not learn shape in 300 steps either: zero-shot shape stays at "
                                  "chance (26 %, chance 25 %) for every row"},
    },
)
QUICK = Settings(
    seeds=[0, 1, 2],
    frameworks=["clip", "albef"],
    world={"seed": 0, "num_train": 120, "num_val": 10, "num_test": 60},
    clip={"steps": 40, "batch_size": 16, "lr": 3e-3, "weight_decay": 0.1},
    albef={"steps": 4, "batch_size": 8, "lr": 1e-3, "weight_decay": 0.02},
    weights={"bb": [1.0]},
    main_gap=0.5,
    sweep_gaps=[],
    known_answer_rows=True,
    downstream={"world": {"num_train": 24, "num_val": 6, "num_test": 6},
                "options": ["run.max_epoch=1", "run.batch_size_train=8"]},
    downstream_rows=["inmodal", "bb w=1"],
)


def _latent(short, weight, inmodal):
    name, extra = REGULARIZERS[short]
    block = {name: dict(weight=weight, **extra)}
    if inmodal:
        block["inmodal"] = {"weight": 1.0}
    return block


def grid(settings: Settings) -> List[Row]:
    """The rows of a benchmark: per framework the base, ``plain`` and each regularizer at each weight at the main
    information gap; for CLIP, the base and each regularizer at its middle weight at each sweep gap; with
    ``known_answer_rows``, an exact replica of the CLIP base and a ``broken`` one (learning rate 0)."""
    rows, sweep = [], []
    for fw in settings.frameworks:
        albef = fw == "albef"
        # inmodal is compared with plain (what the in-modal terms do); every regularizer with inmodal
        rows += [Row(fw, settings.main_gap, "plain", None, latent={}, base_loss="clip"),
                 Row(fw, settings.main_gap, "inmodal", "plain", latent={"inmodal": {"weight": 1.0}} if albef else {})]
        for short, weights in settings.weights_of(fw).items():
            rows += [Row(fw, settings.main_gap, f"{short} w={w:g}", "inmodal", latent=_latent(short, w, albef))
                     for w in weights]
        if settings.known_answer_rows and not albef:
            rows += [Row(fw, settings.main_gap, "inmodal replica", "inmodal", replica=1),
                     Row(fw, settings.main_gap, "broken (lr 0)", "inmodal", lr_scale=0.0)]
        if not albef:
            for gap in settings.sweep_gaps:
                sweep.append(Row(fw, gap, "inmodal", None))
                for short, weights in settings.weights.items():
                    w = _middle(weights)
                    sweep.append(Row(fw, gap, f"{short} w={w:g}", "inmodal", latent=_latent(short, w, False)))
    downstream = [replace(r, stage="downstream", base=r.base if r.base in settings.downstream_rows else None)
                  for r in rows if r.framework == "albef" and r.name in settings.downstream_rows]
    return rows + downstream + sweep


def middle_weight_names(settings: Settings, framework: str) -> List[str]:
    """The row names of each regularizer at its middle weight (the downstream and information-gap rows)."""
    return [f"{short} w={_middle(weights):g}" for short, weights in settings.weights_of(framework).items()]


def _middle(weights: List[float]) -> float:
    return weights[len(weights) // 2]


def run_order(settings: Settings, rows: List[Row]) -> List[Row]:
    """``rows`` in the order they are computed, so that an interrupted benchmark has the most telling part: the
    references and each regularizer at its middle weight (ALBEF: the rows fine-tuned downstream), then the downstream
    tasks, the other weights, the information-gap sweep."""
    def priority(row):
        if row.info_gap != settings.main_gap:
            return 3
        if row.stage == "downstream":
            return 1
        if row.framework == "albef":  # plain and the downstream rows' pretraining first
            return 0 if row.base is None or row.name in settings.downstream_rows else 2
        return 0 if row.base in (None, "plain") or row.name in middle_weight_names(settings, row.framework) else 2

    return sorted(rows, key=priority)  # stable: the grid's order within a priority


def spec(row: Row, seed: int, settings: Settings) -> Dict:
    """The exact configuration of one run (its store key is a hash of this). A downstream run holds its
    pretraining run's spec under ``pretrain``."""
    if row.stage == "downstream":
        world = dict(settings.world, **settings.downstream["world"], info_gap=row.info_gap)
        pretrain = spec(replace(row, stage="pretrain"), seed, settings)
        return {"version": VERSION, "stage": "downstream", "pretrain": pretrain, "world": world,
                "options": list(settings.downstream.get("options", [])), "seed": seed}
    train = dict(getattr(settings, row.framework))
    train["lr"] = train["lr"] * row.lr_scale
    out = {"version": VERSION, "framework": row.framework, "world": dict(settings.world, info_gap=row.info_gap),
           "train": train, "latent": row.latent, "seed": seed}
    if row.framework == "clip":
        out["base_loss"] = row.base_loss
    if row.replica:
        out["replica"] = row.replica
    return out


_WORLDS = {}


def _world(cache_root, world_spec):
    from benchmarks import clip_world

    key = run_key(world_spec)
    if key not in _WORLDS:
        _WORLDS.clear()  # one world in memory at a time
        _WORLDS[key] = clip_world.load_world(cache_root, **world_spec)
    return _WORLDS[key]


def compute_downstream(run: Dict, store: RunStore, cache_root: str) -> Dict:
    """Fine-tune and test VQA, NLVR2 and SNLI-VE from the pretraining run's checkpoint (pretraining it again, with
    the same seed, if its checkpoint is gone); returns ``{"<task>_acc": %, "seconds"}``."""
    from benchmarks import albef_finetune
    from lavis_latent.common.paths import set_cache_root

    started = time.time()
    ckpt = checkpoint_path(store, run["pretrain"])
    if not os.path.isfile(ckpt):
        compute(run["pretrain"], cache_root, ckpt)
    set_cache_root(cache_root)
    out = os.path.join(store.root, "downstream", run_key(run))
    res = {}
    for task in albef_finetune.TASKS:
        res[f"{task}_acc"] = albef_finetune.finetune(task, ckpt, run["world"], out, run["seed"], run["options"])["acc"]
    res["seconds"] = time.time() - started
    return res


def compute(run: Dict, cache_root: str, checkpoint: Optional[str] = None) -> Dict:
    """Train and evaluate one run spec; returns its measures, final loss terms and seconds. ALBEF's pretrained
    weights are saved to ``checkpoint`` (LAVIS's ``{"model": state_dict}``) when given, for the downstream tasks."""
    import torch

    from benchmarks import albef_world, clip_world

    started = time.time()
    world = _world(cache_root, run["world"])
    train = run["train"]
    if run["framework"] == "clip":
        model, terms = clip_world.train_clip(world, base_loss=run["base_loss"], latent=run["latent"],
                                             seed=run["seed"], **train)
        res = clip_world.evaluate_clip(model, world, control_seed=run["seed"])
    else:
        model, terms = albef_world.train_albef(world, latent=run["latent"], seed=run["seed"], **train)
        res = albef_world.evaluate_albef(model, world, control_seed=run["seed"])
        if checkpoint:
            os.makedirs(os.path.dirname(checkpoint), exist_ok=True)
            torch.save({"model": model.state_dict()}, checkpoint + ".tmp")
            os.replace(checkpoint + ".tmp", checkpoint)
    clip_world.add_plus_views(res)
    res["final_losses"] = terms
    res["seconds"] = time.time() - started
    return res


def _worlds(settings: Settings) -> List[Dict]:
    """The generator parameters of every world the grid reads (pretraining, and downstream fine-tuning)."""
    return [spec(row, settings.seeds[0], settings)["world"] for row in grid(settings)]


def checkpoint_path(store: RunStore, run: Dict) -> str:
    """Where a run's pretrained weights go: ``<store>/checkpoints/<run key>.pth``."""
    return os.path.join(store.root, "checkpoints", run_key(run) + ".pth")


def run_pending(settings: Settings, store: RunStore, cache_root: str) -> int:
    """Compute every run of the grid that is neither stored nor claimed by another process; returns how many."""
    import torch

    torch.set_num_threads(1)
    runs = [spec(r, s, settings) for r in run_order(settings, grid(settings)) for s in settings.seeds]
    unique = list({run_key(r): r for r in runs}.values())
    done, started = 0, time.time()
    for run in store.pending(unique):
        try:
            if run.get("stage") == "downstream":
                res = compute_downstream(run, store, cache_root)
            else:
                res = compute(run, cache_root, checkpoint_path(store, run) if run["framework"] == "albef" else None)
        except BaseException:
            store.release(run)
            raise
        store.put(run, res)
        done += 1
        stored = store.results()
        left = sum(run_key(r) not in stored for r in unique)
        rate = (time.time() - started) / done
        log(f"[pid {os.getpid()}] {_describe(run)}: {_headline(res)} ({res['seconds']:.0f} s); {left} runs left, "
            f"about {left * rate / 60:.0f} min at this process's pace")
    return done


def _describe(run):
    if run.get("stage") == "downstream":
        return "downstream of " + _describe(run["pretrain"])
    parts = [f"{k}:{v}" for k, v in sorted(run["latent"].items())] or ["(no latent)"]
    if run.get("base_loss") == "clip":
        parts.append("clip loss")
    return f"{run['framework']} gap {run['world']['info_gap']:g} seed {run['seed']} " + " ".join(parts)


def _headline(res):
    if "vqa_acc" in res:
        return " ".join(f"{t} {res[k]:.1f}" for k, t, _ in DOWNSTREAM_MEASURES)
    return f"txt R@1 {res['txt_r1_shared']:.1f}"


def measures(stage: str):
    """The measures of a stage: ``(key, title, direction)`` triples."""
    return DOWNSTREAM_MEASURES if stage == "downstream" else MEASURES


# -- analysis ------------------------------------------------------------------------------------------------------
def collect(settings: Settings, store: RunStore):
    """``{row label: [result per seed]}`` of the rows whose every seed is stored (others are left out)."""
    stored = store.results()
    out = {}
    for row in grid(settings):
        results = [stored.get(run_key(spec(row, s, settings))) for s in settings.seeds]
        if all(r is not None for r in results):
            out[row.label] = [r["result"] for r in results]
    return out


def analyse(settings: Settings, results: Dict[str, List[Dict]]) -> List[Dict]:
    """One entry per (row with a base, measure): the paired comparison, with Holm marks over the whole family."""
    cells = []
    for row in grid(settings):
        if row.base is None or row.label not in results:
            continue
        base_label = row.base_row().label
        if base_label not in results:
            continue
        for key, title, direction in measures(row.stage):
            if key in settings.not_learned.get(row.framework, {}):
                continue
            x = [r.get(key) for r in results[row.label]]
            y = [r.get(key) for r in results[base_label]]
            if any(v is None or v != v for v in x + y):
                continue  # a measure the world does not have at this gap (no image-only facts at 0)
            cells.append({"row": row.label, "framework": row.framework, "info_gap": row.info_gap, "name": row.name,
                          "stage": row.stage, "base": row.base, "measure": key, "title": title,
                          "comparison": paired.compare(x, y, direction)})
    paired.holm([c["comparison"] for c in cells])
    return cells


def _mean_ci(values):
    from scipy import stats

    vals = [v for v in values if v is not None and v == v]
    n = len(vals)
    if n == 0:
        return float("nan"), float("nan"), 0
    mean = sum(vals) / n
    if n == 1:
        return mean, float("inf"), 1
    sd = (sum((v - mean) ** 2 for v in vals) / (n - 1)) ** 0.5
    return mean, float(stats.t.ppf(0.975, n - 1)) * sd / n ** 0.5, n


def _digits(key):
    return 3 if key.startswith("gap") else 1


def absolute_table(rows, results, framework, gap, stage="pretrain"):
    """``(head, body)`` of the mean ± 95 % half-width table of one framework, information gap and stage."""
    head = ["model"] + [t for _, t, _ in measures(stage)]
    body = []
    for row in rows:
        if (row.framework, row.info_gap, row.stage) != (framework, gap, stage) or row.label not in results:
            continue
        cells = [row.name]
        for key, _, _ in measures(stage):
            m, half, n = _mean_ci([r.get(key) for r in results[row.label]])
            d = _digits(key)
            cells.append("-" if n == 0 else f"{m:.{d}f} ± {half:.{d}f}")
        body.append(cells)
    return head, body


def verdict_table(cells, framework, gap, only=None, stage="pretrain"):
    """``(head, body)`` of the differences table of one framework, information gap and stage (``only``: a subset
    of the measures)."""
    keys = [k for k, _, _ in measures(stage) if only is None or k in only]
    titles = {k: t for k, t, _ in measures(stage)}
    rows = {}
    for c in cells:
        if (c["framework"], c["info_gap"], c.get("stage", "pretrain")) == (framework, gap, stage) \
                and c["measure"] in keys:
            rows.setdefault((c["name"], c["base"]), {})[c["measure"]] = c["comparison"]
    keys = [k for k in keys if any(k in comps for comps in rows.values())]  # a measure left out everywhere: no column
    head = ["model (vs base)"] + [titles[k] for k in keys]
    body = [[f"{name} (vs {base})"] + [paired.format_cell(comps[k], _digits(k)) if k in comps else "-"
                                       for k in keys] for (name, base), comps in rows.items()]
    return head, body


def _md(head, body):
    from benchmarks.common import markdown_table

    return markdown_table(head, body)


def render(settings: Settings, store: RunStore, output_dir: str, minutes: Optional[float] = None,
           command: str = "") -> Dict:
    """Write ``evidence.md``, ``evidence.json`` and ``evidence.png``; returns the json's content."""
    results = collect(settings, store)
    cells = analyse(settings, results)
    rows = grid(settings)
    n = len(settings.seeds)
    text = ["# Evidence: each regularizer against its base, paired by seed", "",
            f"Machine: {machine_description(machine_info())}.", "",
            f"Command: `{command}`" + (f"; {minutes:.0f} min of computing in this process group." if minutes else "."),
            "", f"{n} seeds ({', '.join(map(str, settings.seeds))}); world {settings.world}; CLIP {settings.clip}; "
            f"ALBEF {settings.albef}. Each cell of the verdict tables is the mean paired difference (regularized "
            "minus base, same seed and data) with its 95 % paired-t interval and, where the interval excludes 0, "
            "the verdict (better / worse; higher / lower for the gap, which has no better side). `*`: the verdict "
            f"survives the Holm-Bonferroni correction over all {len(cells)} comparisons of this file. Absolute "
            "tables: mean ± the half-width of the 95 % t interval over the seeds. Percentages for retrieval, "
            "zero-shot and probes; distances for the gap.", ""]
    for fw in settings.frameworks:
        gaps = sorted({r.info_gap for r in rows if r.framework == fw})
        for gap in [settings.main_gap] + [g for g in gaps if g != settings.main_gap]:
            for stage in ("pretrain", "downstream"):
                head, body = verdict_table(cells, fw, gap, stage=stage)
                if not body:
                    continue
                title = f"{fw.upper()}, info_gap {gap:g}" + (", downstream tasks" if stage == "downstream" else "")
                text += [f"## {title}: differences (n = {n} seeds)", ""] + _md(head, body) + [""]
                head, body = absolute_table(rows, results, fw, gap, stage)
                text += [f"### {title}: absolute values (n = {n} seeds)", ""] + _md(head, body) + [""]
    for fw, why in settings.not_learned.items():
        if fw in settings.frameworks:
            for reason in sorted(set(why.values())):
                keys = [dict((k, t) for k, t, _ in MEASURES)[k] for k, v in why.items() if v == reason]
                text += [f"Not in {fw.upper()}'s verdicts ({', '.join(keys)}): {reason}.", ""]
    missing = [r.label for r in rows if r.label not in results]
    if missing:
        text += [f"Not yet computed (left out): {', '.join(missing)}.", ""]
    text += ["![differences with 95 % intervals](evidence.png)"]
    if len(settings.sweep_gaps):
        text += ["", "![the information-gap sweep](evidence_sweep.png)"]
    write_text(os.path.join(output_dir, "evidence.md"), text)
    report = {"command": command, "minutes": minutes, "settings": asdict(settings),
              "rows": [asdict(r) for r in rows],
              "results": results,
              "comparisons": [dict(c, comparison=c["comparison"].as_dict()) for c in cells]}
    write_json(os.path.join(output_dir, "evidence.json"), report)
    plot(settings, cells, os.path.join(output_dir, "evidence.png"))
    plot_sweep(settings, cells, os.path.join(output_dir, "evidence_sweep.png"))
    return report


def readme_table(report, framework, gap=None, stage="pretrain"):
    """The README's verdict table (markdown lines) for one framework at the main gap, from ``evidence.json``."""
    gap = report["settings"]["main_gap"] if gap is None else gap
    cells = [dict(c, comparison=paired.Comparison(**c["comparison"])) for c in report["comparisons"]]
    head, body = verdict_table(cells, framework, gap, README_MEASURES if stage == "pretrain" else None, stage)
    return _md(head, body)


VERDICT_COLOURS = {"better": "tab:green", "worse": "tab:red", "higher": "tab:purple", "lower": "tab:orange"}


def _panel(ax, sel, title, labels):
    """Horizontal error bars of the comparisons ``sel`` (one per line), coloured by verdict."""
    for k, c in enumerate(sel):
        comp = c["comparison"]
        ax.errorbar([comp.mean], [k], xerr=[[comp.mean - comp.low], [comp.high - comp.mean]], fmt="o",
                    color=VERDICT_COLOURS.get(comp.verdict, "tab:blue"), capsize=3)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(range(len(sel)))
    ax.set_yticklabels([c["name"] if c["base"] == "inmodal" else f"{c['name']} (vs {c['base']})" for c in sel]
                       if labels else [], fontsize=7)
    ax.set_ylim(-0.5, max(len(sel), 1) - 0.5)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelsize=7)


README_BLOCKS = {  # marker in the README -> (framework, information gap or None for the main one, stage)
    "clip": ("clip", None, "pretrain"),
    "clip-gap1": ("clip", 1.0, "pretrain"),
    "albef": ("albef", None, "pretrain"),
    "albef-downstream": ("albef", None, "downstream"),
}


def update_readme(report: Dict, path: str) -> List[str]:
    """Replace each ``<!-- evidence:NAME -->`` ... ``<!-- /evidence:NAME -->`` block of the README at ``path`` with
    that verdict table (:data:`README_BLOCKS`) from ``report`` (``evidence.json``'s content); returns the names."""
    import re

    with open(path) as f:
        text = f.read()
    done = []
    for name, (framework, gap, stage) in README_BLOCKS.items():
        pattern = re.compile(rf"(<!-- evidence:{name} -->\n).*?(<!-- /evidence:{name} -->)", re.S)
        if pattern.search(text):
            lines = readme_table(report, framework, gap, stage)
            table = ("\n".join(lines) if len(lines) > 2 else
                     "Not computed yet: `python -m benchmarks.evidence --workers 2` computes what is missing.") + "\n"
            text = pattern.sub(lambda m: m.group(1) + table + m.group(2), text)
            done.append(name)
    with open(path, "w") as f:
        f.write(text)
    return done


def plot(settings, cells, path):
    """Paired differences with their 95 % intervals at the main information gap: per framework one row of panels
    (the README's measures), plus ALBEF's downstream tasks; one line per compared row."""
    plt = pyplot()
    panels = []  # (title, selection)
    for fw in settings.frameworks:
        for stage, keys in (("pretrain", README_MEASURES), ("downstream", [k for k, _, _ in DOWNSTREAM_MEASURES])):
            line = []
            for key in keys:
                sel = [c for c in cells if (c["framework"], c["measure"], c["info_gap"], c["stage"])
                       == (fw, key, settings.main_gap, stage)]
                if sel:
                    line.append((f"{fw}: {sel[0]['title']}", sel))
            if line:
                panels.append(line)
    if not panels:
        return
    cols = max(len(line) for line in panels)
    fig, axes = plt.subplots(len(panels), cols, figsize=(3.2 * cols, 3.4 * len(panels)), squeeze=False)
    for i, line in enumerate(panels):
        for j in range(cols):
            if j < len(line):
                _panel(axes[i][j], line[j][1], line[j][0], labels=j == 0)
            else:
                axes[i][j].axis("off")
    fig.suptitle(f"paired difference vs base with 95 % interval (n = {len(settings.seeds)} seeds; green better, red "
                 "worse, purple / orange higher / lower gap, blue no difference detected)", fontsize=10)
    fig.tight_layout()
    save_png(fig, path)


def plot_sweep(settings, cells, path):
    """CLIP's information-gap sweep: each regularizer's paired difference vs the base (95 % interval) against
    ``info_gap``, one panel per README measure."""
    plt = pyplot()
    sel = [c for c in cells if c["framework"] == "clip" and c["stage"] == "pretrain"
           and c["base"] == "inmodal"]
    gaps = sorted({c["info_gap"] for c in sel})
    names = sorted({c["name"] for c in sel if c["info_gap"] != settings.main_gap})
    if len(gaps) < 2 or not names:
        return
    fig, axes = plt.subplots(1, len(README_MEASURES), figsize=(3.4 * len(README_MEASURES), 3.4), squeeze=False)
    for ax, key in zip(axes[0], README_MEASURES):
        for k, name in enumerate(names):
            pts = sorted((c["info_gap"], c["comparison"]) for c in sel if c["name"] == name and c["measure"] == key)
            if not pts:
                continue
            xs = [g + (k - len(names) / 2) * 0.015 for g, _ in pts]
            ax.errorbar(xs, [p.mean for _, p in pts], yerr=[[p.mean - p.low for _, p in pts],
                                                             [p.high - p.mean for _, p in pts]],
                        marker="o", capsize=3, label=name)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel("info_gap", fontsize=8)
        ax.set_title(dict((k, t) for k, t, _ in MEASURES)[key], fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("CLIP: difference vs the base loss across the information gap (95 % intervals)", fontsize=10)
    fig.tight_layout()
    save_png(fig, path)


# -- command line --------------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.evidence", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="the tiny grid the tests run (a few minutes)")
    p.add_argument("--frameworks", default=None, help="comma-separated subset of clip,albef")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: 5 full, 3 quick)")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the work (one torch thread each)")
    p.add_argument("--store", default=None, help="folder of the run store (default output/benchmarks/evidence[_quick])")
    p.add_argument("--output-dir", default=None, help="default benchmarks/results (quick: <store>/results)")
    p.add_argument("--cache-root", default=os.environ.get("LAVIS_CACHE_ROOT", "cache"))
    p.add_argument("--render-only", action="store_true", help="only write the tables from the stored runs")
    p.add_argument("--readme", default=None, metavar="README.md",
                   help="also rewrite the verdict tables between <!-- evidence:NAME --> markers of this file")
    p.add_argument("--no-render", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def settings_from(args) -> Settings:
    base = QUICK if args.quick else FULL
    s = replace(base)  # the fields below are reassigned, never mutated
    if args.frameworks:
        chosen = [f.strip() for f in args.frameworks.split(",") if f.strip()]
        unknown = sorted(set(chosen) - {"clip", "albef"})
        if unknown:
            raise SystemExit(f"unknown framework(s) {unknown}; choose from clip, albef")
        s.frameworks = chosen
    if args.seeds:
        s.seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    return s


def main(argv=None):
    args = parse_args(argv)
    settings = settings_from(args)
    store_dir = args.store or os.path.join("output", "benchmarks", "evidence_quick" if args.quick else "evidence")
    output_dir = args.output_dir or (os.path.join(store_dir, "results") if args.quick
                                     else os.path.join("benchmarks", "results"))
    store = RunStore(store_dir)
    cache_root = os.path.abspath(args.cache_root)
    started = time.time()
    if not args.render_only:
        from benchmarks import clip_world

        for run in {run_key(w): w for w in _worlds(settings)}.values():  # generated once, before any worker
            clip_world.load_world(cache_root, **run)
        if args.workers > 1:
            worker = ["--store", store_dir, "--cache-root", cache_root, "--no-render"]
            worker += ["--quick"] if args.quick else []
            worker += [f"--{k}={v}" for k, v in (("frameworks", args.frameworks), ("seeds", args.seeds)) if v]
            procs = [subprocess.Popen([sys.executable, "-m", "benchmarks.evidence", *worker])
                     for _ in range(args.workers)]
            codes = [p.wait() for p in procs]
            if any(codes):
                raise SystemExit(f"a worker failed (exit codes {codes}); rerun to finish the missing runs")
        else:
            run_pending(settings, store, cache_root)
    if args.no_render:
        return None
    report = render(settings, store, output_dir, minutes=(time.time() - started) / 60 if not args.render_only
                    else None, command=command_line("benchmarks.evidence", argv))
    log(f"wrote {os.path.join(output_dir, 'evidence.md')}")
    if args.readme:
        log(f"updated {args.readme}: {', '.join(update_readme(report, args.readme)) or 'no evidence markers'}")
    return report


if __name__ == "__main__":
    main()
