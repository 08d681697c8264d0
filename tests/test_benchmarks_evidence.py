"""benchmarks/evidence.py end to end at ``--quick`` size (both frameworks, the known-answer rows), plus the grid's
shape at full size. The numbers of a 40-step run mean nothing beyond the known answers: an exact replica of the base
comes out "no difference" with a zero difference everywhere, and a model that never trains (learning rate 0) comes
out "worse" than the trained base."""
import dataclasses
import json
import os

import pytest

from benchmarks import evidence, paired
from benchmarks.run_store import RunStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_full_grid_shape():
    rows = evidence.grid(evidence.FULL)
    labels = [r.label for r in rows]
    assert len(labels) == len(set(labels))
    for fw in ("clip", "albef"):
        main = [r for r in rows if r.framework == fw and r.info_gap == 0.5]
        for short in ("fs", "bb", "gc", "gcm"):
            # three weights each; ALBEF's mean-normalised geometric consistency at one (the 3-hour budget)
            least = 1 if (fw, short) == ("albef", "gcm") else 3
            assert len([r for r in main if r.name.startswith(short + " ")]) >= least, (fw, short)
        assert all(r.base == "inmodal" for r in main if r.name not in ("plain", "inmodal"))
    assert {r.info_gap for r in rows if r.framework == "clip"} == {0.0, 0.5, 1.0}
    assert len(evidence.FULL.seeds) >= 5
    gcm = next(r for r in rows if r.name.startswith("gcm"))
    assert gcm.latent["geometric"]["normalization"] == "mean"
    # ALBEF's regularized rows keep the in-modal term of their base
    assert all("inmodal" in r.latent for r in rows if r.framework == "albef" and r.name != "plain")
    # downstream: the base and one weight per regularizer, each paired with the base's downstream row
    downstream = [r for r in rows if r.stage == "downstream"]
    assert {r.name.split()[0] for r in downstream} == {"inmodal", "fs", "bb", "gc"}
    assert all(r.base_row().label in {d.label for d in downstream} for r in downstream if r.base)
    # computed first: references and middle weights, then downstream, other weights, the information-gap sweep
    order = evidence.run_order(evidence.FULL, rows)
    assert [r.name for r in order[:6]] == ["plain", "inmodal", "fs w=0.3", "bb w=0.3", "gc w=0.1", "gcm w=0.3"]
    assert [r.label for r in order if r.framework == "albef"][:9] == [
        "albef gap 0.5 " + name for name in (
            "plain", "inmodal", "fs w=0.3", "bb w=0.3", "gc w=0.1",
            "inmodal [downstream]", "fs w=0.3 [downstream]", "bb w=0.3 [downstream]", "gc w=0.1 [downstream]")]
    assert order[-1].info_gap != 0.5 and sorted(order, key=lambda r: r.label) == sorted(rows, key=lambda r: r.label)
    run = evidence.spec(downstream[1], 0, evidence.FULL)
    assert run["pretrain"] == evidence.spec(dataclasses.replace(downstream[1], stage="pretrain"), 0,
                                            evidence.FULL)


def test_quick_run_end_to_end_with_known_answers(session_cache_root, tmp_path):
    store_dir, out = tmp_path / "store", tmp_path / "results"
    argv = ["--quick", "--store", str(store_dir), "--output-dir", str(out), "--cache-root", str(session_cache_root)]
    report = evidence.main(argv)
    for name in ("evidence.md", "evidence.json", "evidence.png"):
        assert os.path.getsize(out / name) > 0
    data = json.loads((out / "evidence.json").read_text())
    assert not [r for r in evidence.grid(evidence.QUICK) if r.label not in data["results"]]
    cells = {(c["row"], c["measure"]): c["comparison"] for c in report["comparisons"]}
    replica = [v for (row, _), v in cells.items() if row.endswith("inmodal replica")]
    assert replica and all(c["mean"] == 0.0 and c["verdict"] == paired.NO_DIFFERENCE for c in replica)
    broken = {m: v for (row, m), v in cells.items() if row.endswith("broken (lr 0)")}
    assert "worse" in {broken[m]["verdict"] for m in ("txt_r5_shared", "probe_shared[z]")}
    for c in report["comparisons"]:
        assert c["comparison"]["n"] == len(evidence.QUICK.seeds)
    downstream = [r for r in evidence.grid(evidence.QUICK) if r.stage == "downstream"]
    assert [r.name for r in downstream] == ["inmodal", "bb w=1"]
    for row in downstream:
        for res in data["results"][row.label]:
            assert all(0.0 <= res[k] <= 100.0 for k in ("vqa_acc", "nlvr_acc", "snli_ve_acc")), res
    assert ("albef gap 0.5 bb w=1 [downstream]", "nlvr_acc") in cells
    md = (out / "evidence.md").read_text()
    assert "## ALBEF, info_gap 0.5, downstream tasks: differences (n = 3 seeds)" in md
    assert "## ALBEF, info_gap 0.5: differences (n = 3 seeds)" in md and "bb w=1 (vs inmodal)" in md
    assert evidence.readme_table(data, "clip")[0].startswith("| model (vs base) | txt R@1")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- evidence:clip -->\nold table\n<!-- /evidence:clip -->\nend\n")
    assert evidence.update_readme(data, str(readme)) == ["clip"]
    text = readme.read_text()
    assert "old table" not in text and "| inmodal replica (vs inmodal) |" in text and text.endswith("end\n")
    # resumable: a second pass finds every run stored and computes nothing
    assert evidence.run_pending(evidence.settings_from(evidence.parse_args(argv)), RunStore(str(store_dir)),
                                str(session_cache_root)) == 0


def test_recall_instance_and_shared_facts_by_hand():
    import torch

    from benchmarks.world_measures import recall

    z_v = torch.eye(3)
    z_t = torch.tensor([[0.1, 0.9, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.2]])  # captions of images 0, 1, 2
    txt2img, image_class = torch.tensor([0, 1, 2]), torch.tensor([0, 0, 1])  # images 0 and 1 share their facts
    r = recall(z_v, z_t, txt2img, ks=(1, 5), image_class=image_class)
    # text->image: caption 0 finds image 1 (same facts), caption 1 its image, caption 2 image 0 (other facts)
    assert r["img_r1"] == pytest.approx(100 / 3) and r["img_r1_shared"] == pytest.approx(200 / 3)
    # image->text: image 0 finds caption 2 (other facts), images 1 and 2 their own captions
    assert r["txt_r1"] == pytest.approx(200 / 3) and r["txt_r1_shared"] == pytest.approx(200 / 3)
    assert r["img_r5"] == r["txt_r5"] == r["img_r5_shared"] == 100.0  # k above the gallery size: everything
