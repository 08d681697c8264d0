"""The demo world's file layout under its root (relative paths); the builders' default yaml use the same names."""
import os

from lavis_latent.datasets.generated_files import MANIFEST
from lavis_latent.datasets.world import SPLITS

FORMAT_VERSION = 1

LAYOUT = {
    "images": "images",
    "metadata": "metadata.json",
    "manifest": MANIFEST,
}
for _s in SPLITS:
    LAYOUT.update(
        {
            f"retrieval_{_s}": f"annotations/retrieval_{_s}.json",
            f"caption_{_s}": f"annotations/caption_{_s}.json",
            f"nlvr_{_s}": f"annotations/nlvr_{_s}.json",
            f"snli_ve_{_s}": f"annotations/snli_ve_{_s}.json",
        }
    )
LAYOUT["vqa_train"] = "annotations/vqa_train.json"
LAYOUT["vqa_answer_list"] = "annotations/vqa_answer_list.json"
for _s in ("val", "test"):
    LAYOUT[f"vqa_{_s}"] = f"annotations/vqa_{_s}.json"
    LAYOUT[f"vqa_{_s}_questions"] = f"annotations/vqa_{_s}_questions.json"  # official VQA questions format
    LAYOUT[f"vqa_{_s}_annotations"] = f"annotations/vqa_{_s}_annotations.json"  # official VQA annotations format
del _s


def layout_paths(root):
    """Absolute paths of every file and folder :func:`~lavis_latent.datasets.demo_data.generate` writes under
    ``root`` (nothing is created)."""
    root = os.path.abspath(os.path.expanduser(str(root)))
    out = {"root": root}
    out.update({key: os.path.join(root, rel) for key, rel in LAYOUT.items()})
    return out
