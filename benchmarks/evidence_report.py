"""The report of ``benchmarks.evidence``: the stored results of a grid, their paired comparisons (Holm-corrected),
the absolute and verdict tables, ``evidence.md`` / ``evidence.json``, and the README's verdict tables."""
import os
from dataclasses import asdict
from typing import Dict, List, Optional

from benchmarks import paired
from benchmarks.common import machine_description, machine_info, markdown_table, write_json, write_text
from benchmarks.evidence_grid import MEASURES, README_MEASURES, Settings, grid, measures, spec
from benchmarks.evidence_plots import plot, plot_sweep
from benchmarks.run_store import RunStore, run_key


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
                text += [f"## {title}: differences (n = {n} seeds)", ""] + markdown_table(head, body) + [""]
                head, body = absolute_table(rows, results, fw, gap, stage)
                text += [f"### {title}: absolute values (n = {n} seeds)", ""] + markdown_table(head, body) + [""]
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
    return markdown_table(head, body)


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
