"""benchmarks/albef_views.py: run specs and the rendered table (the runs themselves are the demo pipeline, tested in
test_train / test_demo)."""
import json

from benchmarks import albef_views


def test_parse_runs_with_options():
    assert albef_views.parse_runs("baseline:42,bb:0") == [("baseline", "baseline", 42, []), ("bb", "bb", 0, [])]
    assert albef_views.parse_runs("bb-literal:1=model.latent.bridge.form=literal;all:2") == [
        ("bb-literal", "bb", 1, ["model.latent.bridge.form=literal"]), ("all", "all", 2, [])]


def test_render_means_and_ranges_over_seeds(tmp_path):
    rows = [{"name": "bb", "seed": s, "options": [], "seconds": 1.0,
             "test": {"txt_r1": r, "img_r1": r / 2, "gap_centroid_distance": 0.1, "gap_paired_distance": 0.2},
             "pretrain_losses": {"loss_itc": 3.0}} for s, r in ((0, 10.0), (1, 14.0))]
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert albef_views.done(str(path)) == {("bb", 0), ("bb", 1)}
    albef_views.render(str(path), str(tmp_path))
    md = (tmp_path / "albef_views.md").read_text()
    assert "| bb | 0, 1 | 12.0 [10.0, 14.0] | 6.0 [5.0, 7.0] | 0.100 [0.100, 0.100] |" in md
    assert json.loads((tmp_path / "albef_views.json").read_text())["per_name"]["bb"]["txt_r1"] == [10.0, 14.0]
