"""Sequence embedders: one small interface, a one-hot reference and structRFM.

An embedder turns an RNA sequence of L nucleotides into per-nucleotide features
``(L, D)`` float32 (:class:`SequenceEmbedder`). Two are shipped:

* ``onehot`` -- :class:`OneHotEmbedder`: A, C, G, U and "other" as 5 one-hot columns; no
  model, no extra (the control every learned feature must beat);
* ``structrfm`` -- :class:`StructRFMEmbedder`: the last hidden layer of structRFM (Zhu et
  al., "A fully-open structure-guided RNA foundation model", 2025; MIT; the ``structRFM``
  package, 0.0.9), a BERT encoder (Devlin et al. 2019, arXiv:1810.04805) pretrained on
  about 21 M sequence–structure pairs; 768 features per nucleotide, ``[CLS] seq [SEP]``
  with the two special tokens dropped, exactly its ``extract_feature(seq)["seq_feat"]``.
  Its pretrained weights are the authors' release archive ``structRFM_checkpoint.tar.gz``,
  which the user downloads and unpacks; without it only a randomly initialised model (a
  control, ``random_weights=True``) can be built.

Long chains. structRFM reads at most ``max_length - 2`` nucleotides (512). A longer chain
is embedded in overlapping windows (:func:`window_starts`: ``window`` nt, consecutive
windows sharing ``overlap`` nt, the last window ending at the chain's end) and each
nucleotide's feature is the weighted mean over the windows that hold it, the weight
falling linearly from the window's centre to 1/(window/2) at its edges
(:func:`combine_windows`), so a nucleotide is described mostly by the window in which it
has the most context on both sides. A chain that fits one window is embedded whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnamotif_data.common.extras import require
from rnamotif_data.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["SequenceEmbedder", "OneHotEmbedder", "StructRFMEmbedder", "EMBEDDERS", "make_embedder",
           "window_starts", "combine_windows", "clean_sequence", "CHECKPOINT_ENV", "checkpoint_sha256"]

#: the environment variable structRFM's authors use for the unpacked checkpoint folder
CHECKPOINT_ENV = "structRFM_checkpoint"
_ALPHABET = "ACGU"


def clean_sequence(sequence: str) -> str:
    """Upper case, T as U, every letter other than A, C, G, U as N (the embedders' input).

    Modified residues arrive as their parents already (:mod:`rnamotif_data.rna.modified`)."""
    s = sequence.upper().replace("T", "U")
    return "".join(c if c in _ALPHABET else "N" for c in s)


def window_starts(length: int, window: int, overlap: int) -> list[int]:
    """First positions of the windows that cover ``length`` nt: ``window`` nt each, every
    window sharing at least ``overlap`` nt with the next, the last ending at the end.

    Raises
    ------
    ConfigError
        If ``window < 1`` or ``overlap`` is not in ``[0, window)``.
    """
    if window < 1 or not 0 <= overlap < window:
        raise ConfigError(f"window {window} and overlap {overlap}: need window >= 1 and 0 <= overlap < window")
    if length <= window:
        return [0]
    step = window - overlap
    starts = list(range(0, length - window, step))
    starts.append(length - window)
    return starts


def combine_windows(length: int, starts: list[int], parts: list[np.ndarray]) -> np.ndarray:
    """Per-nucleotide features of a chain from its windows' features.

    ``parts[k]`` is ``(n_k, D)`` for the window at ``starts[k]``. Each position's feature
    is the mean over the windows that hold it, weighted by ``min(i + 1, n_k - i)`` (its
    distance, in nt, from the nearer window edge): a triangle peaking at the window's
    centre. Returns ``(length, D)`` float32.
    """
    dim = parts[0].shape[1]
    acc = np.zeros((length, dim), dtype=np.float64)
    wsum = np.zeros(length, dtype=np.float64)
    for s, p in zip(starts, parts):
        n = len(p)
        i = np.arange(n)
        w = np.minimum(i + 1, n - i).astype(np.float64)
        acc[s:s + n] += w[:, None] * p
        wsum[s:s + n] += w
    return (acc / wsum[:, None]).astype(np.float32)


class SequenceEmbedder:
    """The interface: ``name``, ``version``, ``dim``, ``max_length`` (nt per model call, or
    None for no limit), ``checkpoint_sha256`` (None when there are no weights) and
    :meth:`embed_batch`. :meth:`embed` adds the windows for long chains.

    Subclasses implement ``_embed_short(sequences)`` for sequences of at most ``max_length`` nt.
    """

    name: str = ""
    version: str = ""
    dim: int = 0
    max_length: int | None = None
    checkpoint_sha256: str | None = None
    #: window and overlap (nt) for chains longer than ``max_length``
    window: int = 512
    overlap: int = 128

    @property
    def identity(self) -> str:
        """What the features depend on: name, version, weights, windows (the cache key's prefix)."""
        return f"{self.name}/{self.version}/{self.checkpoint_sha256}/{self.window}/{self.overlap}"

    def _embed_short(self, sequences: list[str]) -> list[np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError

    def embed(self, sequence: str) -> np.ndarray:
        """``(L, D)`` float32 features of one sequence of L nt (windows past ``max_length``)."""
        return self.embed_batch([sequence])[0]

    def embed_batch(self, sequences: list[str]) -> list[np.ndarray]:
        """``(L_i, D)`` float32 features of each sequence; long ones in windows (module docstring)."""
        seqs = [clean_sequence(s) for s in sequences]
        limit = self.max_length
        pieces: list[tuple[int, int, str]] = []  # (sequence, window start, text)
        for k, s in enumerate(seqs):
            if limit is None or len(s) <= limit:
                pieces.append((k, 0, s))
            else:
                w = min(self.window, limit)
                pieces += [(k, st, s[st:st + w]) for st in window_starts(len(s), w, min(self.overlap, w - 1))]
        feats = self._embed_short([p[2] for p in pieces]) if pieces else []
        out: list[np.ndarray] = []
        for k, s in enumerate(seqs):
            mine = [(st, f) for (j, st, _), f in zip(pieces, feats) if j == k]
            if len(s) == 0:
                out.append(np.zeros((0, self.dim), dtype=np.float32))
            elif len(mine) == 1:
                out.append(np.asarray(mine[0][1], dtype=np.float32))
            else:
                out.append(combine_windows(len(s), [m[0] for m in mine], [m[1] for m in mine]))
        return out


class OneHotEmbedder(SequenceEmbedder):
    """A, C, G, U, other as 5 one-hot columns (``(L, 5)``); no model, any length."""

    name, version, dim, max_length = "onehot", "1", 5, None

    def _embed_short(self, sequences: list[str]) -> list[np.ndarray]:
        out = []
        for s in sequences:
            idx = np.array([_ALPHABET.find(c) for c in s], dtype=np.int64)
            idx[idx < 0] = 4
            out.append(np.eye(5, dtype=np.float32)[idx])
        return out


def checkpoint_sha256(path: str | os.PathLike) -> str:
    """sha256 of a checkpoint: of the file, or of a folder's files (sorted relative paths
    and contents), so the same weights give the same digest wherever they are unpacked."""
    p = Path(path)
    h = hashlib.sha256()
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    for f in files:
        h.update(f.relative_to(p).as_posix().encode() if f != p else b"")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class _RandomSpec:
    dim: int
    layer: int
    heads: int
    seed: int


class StructRFMEmbedder(SequenceEmbedder):
    """structRFM's last hidden layer per nucleotide (module docstring).

    Parameters
    ----------
    checkpoint:
        The unpacked ``structRFM_checkpoint`` folder (a Hugging Face ``BertForMaskedLM``
        folder: ``config.json`` and weights); default ``$structRFM_checkpoint``.
    random_weights:
        Build a randomly initialised model instead (a control; no checkpoint read).
    dim, layer, heads:
        Size of the model (768, 12, 12: structRFM base); a random model can be tiny.
    seed:
        torch seed of the random initialisation.
    device:
        ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available).
    batch_size:
        Sequences per forward pass.
    max_length:
        Tokens per sequence the model reads, the two special tokens included (514).

    Raises
    ------
    rnamotif_data.errors.MissingDependencyError
        Without the ``[embed]`` extra (torch, transformers, structRFM).
    rnamotif_data.errors.ConfigError
        Without a checkpoint and without ``random_weights``, or for a checkpoint that is not
        a folder of model files; one line that says what to do.
    """

    name = "structrfm"

    def __init__(self, checkpoint: str | os.PathLike | None = None, *, random_weights: bool = False,
                 dim: int = 768, layer: int = 12, heads: int = 12, seed: int = 0, device: str = "auto",
                 batch_size: int = 8, max_length: int = 514, window: int = 512, overlap: int = 128):
        what = "rnamotif embed --embedder structrfm"
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ConfigError(f"--batch-size {batch_size}: sequences per forward pass must be an integer >= 1")
        if random_weights and not (min(dim, layer, heads) >= 1 and dim % heads == 0):
            raise ConfigError(f"--size {dim},{layer},{heads}: DIM, LAYERS and HEADS must be >= 1 and DIM a multiple of "
                              "HEADS, e.g. 768,12,12")
        torch = require("torch", what, "embed")
        require("transformers", what, "embed")
        srfm = require("structRFM", what, "embed")
        self.version = str(getattr(srfm, "__version__", "unknown"))
        if checkpoint is None and not random_weights:
            checkpoint = os.environ.get(CHECKPOINT_ENV) or None
        if checkpoint is None and not random_weights:
            raise ConfigError("structRFM needs its pretrained weights: download structRFM_checkpoint.tar.gz from the "
                              "structRFM authors' release, unpack it and pass --checkpoint DIR (or set "
                              f"${CHECKPOINT_ENV}); --random-weights builds an untrained control instead")
        if checkpoint is not None:
            cp = Path(checkpoint)
            if not cp.is_dir() or not (cp / "config.json").is_file():
                raise ConfigError(f"{cp}: not a structRFM checkpoint folder (no config.json); unpack "
                                  "structRFM_checkpoint.tar.gz and pass the folder that holds config.json")
            self.checkpoint_sha256 = checkpoint_sha256(cp)
        else:
            spec = _RandomSpec(dim, layer, heads, seed)
            self.checkpoint_sha256 = f"random:{spec.dim}x{spec.layer}x{spec.heads}:seed{spec.seed}"
        self.dim, self.max_length = int(dim), int(max_length) - 2
        self.window, self.overlap, self.batch_size = min(window, self.max_length), overlap, batch_size
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif str(device).startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: this machine's torch sees no CUDA device; use --device cpu (or auto)")
        self.device = device
        infer = require("structRFM.infer", what, "embed")
        torch.manual_seed(seed)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # structRFM prints its device
                model = infer.structRFM_infer(from_pretrained=None if checkpoint is None else str(checkpoint),
                                              max_length=max_length, dim=dim, layer=layer,
                                              num_attention_heads=heads, device=device)
        except (OSError, ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"{checkpoint}: structRFM could not load it: {first}") from None
        self._torch, self._tokenizer, self._model = torch, model.tokenizer, model.model.eval()
        self.dim = int(self._model.config.hidden_size)

    def _embed_short(self, sequences: list[str]) -> list[np.ndarray]:
        torch = self._torch
        out: list[np.ndarray | None] = [None] * len(sequences)
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))  # similar lengths per batch
        for b in range(0, len(order), self.batch_size):
            idx = order[b:b + self.batch_size]
            texts = [f"[CLS]{sequences[i]}[SEP]" for i in idx]
            enc = self._tokenizer(texts, padding=True, return_tensors="pt")
            enc = {k: v.to(self.device) for k, v in enc.items()}
            with torch.no_grad():
                hidden = self._model(**enc, output_hidden_states=True).hidden_states[-1]
            hidden = hidden.float().cpu().numpy()
            for row, i in enumerate(idx):
                out[i] = hidden[row, 1:1 + len(sequences[i])]
        return out  # type: ignore[return-value]


#: embedders by name (``rnamotif embed --embedder NAME``)
EMBEDDERS = {"onehot": OneHotEmbedder, "structrfm": StructRFMEmbedder}


def make_embedder(name: str, **options) -> SequenceEmbedder:
    """An embedder by name (:data:`EMBEDDERS`) with its options.

    Raises
    ------
    rnamotif_data.errors.ConfigError
        For an unknown name, an option the embedder does not take, or an option out of
        range (``batch_size`` < 1; for structRFM a ``--size`` or ``--device`` it cannot use).
    """
    if name not in EMBEDDERS:
        raise ConfigError(f"unknown sequence model {name!r}; choose one of {', '.join(EMBEDDERS)}")
    batch = options.get("batch_size")
    if batch is not None and not (isinstance(batch, int) and batch >= 1):
        raise ConfigError(f"--batch-size {batch}: sequences per forward pass must be an integer >= 1")
    if name == "onehot":
        given = {k for k, v in options.items() if v not in (None, False)}
        if given - {"device", "batch_size"}:
            raise ConfigError(f"the onehot embedder takes no {', '.join(sorted(given))}")
        return OneHotEmbedder()
    return StructRFMEmbedder(**options)
