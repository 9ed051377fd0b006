"""spaCy, imported without PyTorch.

spaCy's machine-learning library (thinc) imports PyTorch whenever it is installed, although no
pipeline this project loads (blank ones with the sentencizer, or trained CNN ones) uses it.
That alone costs a serving process about 300 MB and a second or two at every start, and with
the ONNX Runtime encoders (the default) nothing else needs PyTorch. So PyTorch is hidden while
spaCy is imported; the "pytorch" encoder imports it later as usual.
"""

import sys

_HIDE = "torch" not in sys.modules
if _HIDE:
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` fails inside thinc
try:
    import spacy
    from spacy.language import Language
    from spacy.symbols import ORTH
    from spacy.tokens import Doc
    from spacy.util import compile_infix_regex
finally:
    if _HIDE:
        del sys.modules["torch"]

__all__ = ["ORTH", "Doc", "Language", "compile_infix_regex", "spacy"]
