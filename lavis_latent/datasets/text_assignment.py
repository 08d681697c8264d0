"""ALBEF's text-assignment (TA) pre-training data for NLVR2, built on any LAVIS image-caption dataset.

ALBEF (Li et al. 2021, Sec. 5.3) prepares its NLVR2 model, whose fusion layers attend to two images, with one epoch
of TA on the pre-training images: given a pair of images and a text, say whether the text describes the first image,
the second, or neither (three classes). LAVIS 1.0.2 has the two-image model but not this step (its ``albef_nlvr``
type starts from ALBEF's already TA-trained checkpoint). :class:`TextAssignmentDataset` turns a caption dataset
into TA samples in the format of LAVIS's NLVR2 dataset, so LAVIS's ``AlbefNLVR`` forward trains on it unchanged
(with ``num_classes: 3``); the task ``latent_text_assignment`` wraps the train split of every configured caption
dataset with it.
"""
import random

from torch.utils.data import Dataset
from torch.utils.data.dataloader import default_collate

#: label of each case: the text describes the first image, the second image, or neither
TA_LABELS = {"first": 0, "second": 1, "neither": 2}


class TextAssignmentDataset(Dataset):
    """TA samples from a map-style caption dataset (items with ``image`` and ``text_input``).

    Item ``i`` keeps caption ``i`` and draws its case uniformly: its own image first and a random other image second
    (label 0), the reverse (label 1), or two random other images (label 2). "Other" means another image file (the
    annotation's ``image`` entry) when the dataset has annotations, another item otherwise. Returns LAVIS's NLVR2
    sample keys: ``image0``, ``image1``, ``text_input``, ``label``, ``instance_id``.

    Args:
        captions: the caption dataset (e.g. LAVIS's ``CaptionDataset``; its processors are used).
        rng: a ``random.Random``-like source (default: the ``random`` module, seeded by the run and per worker).
    """

    def __init__(self, captions, rng=None):
        if len(captions) < 3:
            raise ValueError(f"text assignment needs at least 3 captioned images, got {len(captions)}")
        self.captions = captions
        self.rng = rng or random
        annotation = getattr(captions, "annotation", None)
        if annotation is not None and all(isinstance(a, dict) and "image" in a for a in annotation):
            self.image_keys = [a["image"] for a in annotation]
        else:
            self.image_keys = list(range(len(captions)))
        if len(set(self.image_keys)) < 3:
            raise ValueError("text assignment needs captions of at least 3 different images")

    def __len__(self):
        return len(self.captions)

    def _other(self, index, exclude=()):
        """A random item whose image differs from item ``index``'s and from the images of ``exclude``."""
        taken = {self.image_keys[index]} | {self.image_keys[j] for j in exclude}
        while True:
            j = self.rng.randrange(len(self.captions))
            if self.image_keys[j] not in taken:
                return j

    def __getitem__(self, index):
        sample = self.captions[index]
        case = self.rng.randrange(3)
        first = self._other(index)
        other = self.captions[first]["image"]
        if case == TA_LABELS["first"]:
            image0, image1 = sample["image"], other
        elif case == TA_LABELS["second"]:
            image0, image1 = other, sample["image"]
        else:
            image0, image1 = other, self.captions[self._other(index, exclude=(first,))]["image"]
        return {"image0": image0, "image1": image1, "text_input": sample["text_input"], "label": case,
                "instance_id": str(index)}

    def collater(self, samples):
        """Batch a list of items (``default_collate``, as LAVIS's NLVR2 dataset)."""
        return default_collate(samples)
