"""Reading a LAVIS dataset's images with errors that name the file, or (opt-in) skipping unreadable training
samples (see :mod:`lavis_latent.datasets.checks`)."""
import logging
import os

from PIL import Image
from torch.utils.data import Dataset

from lavis_latent.datasets.annotation_checks import annotation_format, images_of

#: exceptions that mean "this image file cannot be read" (PIL raises OSError subclasses, SyntaxError for some
#: broken PNGs, DecompressionBombError for absurd sizes)
IMAGE_ERRORS = (OSError, SyntaxError, Image.DecompressionBombError)


class BadImageError(OSError):
    """An image named by an annotation entry is missing or cannot be decoded (the message names the file)."""


class CheckedImageDataset(Dataset):
    """A LAVIS dataset whose unreadable images raise :class:`BadImageError` naming the file, or (``skip=True``)
    are replaced by the next readable sample, counted in ``skipped``. Everything else (``collater``, ``text``,
    ``img2txt``, ``annotation``, ...) is the wrapped dataset's."""

    def __init__(self, dataset, where, skip=False, max_tries=16):
        self.dataset, self.where, self.skip, self.max_tries = dataset, where, skip, max_tries
        self.bad_indices = set()  # samples found unreadable (in this process), never read again

    @property
    def skipped(self):
        """How many samples this process found unreadable and skipped."""
        return len(self.bad_indices)

    def __len__(self):
        return len(self.dataset)

    def collater(self, samples):
        """The wrapped dataset's collater."""
        return self.dataset.collater(samples)

    def _describe(self, index, err):
        files = getattr(err, "filename", None)
        if not files:
            try:
                ann = self.dataset.annotation[index]
                fmt = annotation_format(type(self.dataset)) or {}
                names = images_of(ann, fmt.get("image_suffix", ""))
                files = ", ".join(os.path.join(str(self.dataset.vis_root), n) for n in names) or "?"
            except Exception:  # noqa: BLE001  (best effort: the message must not hide the original error)
                files = "?"
        return f"{self.where}, sample {index}: cannot read image {files}: {type(err).__name__}: {err}"

    def _read(self, index):
        """The sample, or None when (skipping) its image is unreadable."""
        if index in self.bad_indices:
            return None
        try:
            return self.dataset[index]
        except IMAGE_ERRORS as err:
            message = self._describe(index, err)
            if not self.skip:
                raise BadImageError(message + " (set run.skip_bad_images: true to skip such training "
                                              "samples)") from err
            self.bad_indices.add(index)
            logging.warning("%s; skipped (%d unreadable samples skipped so far in this process)", message,
                            self.skipped)
            return None

    def __getitem__(self, index):
        n = len(self.dataset)
        for k in range(min(self.max_tries, n)):
            sample = self._read((index + k) % n)
            if sample is not None:
                return sample
        raise BadImageError(f"{self.where}: {min(self.max_tries, n)} samples in a row from index {index} have "
                            "unreadable images; check the image folder")

    def __getattr__(self, name):
        if name == "dataset" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.dataset, name)
