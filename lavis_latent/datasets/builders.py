"""LAVIS dataset builders for the embedded demo world (:mod:`lavis_latent.datasets.demo_data`).

=================  =====================================  =====================================================
builder name       LAVIS builder it subclasses            dataset classes (train / eval)
=================  =====================================  =====================================================
``demo_retrieval`` ``coco_retrieval``                     RetrievalDataset / RetrievalEvalDataset
``demo_caption``   ``coco_caption``                       CaptionDataset / COCOCapEvalDataset (pretraining)
``demo_vqa``       ``coco_vqa``                           COCOVQADataset / COCOVQAEvalDataset
``demo_nlvr``      ``nlvr``                               NLVRDataset / NLVREvalDataset
``demo_snli_ve``   ``snli_ve``                            SNLIVisualEntialmentDataset (both)
=================  =====================================  =====================================================

Each default yaml (``lavis_latent/configs/datasets/demo_<task>/defaults.yaml``) declares every split with storage
paths relative to LAVIS's ``cache_root`` (under ``lavis_latent_demo/``), processors for a 64 px model, and a
``build_info.generator`` block with the :func:`~lavis_latent.datasets.demo_data.generate` parameters. So
``datasets: {demo_retrieval: {}}`` in a user yaml just works: on the main process ``_download_data`` generates the
world when it is missing or was generated with other parameters (instead of LAVIS's download), and ``build`` checks
every annotation file, the image folder and every referenced image before LAVIS builds the datasets.
"""
from lavis.common.registry import registry
from lavis.datasets.builders.classification_builder import NLVRBuilder, SNLIVisualEntailmentBuilder
from lavis.datasets.builders.retrieval_builder import COCORetrievalBuilder
from lavis.datasets.builders.vqa_builder import COCOVQABuilder

from lavis_latent.datasets.config_files import check_annotation_files
from lavis_latent.datasets.generation import GeneratedDataMixin
from lavis_latent.datasets.plugin_builder import PluginBuilderMixin, register_plugin_builder

# lavis/datasets/builders/caption_builder.py defines two classes named COCOCapBuilder (the second is the "nocaps"
# builder, eval only) so importing the name gives the wrong one: take coco_caption's class from the registry.
COCOCapBuilder = registry.get_builder_class("coco_caption")


class DemoBuilderMixin(GeneratedDataMixin, PluginBuilderMixin):
    """Generation and up-front checks shared by the demo builders (mixed in before a LAVIS builder class).

    ``_download_data`` and ``build`` take ``skip_bad_images`` (``run.skip_bad_images``, passed by
    :func:`~lavis_latent.datasets.checks.build_datasets_checked`): then a referenced image may be missing (the checked
    build drops such training samples); otherwise every one must exist.
    """

    image_suffix = ""  # appended to annotation image names by the dataset class (SNLI-VE: ".jpg")
    takes_skip_bad_images = True  # _download_data and build take skip_bad_images

    def check_files(self, skip_bad_images=False):
        """:func:`check_annotation_files` on this builder's config, with a demo-specific hint; every referenced image
        must exist as well unless ``skip_bad_images``."""
        return check_annotation_files(
            self.config, name=self.name, check_images=not skip_bad_images, image_suffix=self.image_suffix,
            hint=("Demo data is generated into build_info.generator.root when build_info.generator.enabled is true and "
                  "the storage paths lie under that root; otherwise point the key at an existing file."))

    def _download_data(self, skip_bad_images=False):
        # LAVIS calls this on the main process only, then barriers: generate instead of downloading
        self.prepare_demo_data()
        self.check_files(skip_bad_images)

    def _download_ann(self):
        self.prepare_demo_data()

    def _download_vis(self):
        pass

    def build(self, skip_bad_images=False):
        """Check every file up front (on every rank; images unless ``skip_bad_images``), then LAVIS's ``build``."""
        self.check_files(skip_bad_images)
        return super().build()


@register_plugin_builder("demo_retrieval")
class DemoRetrievalBuilder(DemoBuilderMixin, COCORetrievalBuilder):
    """Image-text retrieval on the demo world (COCO karpathy format)."""


@register_plugin_builder("demo_caption")
class DemoCaptionBuilder(DemoBuilderMixin, COCOCapBuilder):
    """Image-caption pairs for ALBEF / CLIP pretraining (``image_text_pretrain``) on the demo world."""


@register_plugin_builder("demo_vqa")
class DemoVQABuilder(DemoBuilderMixin, COCOVQABuilder):
    """VQA on the demo world; val/test carry the official VQA files, so LAVIS's vqa task reports ``agg_metrics``
    and per answer type (``shared`` / ``image_only``) accuracies."""


@register_plugin_builder("demo_nlvr")
class DemoNLVRBuilder(DemoBuilderMixin, NLVRBuilder):
    """NLVR2-style statements about pairs of demo scenes."""


@register_plugin_builder("demo_snli_ve")
class DemoSNLIVEBuilder(DemoBuilderMixin, SNLIVisualEntailmentBuilder):
    """SNLI-VE-style entailment on demo scenes (neutral = a text-only fact the image cannot confirm)."""

    image_suffix = ".jpg"


DEMO_BUILDERS = {
    cls.name: cls
    for cls in (DemoRetrievalBuilder, DemoCaptionBuilder, DemoVQABuilder, DemoNLVRBuilder, DemoSNLIVEBuilder)
}
