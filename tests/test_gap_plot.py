"""The modality-gap picture: ``lavis_latent.metrics.gap_plot`` on hand-made features, ``run.plot_gap`` and
``python -m lavis_latent.evaluate --plot`` on a tiny trained ALBEF."""
import glob
import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import PROJECTS_DIR, REPO_ROOT
from lavis_latent.common.config_check import ConfigError
from lavis_latent.metrics.gap_plot import combine_panels, pca_project, plot_modality_gap

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def demo_yaml(name):
    return os.path.join(PROJECTS_DIR, "demo", name)


def read_png(path):
    """The picture as an array, after checking the file is a PNG."""
    import matplotlib.image as mpimg

    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE, path
    return mpimg.imread(path)


def two_clusters(n=20, d=8, offset_dim=2, seed=0):
    """Paired features: a shared random part, images shifted by +e_k and texts by -e_k (k = ``offset_dim``)."""
    g = torch.Generator().manual_seed(seed)
    base = 0.2 * torch.randn(n, d, generator=g)
    shift = torch.zeros(d)
    shift[offset_dim] = 1.0
    return base + shift, base - shift + 0.05 * torch.randn(n, d, generator=g)


# ---------------------------------------------------------------------------------------------------------------------
# the projection and the picture, on hand-made features
# ---------------------------------------------------------------------------------------------------------------------
def test_pca_separates_offset_clusters_along_the_first_component():
    z_v, z_t = two_clusters()
    p_v, p_t, explained = pca_project(z_v, z_t)
    assert p_v.shape == p_t.shape == (20, 2) and explained.shape == (2,)
    # the offset dominates: every image lies on one side of PC1, every text on the other, far apart
    assert p_v[:, 0].min() > 0 > p_t[:, 0].max()  # sign convention: the largest loading (+e_2) is positive
    gap = p_v[:, 0].mean() - p_t[:, 0].mean()
    assert gap > 1.5 and gap > 10 * (p_v[:, 0].std() + p_t[:, 0].std())  # normalised: +-e_2 are ~2 apart
    assert explained[0] > 0.5 and explained[0] >= explained[1]
    # deterministic sign: flipping the features' axis signs other than the offset's does not flip PC1
    flip = torch.ones(8)
    flip[[0, 5]] = -1
    q_v, q_t, _ = pca_project(z_v * flip, z_t * flip)
    assert torch.allclose(q_v[:, 0], p_v[:, 0], atol=1e-9) and torch.allclose(q_t[:, 0], p_t[:, 0], atol=1e-9)
    # the sign is fixed by the loadings, not by which modality is which: negated features swap the sides
    r_v, r_t, _ = pca_project(-z_v, -z_t)
    assert r_t[:, 0].min() > 0 > r_v[:, 0].max()


def test_plot_writes_a_readable_png(tmp_path):
    z_v, z_t = two_clusters(n=12)
    path = str(tmp_path / "new" / "folder" / "gap.png")
    assert plot_modality_gap(z_v, z_t, path, title="hand-made, test split") == path
    image = read_png(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert 300 <= image.shape[0] <= 500 and 300 <= image.shape[1] <= 500
    assert image[..., :3].std() > 0.05  # not a blank canvas
    # given measures and a subsample draw the same kind of picture
    gap = {"centroid_distance": 1.0, "paired_distance": 1.5, "alignment": 2.0, "uniformity_image": -1.0,
           "uniformity_text": -1.0, "linear_separability": float("nan")}
    small = plot_modality_gap(z_v, z_t, str(tmp_path / "small.png"), gap=gap, max_pairs=4)
    assert read_png(small).shape == image.shape
    both = combine_panels([path, small], str(tmp_path / "out" / "both.png"), titles=["all", "4 pairs"])
    combined = read_png(both)
    assert combined.shape[1] == 2 * image.shape[1] and combined.shape[0] > image.shape[0]


@pytest.mark.parametrize("z_v, z_t, match", [
    (torch.zeros(5, 3), torch.zeros(5, 4), "shape mismatch"),
    (torch.zeros(5, 3), torch.zeros(4, 3), "shape mismatch"),
    (torch.zeros(5), torch.zeros(5), "2-D"),
    (torch.ones(1, 3), torch.ones(1, 3), "at least 2 pairs"),
])
def test_bad_shapes_are_named(tmp_path, z_v, z_t, match):
    with pytest.raises(ValueError, match=match):
        plot_modality_gap(z_v, z_t, str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match=match):
        pca_project(z_v, z_t)
    assert not os.path.exists(tmp_path / "x.png")


def test_metrics_package_does_not_import_matplotlib():
    code = "import sys, lavis_latent.metrics, lavis_latent.metrics.gap_plot; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": REPO_ROOT})
    assert out.stdout.strip().splitlines()[-1] == "False"


# ---------------------------------------------------------------------------------------------------------------------
# evaluate --plot on a tiny trained ALBEF
# ---------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def retrieval_ckpt(session_cache_root, tmp_path_factory):
    """One short fine-tuning epoch of the tiny ALBEF with every regularizer (no evaluation); its checkpoint."""
    from lavis_latent import train

    out = tmp_path_factory.mktemp("ret_ckpt")
    runner = train.main(["--cfg-path", demo_yaml("albef_retrieval_all.yaml"), "--options", "run.max_epoch=1",
                         "datasets.demo_retrieval.build_info.generator.num_train=48", "run.valid_splits=[]",
                         "run.test_splits=[]", f"run.output_dir={out}"])
    ckpt = os.path.join(str(runner.output_dir), "checkpoint_0.pth")
    assert os.path.isfile(ckpt)
    return ckpt


def test_evaluate_plot_writes_the_test_split_picture(retrieval_ckpt, session_cache_root, tmp_path, capsys):
    from lavis_latent import evaluate

    out = tmp_path / "eval"
    runner, results = evaluate.main(["--cfg-path", demo_yaml("albef_retrieval_all.yaml"), "--plot", "--options",
                                     "datasets.demo_retrieval.build_info.generator.num_train=48",
                                     f"model.pretrained={retrieval_ckpt}", f"run.output_dir={out}"])
    assert set(results) == {"test"} and "gap_centroid_distance" in results["test"]
    run_dir = str(runner.output_dir)
    picture = os.path.join(run_dir, "gap_test.png")
    assert glob.glob(os.path.join(str(out), "*", "gap_*.png")) == [picture]
    image = read_png(picture)
    assert image.shape[:2] == (400, 400) and image[..., :3].std() > 0.05
    assert list(runner.task.gap_plots) == [picture]
    assert f"modality-gap picture: {picture}" in capsys.readouterr().out
    # evaluate.txt still has the measures, equal to the result's
    lines = [json.loads(line) for line in open(os.path.join(run_dir, "evaluate.txt")) if '"gap_' in line]
    assert len(lines) == 1 and lines[0]["gap_centroid_distance"] == pytest.approx(
        results["test"]["gap_centroid_distance"])
    assert runner.task._gap_to_plot is None  # the features are not kept after drawing


def test_plot_on_a_task_without_paired_features_is_refused_before_building(tmp_path, monkeypatch):
    from lavis_latent import evaluate

    def no_build(*args, **kwargs):
        raise AssertionError("the run was built before the --plot check")

    monkeypatch.setattr(evaluate, "build_run", no_build)
    with pytest.raises(ConfigError, match=r"--plot.*run\.task 'linear_probe'.*latent_retrieval, "
                                          r"zero_shot_classification"):
        evaluate.main(["--cfg-path", demo_yaml("clip_linprobe_digits.yaml"), "--plot", "--options",
                       f"run.output_dir={tmp_path}"])
    assert evaluate.plotting_tasks() == ["latent_retrieval", "zero_shot_classification"]
