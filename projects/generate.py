#!/usr/bin/env python
"""Write the variant configs of ``projects/`` from one template per family and one table of variants.

    python projects/generate.py           # rewrite every generated yaml
    python projects/generate.py --check   # exit 1 listing the yamls that differ from what would be written

A family is one LAVIS recipe run once per variant: ``projects/_templates/albef/vqa.yaml.in`` gives
``projects/albef/vqa_{baseline,fs,bb,gc,all}.yaml``. The variants (their ``latent:`` blocks) are the tables
``ALBEF``, ``BLIP`` and ``CLIP`` below; the families are ``FAMILIES``. The generated files are committed, so a LAVIS
user reads (and runs) plain, complete LAVIS yamls; a test checks that they match this script's output byte for byte.

Template syntax (a template is the family's yaml with these marks, standard library only, no yaml round trip, so
comments are kept):

* ``{{variant}}`` the variant's name, ``{{suffix}}`` its file-name suffix (``_fs``; the demo's baseline has none),
  ``{{title}}`` its one-line description;
* ``{{latent}}`` alone on a line: the variant's ``latent:`` block (``latent: {}`` for none), at that indentation;
  ``{{latent_hint}}``: the same block commented out (fine-tuning configs, whose variant is the checkpoint);
* ``{{if baseline}}`` / ``{{if not baseline}}``, ``{{else}}``, ``{{end}}`` alone on a line: lines kept for the
  baseline only / for the other variants only (the baseline is LAVIS's recipe as is; the regularized variants
  read PairedViews, and fine-tuning variants start from their own pretraining checkpoint);
* lines starting with ``##``: notes on the template, not copied.

The evaluation datasets are variants too: ``clip/linprobe_<dataset>.yaml`` (the paper's Table 3, ``PROBE_ROWS``) and
``clip/zs_<dataset>.yaml`` for the ImageNet shifts (Table 2, ``SHIFT_ROWS``), each row filling the template's
inline slots (``{{dataset}}``, ``{{splits}}``, ...) from the family's ``slots``.

The configs that are not variants of a recipe (``clip/zs_{cifar10,cifar100,imagenet}``, ``demo/clip_zs_digits``,
``demo/clip_linprobe_digits``: evaluations of any variant's checkpoint; ``demo/albef_nlvr_ta``: one TA step shared by
every demo variant) are written by hand.
"""
import argparse
import os
import re
import sys
from typing import Dict, Iterator, List, NamedTuple, Sequence, Tuple

PROJECTS_DIR = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = "_templates"
TEMPLATE_EXT = ".yaml.in"
GENERATED = "# Generated (variant '{variant}' of projects/{template}): edit that, then run python projects/generate.py"


class Variant(NamedTuple):
    """One row of a variants table: a one-line description and the ``latent:`` block (regularizer -> settings)."""

    title: str
    latent: Dict[str, Dict[str, object]]


SEPARATION = {"weight": 1.0, "uniformity_t": 2.0}
ALBEF_BRIDGE = {"weight": 1.0, "t": 0.25, "form": "online"}
ALBEF_GEOMETRIC = {"weight": 0.25, "normalization": "paper"}

#: ALBEF (pretraining, retrieval, and the checkpoints of VQA / NLVR2 / SNLI-VE); the paper's weights are not
#: published (its appendix): 1.0, geometric 0.25 (see README)
ALBEF = {
    "baseline": Variant("plain ALBEF (ITC + ITM + MLM), the reference", {}),
    "inmodal": Variant("ALBEF + the in-modal V2V + T2T terms (the paper's base loss L_Con, up to a factor)",
                       {"inmodal": {"weight": 1.0}}),
    "fs": Variant("ALBEF + deep feature separation (paper Sec. 4.1)", {"separation": SEPARATION}),
    "bb": Variant("ALBEF + Brownian bridge (paper Sec. 4.2), t fixed to the paper's 0.25", {"bridge": ALBEF_BRIDGE}),
    "gc": Variant("ALBEF + geometric consistency (paper Sec. 4.3)", {"geometric": ALBEF_GEOMETRIC}),
    "all": Variant("ALBEF + all three regularizers",
                   {"separation": SEPARATION, "bridge": ALBEF_BRIDGE, "geometric": ALBEF_GEOMETRIC}),
}
#: BLIP (pretraining and retrieval): ALBEF's variants, on LAVIS's BLIP (the same mixin and defaults)
BLIP = {
    "baseline": Variant("plain BLIP (ITC + ITM + LM), the reference", {}),
    "inmodal": Variant("BLIP + the in-modal V2V + T2T terms (the paper's base loss L_Con, up to a factor)",
                       {"inmodal": {"weight": 1.0}}),
    "fs": Variant("BLIP + deep feature separation (paper Sec. 4.1)", {"separation": SEPARATION}),
    "bb": Variant("BLIP + Brownian bridge (paper Sec. 4.2), t fixed to the paper's 0.25", {"bridge": ALBEF_BRIDGE}),
    "gc": Variant("BLIP + geometric consistency (paper Sec. 4.3)", {"geometric": ALBEF_GEOMETRIC}),
    "all": Variant("BLIP + all three regularizers",
                   {"separation": SEPARATION, "bridge": ALBEF_BRIDGE, "geometric": ALBEF_GEOMETRIC}),
}
#: the CLIP two-tower model; every variant but the baseline trains with the paper's base loss L_Con (the templates'
#: ``base_loss``), the inmodal variant with nothing else
CLIP = {
    "baseline": Variant("plain CLIP: 1/2 (V2T + T2V) on the original views (the paper's Table 1 'CLIP' row)", {}),
    "inmodal": Variant("CLIP + in-modal terms: the paper's base loss L_Con = 1/4 (V2T + T2V + V2V + T2T), "
                       "no regularizer (CyCLIP's --inmodal)", {}),
    "fs": Variant("L_Con + deep feature separation (paper Sec. 4.1)", {"separation": SEPARATION}),
    "bb": Variant("L_Con + Brownian bridge (paper Sec. 4.2)",
                  {"bridge": {"weight": 1.0, "t": 0.25, "form": "literal"}}),
    "gc": Variant("L_Con + geometric consistency (paper Sec. 4.3)", {"geometric": {"weight": 0.25}}),
}
#: comment lines written above a regularizer in a ``latent:`` block; ``{batch}`` is the template's batch_size_train
NOTES = {
    "geometric": ("# L_GC + L^a_GC use the paper's 1/N double sums: the term grows linearly with the per-GPU batch, "
                  "so read the", "# weight with the batch (CyCLIP used 0.25 per term at batch 128; batch_size_train "
                  "is {batch} here)."),
}


class Family(NamedTuple):
    """A template (its path under ``_templates/`` without ``.yaml.in``) and the variants it is written for."""

    template: str
    variants: Tuple[str, ...]
    table: Dict[str, Variant] = ALBEF
    bare_baseline: bool = False  # the baseline is <name>.yaml, not <name>_baseline.yaml (the demo's naming)
    slots: Dict[str, Dict[str, str]] = {}  # per variant: more inline {{slot}} values (the evaluation datasets)


def dataset_table(rows):
    """A table of evaluation datasets as variants (no ``latent:`` block) and their inline slot values: each row
    ``(builder, title, {slot: value})``."""
    table = {name: Variant(title, {}) for name, title, _ in rows}
    slots = {name: dict(values, dataset=name) for name, _, values in rows}
    return table, slots


def _probe(name, title, splits, test="test", train="train", val="", layout=""):
    """A linear-probe dataset: its splits, the probe's train / val (``""``: 20 % of train) / test split."""
    return name, title, {"splits": f"[{', '.join(splits)}]", "train_split": train, "val_split": f'"{val}"',
                         "test_split": test, "layout": layout,
                         "val_note": "choose C there" if val else "no val split: hold out 20 % of train to choose C"}


#: the paper's Table 3 (CyCLIP's 14 linear-probe datasets), in the paper's column order
PROBE_ROWS = (
    _probe("caltech101", "Caltech-101 (102 classes, background included; seeded 30 train images per class)",
           ["train", "test"], layout="torchvision layout: <storage>/caltech101/101_ObjectCategories"),
    _probe("svhn", "SVHN (10 digits)", ["train", "test"], layout="<storage>/{train,test}_32x32.mat"),
    _probe("stl10", "STL-10 (10 classes)", ["train", "test"], layout="<storage>/stl10_binary"),
    _probe("cifar10", "CIFAR-10 (10 classes)", ["train", "test"], layout="<storage>/cifar-10-batches-py"),
    _probe("cifar100", "CIFAR-100 (100 classes)", ["train", "test"], layout="<storage>/cifar-100-python"),
    _probe("dtd", "DTD (47 textures, partition 1)", ["train", "val", "test"], val="val",
           layout="<storage>/dtd/dtd/{images,labels}"),
    _probe("fgvc_aircraft", "FGVC Aircraft (100 variants)", ["train", "val", "test"], val="val",
           layout="<storage>/fgvc-aircraft-2013b/data"),
    _probe("oxford_pets", "Oxford-IIIT Pet (37 breeds)", ["trainval", "test"], train="trainval",
           layout="<storage>/oxford-iiit-pet/{images,annotations}"),
    _probe("rendered_sst2", "Rendered SST2 (2 classes)", ["train", "val", "test"], val="val",
           layout="<storage>/rendered-sst2/{train,valid,test}"),
    _probe("food101", "Food-101 (101 classes)", ["train", "test"], layout="<storage>/food-101/{images,meta}"),
    _probe("gtsrb", "GTSRB (43 traffic signs)", ["train", "test"], layout="<storage>/gtsrb"),
    _probe("stanford_cars", "Stanford Cars (196 classes)", ["train", "test"], layout="<storage>/stanford_cars"),
    _probe("flowers102", "Flowers-102 (102 classes)", ["train", "val", "test"], val="val",
           layout="<storage>/flowers-102/{jpg,imagelabels.mat,setid.mat}"),
    _probe("imagenet", "ImageNet-1K (1000 classes, LAVIS's builder)", ["train", "val"], test="val",
           layout="<storage>/{train,val}/<wnid>/*.JPEG"),
)
PROBES, PROBE_SLOTS = dataset_table(PROBE_ROWS)
#: the paper's Table 2 (zero-shot under natural distribution shift)
SHIFT_ROWS = (
    ("imagenet_v2", "ImageNet-V2 matched frequency (1000 classes; folders are class indices)",
     {"layout": "<storage>/imagenetv2-matched-frequency-format-val/<0..999>"}),
    ("imagenet_sketch", "ImageNet-Sketch (1000 classes)", {"layout": "<storage>/sketch/<wnid>"}),
    ("imagenet_a", "ImageNet-A (200 classes: logits restricted to its subset of ImageNet)",
     {"layout": "<storage>/imagenet-a/<wnid>"}),
    ("imagenet_r", "ImageNet-R (200 classes: logits restricted to its subset of ImageNet)",
     {"layout": "<storage>/imagenet-r/<wnid>"}),
)
SHIFTS, SHIFT_SLOTS = dataset_table(SHIFT_ROWS)

PAPER_RUNS = ("baseline", "fs", "bb", "gc", "all")
DEMO_RUNS = ("baseline", "inmodal", "fs", "bb", "gc", "all")
CLIP_RUNS = ("baseline", "inmodal", "fs", "bb", "gc")
FAMILIES = (
    Family("albef", PAPER_RUNS),
    *(Family(f"albef/{task}", PAPER_RUNS) for task in ("ret_coco", "ret_flickr", "vqa", "nlvr_ta", "nlvr", "snli_ve")),
    Family("blip/pretrain", PAPER_RUNS, BLIP),
    *(Family(f"blip/{task}", PAPER_RUNS, BLIP) for task in ("ret_coco", "ret_flickr")),
    Family("clip/clip", CLIP_RUNS, CLIP),
    Family("clip/linprobe", tuple(PROBES), PROBES, slots=PROBE_SLOTS),
    Family("clip/zs", tuple(SHIFTS), SHIFTS, slots=SHIFT_SLOTS),
    Family("demo/albef_pretrain", DEMO_RUNS, bare_baseline=True),
    Family("demo/albef_retrieval", DEMO_RUNS, bare_baseline=True),
    Family("demo/blip_pretrain", DEMO_RUNS, BLIP, bare_baseline=True),
    Family("demo/blip_retrieval", DEMO_RUNS, BLIP, bare_baseline=True),
    *(Family(f"demo/albef_{task}", PAPER_RUNS, bare_baseline=True) for task in ("vqa", "nlvr", "snli_ve")),
    Family("demo/clip_pretrain", CLIP_RUNS, CLIP, bare_baseline=True),
)


def suffix(family: Family, variant: str) -> str:
    """The file-name suffix of ``variant``: ``_fs``; ``""`` for the baseline of a family with a bare baseline."""
    return "" if family.bare_baseline and variant == "baseline" else f"_{variant}"


def output_path(family: Family, variant: str) -> str:
    """Path of a generated yaml, relative to ``projects/``."""
    return family.template + suffix(family, variant) + ".yaml"


def template_path(family: Family) -> str:
    """Path of a family's template, relative to ``projects/``."""
    return f"{TEMPLATES}/{family.template}{TEMPLATE_EXT}"


def flow(settings: Dict[str, object]) -> str:
    """``{weight: 1.0, t: 0.25}``: a regularizer's settings as a yaml flow mapping."""
    def scalar(value):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise TypeError(f"unsupported latent setting {value!r}")
        return repr(value) if isinstance(value, float) else str(value)
    return "{" + ", ".join(f"{k}: {scalar(v)}" for k, v in settings.items()) + "}"


def latent_lines(latent: Dict[str, Dict[str, object]], batch: str, notes: bool = True) -> List[str]:
    """The ``latent:`` block of a variant, unindented; each regularizer under its ``NOTES`` when ``notes``."""
    if not latent:
        return ["latent: {}"]
    lines = ["latent:"]
    for name, settings in latent.items():
        if notes:
            lines += ["  " + note.format(batch=batch) for note in NOTES.get(name, ())]
        lines.append(f"  {name}: {flow(settings)}")
    return lines


def hint_lines(latent: Dict[str, Dict[str, object]]) -> List[str]:
    """The ``latent:`` block of a variant commented out (a suggestion in fine-tuning configs)."""
    if not latent:
        raise ValueError("{{latent_hint}} of a variant without regularizers (put it under {{if not baseline}})")
    return ["# " + line for line in latent_lines(latent, "", notes=False)]


def select_lines(lines: Sequence[str], baseline: bool, where: str) -> Iterator[str]:
    """Drop ``##`` notes and resolve ``{{if [not] baseline}}`` / ``{{else}}`` / ``{{end}}`` (not nested)."""
    keep = None  # None: outside a conditional; else whether the current branch is kept
    for number, line in enumerate(lines, 1):
        mark = line.strip()
        if mark in ("{{if baseline}}", "{{if not baseline}}"):
            if keep is not None:
                raise ValueError(f"{where}:{number}: nested {mark}")
            keep = baseline == (mark == "{{if baseline}}")
        elif mark in ("{{else}}", "{{end}}"):
            if keep is None:
                raise ValueError(f"{where}:{number}: {mark} outside {{{{if ...}}}}")
            keep = (not keep) if mark == "{{else}}" else None
        elif keep is not False and not mark.startswith("##"):
            yield line
    if keep is not None:
        raise ValueError(f"{where}: {{{{if ...}}}} without {{{{end}}}}")


def expand_blocks(lines: Sequence[str], variant: Variant, batch: str) -> Iterator[str]:
    """Replace ``{{latent}}`` / ``{{latent_hint}}`` lines by the block, at the placeholder's indentation."""
    for line in lines:
        mark = line.strip()
        if mark not in ("{{latent}}", "{{latent_hint}}"):
            yield line
            continue
        indent = line[:len(line) - len(line.lstrip())]
        block = latent_lines(variant.latent, batch) if mark == "{{latent}}" else hint_lines(variant.latent)
        yield from (indent + b for b in block)


def substitute(line: str, values: Dict[str, str], where: str) -> str:
    """Fill the inline ``{{name}}`` slots of a line; an unknown or leftover slot is an error."""
    def fill(match):
        if match.group(1) not in values:
            raise ValueError(f"{where}: unknown slot {match.group(0)}")
        return values[match.group(1)]
    return re.sub(r"\{\{([^{}]*)\}\}", fill, line)


def template_batch(text: str, where: str) -> str:
    """The template's ``run.batch_size_train``: the per-GPU batch that the geometric note names."""
    found = re.findall(r"^ +batch_size_train: *(\d+)", text, re.M)
    if len(found) != 1:
        raise ValueError(f"{where}: a variant with a geometric term needs one batch_size_train, found {len(found)}")
    return found[0]


def render(family: Family, variant_name: str, text: str) -> str:
    """The yaml of one variant of a family, from its template's text."""
    where, variant = template_path(family), family.table[variant_name]
    batch = template_batch(text, where) if "geometric" in variant.latent else ""
    lines = select_lines(text.splitlines(), variant_name == "baseline", where)
    values = {"variant": variant_name, "suffix": suffix(family, variant_name), "title": variant.title,
              **family.slots.get(variant_name, {})}
    body = [substitute(line, values, where) for line in expand_blocks(list(lines), variant, batch)]
    return "\n".join([GENERATED.format(template=where, variant=variant_name)] + body) + "\n"


def generate(projects_dir: str = PROJECTS_DIR) -> Dict[str, str]:
    """Every generated yaml: path relative to ``projects_dir`` -> its text."""
    out = {}
    for family in FAMILIES:
        with open(os.path.join(projects_dir, template_path(family)), encoding="utf-8") as f:
            text = f.read()
        for name in family.variants:
            out[output_path(family, name)] = render(family, name, text)
    return out


def is_generated(path: str) -> bool:
    """Whether a yaml starts with this script's header line."""
    with open(path, encoding="utf-8") as f:
        return f.readline().startswith(GENERATED.split("{", 1)[0])


def stale(projects_dir: str, outputs: Dict[str, str]) -> List[str]:
    """Generated yamls missing or different on disk, and yamls with the generated header that no family writes."""
    bad = []
    for rel, text in sorted(outputs.items()):
        path = os.path.join(projects_dir, rel)
        if not os.path.isfile(path):
            bad.append(f"{rel} (missing)")
            continue
        with open(path, "rb") as f:
            if f.read() != text.encode("utf-8"):
                bad.append(f"{rel} (differs)")
    return bad + [f"{rel} (generated, but no family writes it)" for rel in orphans(projects_dir, outputs)]


def orphans(projects_dir: str, outputs: Dict[str, str]) -> List[str]:
    """Yamls under ``projects_dir`` with the generated header that ``outputs`` does not hold."""
    found = []
    for top, dirs, files in os.walk(projects_dir):
        dirs[:] = sorted(d for d in dirs if d != TEMPLATES)
        for name in sorted(files):
            rel = os.path.relpath(os.path.join(top, name), projects_dir).replace(os.sep, "/")
            if name.endswith(".yaml") and rel not in outputs and is_generated(os.path.join(top, name)):
                found.append(rel)
    return found


def write(projects_dir: str, outputs: Dict[str, str]) -> List[str]:
    """Write the yamls that changed; returns their paths."""
    changed = []
    for rel, text in sorted(outputs.items()):
        path = os.path.join(projects_dir, rel)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                if f.read() == text.encode("utf-8"):
                    continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        changed.append(rel)
    return changed


def main(argv=None) -> int:
    """Command line: rewrite the generated yamls, or with ``--check`` list the stale ones (exit 1)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 listing the stale yamls")
    parser.add_argument("--root", default=PROJECTS_DIR, help="the projects folder (default: this script's)")
    args = parser.parse_args(argv)
    outputs = generate(args.root)
    if args.check:
        bad = stale(args.root, outputs)
        for line in bad:
            print(f"stale: {line}")
        if bad:
            print("run: python projects/generate.py", file=sys.stderr)
        return 1 if bad else 0
    for rel in write(args.root, outputs):
        print(f"wrote {rel}")
    for rel in orphans(args.root, outputs):
        print(f"no family writes {rel} any more: delete it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
