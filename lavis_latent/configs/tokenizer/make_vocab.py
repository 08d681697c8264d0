"""Writes ``vocab.txt``: the offline WordPiece vocabulary of the plugin's ``tiny`` model types.

BERT's ``bert-base-uncased`` vocabulary lives on the HuggingFace hub, which tiny (offline) types must not touch.
This vocabulary has BERT's special tokens, every printable ASCII character alone and as a ``##`` continuation (so
no text ever maps to [UNK]: an unknown word splits into characters), and a few hundred whole English words that
cover the embedded demo world's captions, questions and statements. Run ``python make_vocab.py`` to rebuild it.
"""
import os
import string

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[ENC]", "[DEC]"]

WORDS = """
a an the this that these those there here it its is are was were be been being has have had do does did not no yes
and or but if then than so as of in on at by for with without from to into onto over under above below between
behind beside near far next left right top bottom middle center centre corner edge side upper lower front back
up down inside outside around across along through both each every all any some many few more most less least
one two three four five six seven eight nine ten zero first second third last other another same different only
photo picture image drawing scene view shot painting sketch render frame shows showing shown show contains
containing there's what which who where when how why whose color colour colors shape shapes size object objects
thing things item background foreground texture pattern plain striped dotted checkered solid noisy smooth bright
dark light pale deep small large big tiny huge medium little long short wide narrow tall round square
red green blue yellow orange purple pink brown black white gray grey cyan magenta gold silver violet
circle circles square squares triangle triangles rectangle rectangles star stars cross crosses diamond ring
ellipse oval disk box line lines dot dots heart hexagon pentagon
named called name morning afternoon evening night noon midnight today yesterday tomorrow monday tuesday
wednesday thursday friday saturday sunday spring summer autumn winter happy sad calm angry sleepy proud lonely
cheerful gloomy quiet loud new old young ancient modern favourite favorite lucky unlucky owner belongs
alice bob carol dave eve frank grace heidi ivan judy mallory oscar peggy trent victor walter
true false entailment neutral contradiction statement hypothesis answer question yes no maybe
image left right pair pairs both neither either exactly least most same more fewer than
man woman person people dog cat car tree house sky water street table room bird horse train bus
sitting standing walking running holding looking playing eating riding wearing near
artist beach bigger checks city colored companion contain corners drawn feeling forest higher images kind made main
mood nothing park place placed position someone stripes
""".split()


def build_vocab():
    """Return the vocabulary as a list of tokens, specials first, no duplicates."""
    chars = [c for c in string.ascii_lowercase + string.digits + string.punctuation]
    tokens = SPECIAL + chars + ["##" + c for c in chars] + WORDS
    seen, vocab = set(), []
    for tok in tokens:
        if tok not in seen:
            seen.add(tok)
            vocab.append(tok)
    return vocab


if __name__ == "__main__":
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vocab.txt")
    with open(path, "w") as f:
        f.write("\n".join(build_vocab()) + "\n")
    print(f"wrote {path}")
