"""The plots of ``benchmarks.evidence``: paired differences with their 95 % intervals at the main information gap,
and CLIP's information-gap sweep."""
from benchmarks.common import pyplot, save_png
from benchmarks.evidence_grid import DOWNSTREAM_MEASURES, MEASURES, README_MEASURES


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
