"""``eda_caption``: EDA text augmentation (Wei & Zou, EMNLP 2019) as a LAVIS caption processor.

The CLIP experiments of the paper augment captions "with EDA". EDA has four operations on a word list of length
``n``: synonym replacement (SR: ``max(1, alpha_sr * n)`` non-stop-words replaced by a WordNet synonym), random
insertion (RI: ``max(1, alpha_ri * n)`` synonyms inserted at random positions), random swap (RS: ``max(1, alpha_rs
* n)`` swaps of two random positions) and random deletion (RD: each word deleted with probability ``p_rd``; at least
one word is always kept). As EDA's ``eda()`` does for each augmented sentence, one operation is applied per call,
chosen uniformly among the available ones.

WordNet is optional: SR and RI need ``nltk`` *and* its WordNet corpus installed locally (``nltk.download("wordnet")``
done beforehand, or ``NLTK_DATA`` pointing at it). Neither is a dependency of this package. Without them, a one-line
notice is logged once per process and only RS and RD are used. Nothing is ever downloaded.

Determinism: every call draws one 62-bit number from torch's global RNG and seeds the processor's
``random.Random`` from ``(seed, that number)``, so the augmented captions follow torch's RNG exactly as LAVIS's
image processors' random crops do: a fixed ``run.seed`` (LAVIS's ``setup_seeds``: ``run.seed + rank``; DataLoader
workers get their own torch seeds) reproduces a run, ranks and workers draw different ones, ``seed`` changes all of
them, and a run resumed from a checkpoint that restores torch's RNG state (``runner_latent``) continues the same
stream (an EDA state of its own would restart on resume).
"""
import hashlib
import logging
import random

import torch
from lavis.common.registry import registry
from lavis.processors.blip_processors import BlipCaptionProcessor
from omegaconf import OmegaConf

from lavis_latent.processors.paired_views import PairedViews

__all__ = ["EdaCaptionProcessor", "eda", "random_swap", "random_deletion", "synonym_replacement",
           "random_insertion", "wordnet_available", "OPERATIONS"]

OPERATIONS = ("synonym", "insertion", "swap", "deletion")
_WORDNET_OPS = ("synonym", "insertion")

# EDA's stop-word list (never replaced by synonyms).
STOP_WORDS = frozenset("""i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she
her hers herself it its itself they them their theirs themselves what which who whom this that these those am is are
was were be been being have has had having do does did doing a an the and but if or because as until while of at by
for with about against between into through during before after above below to from up down in out on off over under
again further then once here there when where why how all any both each few more most other some such no nor not only
own same so than too very s t can will just don should now""".split())

_wordnet = None  # None: not probed yet; False: unavailable; otherwise the nltk WordNet reader


def wordnet_available():
    """Whether ``nltk`` and its WordNet corpus are installed locally (probed once per process; never downloads).

    Logs a one-line notice the first time it finds them missing.
    """
    global _wordnet
    if _wordnet is None:
        try:
            from nltk.corpus import wordnet

            wordnet.ensure_loaded()
            wordnet.synsets("dog")
            _wordnet = wordnet
        except Exception as err:  # ImportError (no nltk), LookupError (no corpus), anything else from nltk
            _wordnet = False
            logging.info("eda_caption: WordNet not available locally (%s: %s); EDA uses random swap and random "
                         "deletion only (install nltk and its 'wordnet' corpus for synonym replacement and random "
                         "insertion).", type(err).__name__, str(err).strip().splitlines()[0] if str(err).strip() else "")
    return _wordnet is not False


def _synonyms(word):
    """WordNet synonyms of ``word`` (lower-case, letters and spaces only, without ``word`` itself)."""
    if not wordnet_available():
        return []
    out = []
    for syn in _wordnet.synsets(word):
        for lemma in syn.lemmas():
            s = lemma.name().replace("_", " ").replace("-", " ").lower()
            s = "".join(c for c in s if c == " " or "a" <= c <= "z").strip()
            if s and s != word and s not in out:
                out.append(s)
    return out


def _count(alpha, n):
    return max(1, int(alpha * n))


def random_swap(words, n, rng):
    """Swap two random positions ``n`` times (EDA's RS); a permutation of ``words`` (a new list)."""
    words = list(words)
    if len(words) < 2:
        return words
    for _ in range(n):
        i, j = rng.randrange(len(words)), rng.randrange(len(words))
        tries = 0
        while i == j and tries < 3:  # EDA retries a few times to draw two different positions
            j = rng.randrange(len(words))
            tries += 1
        words[i], words[j] = words[j], words[i]
    return words


def random_deletion(words, p, rng):
    """Delete each word with probability ``p`` (EDA's RD); keeps one random word if all were deleted."""
    words = list(words)
    if len(words) <= 1:
        return words
    kept = [w for w in words if rng.random() >= p]
    return kept if kept else [words[rng.randrange(len(words))]]


def synonym_replacement(words, n, rng):
    """Replace up to ``n`` distinct non-stop-words by a random WordNet synonym (EDA's SR)."""
    words = list(words)
    candidates = sorted({w for w in words if w not in STOP_WORDS})
    rng.shuffle(candidates)
    replaced = 0
    for word in candidates:
        syns = _synonyms(word)
        if syns:
            choice = syns[rng.randrange(len(syns))]
            words = [choice if w == word else w for w in words]
            replaced += 1
        if replaced >= n:
            break
    return " ".join(words).split(" ")  # multi-word synonyms become several words


def random_insertion(words, n, rng):
    """Insert a synonym of a random word at a random position, ``n`` times (EDA's RI)."""
    words = list(words)
    for _ in range(n):
        for _attempt in range(10):
            syns = _synonyms(words[rng.randrange(len(words))]) if words else []
            if syns:
                words.insert(rng.randrange(len(words) + 1), syns[rng.randrange(len(syns))])
                break
    return " ".join(words).split(" ")


def eda(caption, rng, alpha_sr=0.1, alpha_ri=0.1, alpha_rs=0.1, p_rd=0.1, operations=OPERATIONS):
    """One EDA-augmented version of ``caption`` (words split on single spaces), one operation drawn from ``rng``.

    Args:
        caption: a cleaned caption (lower-case words separated by single spaces).
        rng: a ``random.Random``.
        alpha_sr, alpha_ri, alpha_rs: fraction of words changed by SR / RI / RS (at least one change each).
        p_rd: deletion probability of RD.
        operations: the allowed operations (subset of ``OPERATIONS``); SR and RI are dropped without WordNet.

    Returns:
        The augmented caption: never empty for a non-empty caption (an empty one is returned unchanged).
    """
    words = [w for w in caption.split(" ") if w]
    if not words:
        return caption
    ops = [op for op in operations if op not in _WORDNET_OPS or wordnet_available()]
    if not ops:
        return " ".join(words)
    op = ops[rng.randrange(len(ops))]
    n = len(words)
    if op == "swap":
        out = random_swap(words, _count(alpha_rs, n), rng)
    elif op == "deletion":
        out = random_deletion(words, p_rd, rng)
    elif op == "synonym":
        out = synonym_replacement(words, _count(alpha_sr, n), rng)
    else:
        out = random_insertion(words, _count(alpha_ri, n), rng)
    out = [w for w in out if w]
    return " ".join(out) if out else words[0]


def _derive_seed(seed, torch_seed):
    digest = hashlib.sha256(f"eda_caption:{seed}:{torch_seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


@registry.register_processor("eda_caption")
class EdaCaptionProcessor(BlipCaptionProcessor):
    """Training caption processor of ``clip_latent``: returns ``PairedViews(caption, eda_caption)``.

    ``caption`` is exactly what LAVIS's ``blip_caption`` returns (lower-case, punctuation removed, at most
    ``max_words`` words, ``prompt`` prefixed); ``eda_caption`` is one EDA operation applied to the cleaned caption
    (then prefixed with the same prompt). See the module docstring for the operations and for determinism.

    Config keys: ``prompt`` (""), ``max_words`` (50), ``seed`` (0), ``alpha_sr``, ``alpha_ri``, ``alpha_rs`` (0.1
    each), ``p_rd`` (0.1), ``operations`` (all four; SR and RI need WordNet, see the module docstring).
    """

    def __init__(self, prompt="", max_words=50, seed=0, alpha_sr=0.1, alpha_ri=0.1, alpha_rs=0.1, p_rd=0.1,
                 operations=OPERATIONS):
        super().__init__(prompt=prompt, max_words=max_words)
        operations = tuple(operations)
        unknown = [op for op in operations if op not in OPERATIONS]
        if unknown or not operations:
            raise ValueError(f"eda_caption: operations must be a non-empty subset of {list(OPERATIONS)}, "
                             f"got {list(operations)}")
        for name, value in (("alpha_sr", alpha_sr), ("alpha_ri", alpha_ri), ("alpha_rs", alpha_rs), ("p_rd", p_rd)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"eda_caption: {name} must be in [0, 1], got {value!r}")
        self.seed = int(seed)
        self.alpha_sr, self.alpha_ri, self.alpha_rs, self.p_rd = (float(alpha_sr), float(alpha_ri),
                                                                  float(alpha_rs), float(p_rd))
        self.operations = operations
        self._rng = random.Random()

    @property
    def rng(self):
        """A ``random.Random`` for one caption, seeded from ``(seed, one draw of torch's global RNG)``."""
        self._rng.seed(_derive_seed(self.seed, int(torch.randint(0, 2**62, ()).item())))
        return self._rng

    def augment(self, caption):
        """One EDA augmentation of an already cleaned caption (no prompt)."""
        return eda(caption, self.rng, self.alpha_sr, self.alpha_ri, self.alpha_rs, self.p_rd, self.operations)

    def __call__(self, caption):
        """``PairedViews(prompt + clean(caption), prompt + eda(clean(caption)))``."""
        clean = self.pre_caption(caption)
        return PairedViews(self.prompt + clean, self.prompt + self.augment(clean))

    @classmethod
    def from_config(cls, cfg=None):
        """Build from a processor config (see the class docstring for the keys)."""
        if cfg is None:
            cfg = OmegaConf.create()
        return cls(
            prompt=cfg.get("prompt", ""),
            max_words=cfg.get("max_words", 50),
            seed=cfg.get("seed", 0),
            alpha_sr=cfg.get("alpha_sr", 0.1),
            alpha_ri=cfg.get("alpha_ri", 0.1),
            alpha_rs=cfg.get("alpha_rs", 0.1),
            p_rd=cfg.get("p_rd", 0.1),
            operations=cfg.get("operations", OPERATIONS),
        )
