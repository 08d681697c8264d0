"""The paper's evaluation datasets: natural distribution shifts (Table 2, zero-shot) and CyCLIP's 14 linear-probe
datasets (Table 3), as LAVIS builders that read each dataset's own on-disk layout (nothing is downloaded).

Class names and prompt templates are CLIP's as CLIP_benchmark packages them (``configs/eval/clip_benchmark.json``,
MIT licence; the source commit is recorded in the file); where CLIP_benchmark takes the names from torchvision
(DTD, FGVC Aircraft, Food-101, Stanford Cars, STL-10, Rendered SST2, CIFAR) they come from the dataset's own files,
``_`` -> space. The ImageNet variants use the 1000 ImageNet names (index = position of the WordNet id in the sorted
list of the 1000 ILSVRC-2012 wnids).

=================  =====================================  ==================================  ======================
builder            reader                                 layout under ``images.storage``      splits
=================  =====================================  ==================================  ======================
``caltech101``     own (torchvision drops the background  ``caltech101/101_ObjectCategories/``  ``train``, ``test``
                   class CLIP keeps: 102 classes)         ``<category>/image_0001.jpg``        (seeded, per class)
``dtd``            ``torchvision.datasets.DTD``            ``dtd/dtd/{images,labels}``          train, val, test
``fgvc_aircraft``  ``torchvision.datasets.FGVCAircraft``   ``fgvc-aircraft-2013b/data``         train, val, trainval,
                                                                                               test
``flowers102``     own (torchvision md5-checks the .mat   ``flowers-102/{jpg,imagelabels.mat,  train, val, test
                   files)                                 setid.mat}``
``food101``        ``torchvision.datasets.Food101``        ``food-101/{images,meta}``           train, test
``gtsrb``          ``torchvision.datasets.GTSRB``          ``gtsrb/GTSRB/...``                  train, test
``oxford_pets``    ``torchvision.datasets.OxfordIIITPet``  ``oxford-iiit-pet/{images,           trainval, test
                                                          annotations}``
``rendered_sst2``  ``torchvision.datasets.RenderedSST2``   ``rendered-sst2/{train,valid,test}``  train, val, test
``stanford_cars``  ``torchvision.datasets.StanfordCars``   ``stanford_cars/{devkit,cars_train,   train, test
                                                          cars_test,...}``
``stl10``          own (torchvision md5-checks the         ``stl10_binary/*.bin``               train, test
                   binaries)
``svhn``           own (torchvision md5-checks the .mat)  ``{train,test}_32x32.mat``          train, test
``imagenet_v2``    own (folders are class indices)        ``imagenetv2-matched-frequency-      test
                                                          format-val/<0..999>/*``
``imagenet_sketch`` ``torchvision ImageFolder`` layout     ``sketch/<wnid>/*``                  test
``imagenet_a``     wnid folders, 200-class subset         ``imagenet-a/<wnid>/*``              test
``imagenet_r``     wnid folders, 200-class subset         ``imagenet-r/<wnid>/*``              test
=================  =====================================  ==================================  ======================

ImageNet-A and -R label each image with its ImageNet index (0-999) and carry ``class_subset`` (the sorted ImageNet
indices of their 200 wnids): ``zero_shot_classification`` then scores only those classes (the 1000-way logits
restricted to the subset). Every builder checks its files before anything is built and raises
``FileNotFoundError`` naming the path it looked for, the config key that sets it and where the data comes from.
"""
from lavis_latent.datasets.eval_base import EvalClassificationDataset, EvalDatasetBuilder  # noqa: F401
from lavis_latent.datasets.eval_names import (  # noqa: F401
    SUBSET_WNIDS,
    clip_benchmark_data,
    clip_classnames,
    clip_templates,
    imagenet_wnids,
    wnid_indices,
)
from lavis_latent.datasets.eval_probe_builders import (
    Caltech101Builder,
    DTDBuilder,
    FGVCAircraftBuilder,
    Flowers102Builder,
    Food101Builder,
    GTSRBBuilder,
    OxfordPetsBuilder,
    RenderedSST2Builder,
    StanfordCarsBuilder,
    STL10Builder,
    SVHNBuilder,
)
from lavis_latent.datasets.eval_shift_builders import (
    ImageNetABuilder,
    ImageNetRBuilder,
    ImageNetSketchBuilder,
    ImageNetV2Builder,
)

__all__ = ["clip_benchmark_data", "clip_templates", "clip_classnames", "imagenet_wnids", "wnid_indices",
           "EvalClassificationDataset", "EVAL_BUILDERS", "SUBSET_WNIDS"]

EVAL_BUILDERS = {cls.name: cls for cls in (
    Caltech101Builder, DTDBuilder, FGVCAircraftBuilder, Flowers102Builder, Food101Builder, GTSRBBuilder,
    OxfordPetsBuilder, RenderedSST2Builder, StanfordCarsBuilder, STL10Builder, SVHNBuilder,
    ImageNetV2Builder, ImageNetSketchBuilder, ImageNetABuilder, ImageNetRBuilder)}
