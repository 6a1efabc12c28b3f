"""The risk check's sentence encoder: a small fine-tuned reader of meaning.

The linear model (:mod:`app.safety.classifier`) reads words and character n-grams, and
misses a crisis said in words it has not seen. This encoder (the first four layers of
all-MiniLM-L6-v2, fine-tuned with a three-way head on the labelled data in
``tests/data/risk/`` by ``scripts/train_risk_encoder.py``) reads the text as a whole. Its
reading is averaged into the linear model's (:func:`stack`); it never decides alone.

It ships as an int8 ONNX file (``app/safety/data/risk_encoder.onnx``) with its tokenizer,
runs in onnxruntime on one thread (no PyTorch, no network), and reads at most ``tokens``
tokens (64): a longer text is read as the first and last half of them. The weights are
quantised to 7 bits (onnxruntime's advice for CPUs without VNNI, where 8-bit products can
saturate). The same text always gets the same reading. If the encoder cannot run, the
check goes on with the linear model alone at its own thresholds, and the log says so.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from app.safety.once import load_once

DATA = Path(__file__).resolve().parent / "data"
ENCODER_FILE = DATA / "risk_encoder.onnx"
TOKENIZER_FILE = DATA / "risk_encoder_tokenizer.json"
log = logging.getLogger(__name__)
LONG_TEXT = 4_000  # characters; a longer text is tokenised as its first and last 2,000


class EncoderFileError(Exception):
    """The shipped encoder is missing or damaged (a start-up error, never ignored)."""


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def stack(p: tuple[float, float, float], e: tuple[float, float], weight: float) -> tuple[float, float, float]:
    """The linear model's probabilities p (none, elevated, crisis) with the encoder's
    e = (p(any risk), p(crisis)) averaged in on the logit scale, ``weight`` for the encoder."""
    risk = _sigmoid((1 - weight) * logit(1 - p[0]) + weight * logit(e[0]))
    crisis = _sigmoid((1 - weight) * logit(p[2]) + weight * logit(e[1]))
    return (1 - risk, max(0.0, risk - crisis), crisis)


def token_ids(tokenizer, text: str, tokens: int) -> list[int]:
    """[CLS], the text's tokens (its first and last halves when there are too many), [SEP]:
    what the encoder reads, in training (scripts/train_risk_encoder.py) and here alike."""
    body = tokens - 2
    if len(text) <= LONG_TEXT:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
    else:  # only the ends are read: no need to tokenise a whole long paste
        ids = [*tokenizer.encode(text[:LONG_TEXT // 2], add_special_tokens=False).ids,
               *tokenizer.encode(text[-(LONG_TEXT // 2):], add_special_tokens=False).ids]
    if len(ids) > body:
        head = (body + 1) // 2
        ids = ids[:head] + ids[len(ids) - (body - head):]
    return [tokenizer.token_to_id("[CLS]"), *ids, tokenizer.token_to_id("[SEP]")]


class RiskEncoder:
    def __init__(self, model: Path = ENCODER_FILE, tokenizer: Path = TOKENIZER_FILE,
                 tokens: int = 64) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        try:
            self.tokenizer = Tokenizer.from_file(str(tokenizer))
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3  # errors only, and into Haven's log, never the terminal
            self.session = onnxruntime.InferenceSession(str(model), options,
                                                        providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime and tokenizers raise their own types
            raise EncoderFileError(f"the risk encoder could not be read: {exc}") from exc
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.tokens = tokens

    def ids(self, text: str) -> list[int]:
        return token_ids(self.tokenizer, text, self.tokens)

    def read(self, text: str) -> tuple[float, float]:
        """(p(any risk), p(crisis)) for ``text``."""
        ids = np.array([self.ids(text)], dtype=np.int64)
        p = self.session.run(None, {"ids": ids, "mask": np.ones_like(ids)})[0][0]
        return float(1 - p[0]), float(p[2])


@load_once
def risk_encoder(tokens: int) -> RiskEncoder | None:
    """The shipped encoder, or None when it cannot run here (onnxruntime missing or refusing
    this CPU, a damaged file): the check then goes on with the linear model alone, at its own
    thresholds, and says so once in Haven's log."""
    try:
        return RiskEncoder(tokens=tokens)
    except (EncoderFileError, ImportError, OSError) as exc:
        log.error("risk check: the encoder cannot run (%s); the linear model reads alone", exc)
        return None


def encoder_reading(text: str, tokens: int, encoder: RiskEncoder | None = None) -> tuple[float, float] | None:
    """The encoder's reading of ``text``, or None when it cannot give one."""
    reader = encoder or risk_encoder(tokens)
    if reader is None:
        return None
    try:
        return reader.read(text)
    except Exception as exc:  # onnxruntime's own errors; the check must still answer
        log.error("risk check: the encoder failed on a text of %d characters (%s)", len(text), exc)
        return None

