"""Small random training batches in the collated format each model's LAVIS dataset gives it.

Every model the plugin registers has a ``dummy_inputs(n=2, seed=0)`` method (as HuggingFace models have
``dummy_inputs``) built from these helpers: a batch its training ``forward`` accepts, with the augmented views its
``latent:`` block needs. The registry-driven test runs every registered model on it, and a user can smoke-test a
config with it (``model(model.dummy_inputs())``).
"""
import torch

from lavis_latent.processors.paired_views import PairedViews

CAPTIONS = ["a red circle at the top left", "a blue square on a plain background", "two green triangles",
            "a small yellow star near the bottom", "a purple ring called alice", "an orange cross in the morning"]
#: what LAVIS's runner adds to every training batch
STEP_KEYS = {"epoch": 0, "iters": 1, "num_iters_per_epoch": 10}


def random_images(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """[n, 3, size, size] standard-normal images (already "normalised", as a processor would give them)."""
    return torch.randn(n, 3, size, size, generator=generator)


def captions(n: int) -> list:
    """n short captions (cycling through :data:`CAPTIONS`)."""
    return [CAPTIONS[i % len(CAPTIONS)] for i in range(n)]


def image_text_batch(n: int, size: int, seed: int = 0, paired: bool = False) -> dict:
    """An image-caption batch (retrieval, pretraining, two-tower): ``image`` [n, 3, size, size], ``text_input``
    (n captions), ``image_id`` [n] (all distinct) and the runner's step keys. ``paired``: ``image`` and
    ``text_input`` are ``PairedViews(view, aug)``, as the paired-view processors give them (the aug caption is the
    view's words reversed)."""
    g = torch.Generator().manual_seed(seed)
    image, text = random_images(n, size, g), captions(n)
    if paired:
        image = PairedViews(image, random_images(n, size, g))
        text = PairedViews(text, [" ".join(reversed(c.split())) for c in text])
    return dict(STEP_KEYS, image=image, text_input=text, image_id=torch.arange(n))


def vqa_batch(n: int, size: int, seed: int = 0) -> dict:
    """A VQA batch (LAVIS's ``VQADataset.collater``): n questions, n + 1 answers (the first question has two)
    with weights, and ``n_answers``."""
    g = torch.Generator().manual_seed(seed)
    answers = ["red", "circle", "top", "blue", "square", "star", "ring"]
    return dict(STEP_KEYS, image=random_images(n, size, g), text_input=[f"what is shown {i}?" for i in range(n)],
                answer=[answers[i % len(answers)] for i in range(n + 1)], weight=torch.ones(n + 1),
                n_answers=torch.tensor([2] + [1] * (n - 1)))


def nlvr_batch(n: int, size: int, seed: int = 0, num_classes: int = 2) -> dict:
    """An NLVR2 batch: two images per statement (``image0``, ``image1``) and a label in ``range(num_classes)``."""
    g = torch.Generator().manual_seed(seed)
    return dict(STEP_KEYS, image0=random_images(n, size, g), image1=random_images(n, size, g),
                text_input=captions(n), label=torch.arange(n) % num_classes)


def classification_batch(n: int, size: int, seed: int = 0, num_classes: int = 3) -> dict:
    """An SNLI-VE batch: one image and one hypothesis per sample, a label in ``range(num_classes)``."""
    g = torch.Generator().manual_seed(seed)
    return dict(STEP_KEYS, image=random_images(n, size, g), text_input=captions(n),
                label=torch.arange(n) % num_classes)


def vit_image_size(visual_encoder) -> int:
    """The input resolution of LAVIS's ViT (``patch_embed.img_size``)."""
    size = visual_encoder.patch_embed.img_size
    return int(size[0] if isinstance(size, (tuple, list)) else size)
