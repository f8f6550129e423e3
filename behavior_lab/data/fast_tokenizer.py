"""FAST action tokenizer (DCT + BPE) for the auxiliary next-token loss (seed spec §7).

The seed trains Physical Intelligence's `physical-intelligence/fast` processor (HF remote code) on
delta-action chunks (spec §7.1). This is our own implementation of the same pipeline:

1. select the encoded dimensions (default "0:6,7:23": 22 dims, the 4th torso joint is skipped);
2. clip each dimension to the dataset's action [q01, q99] and map to [-1, 1]:
   y = 2(x - q01) / max(q99 - q01, 1e-6) - 1                                  (spec §7.1)
3. DCT-II, orthonormal, over time, per dimension (scipy.fft.dct(axis=0, norm="ortho"));
4. round(scale * coeff) with scale = 10;
5. flatten row-major from (H, D): frequency-major order, i.e. the D coefficients of frequency 0
   first, then frequency 1, ... (what FAST's `dct(a, axis=0).flatten()` does);
6. integer v -> character chr(v - min_token), then byte-pair encoding to vocab 1024.

Deviations from the HF reference, each deliberate:
- `min_token` is the analytic bound -ceil(scale * sqrt(H)), not the minimum seen while fitting. After
  the clip in step 2 every |y| <= 1, and an orthonormal DCT preserves the L2 norm, so every
  |coeff| <= ||y||_2 <= sqrt(H). The alphabet (2*ceil(scale*sqrt(H)) + 1 = 111 symbols for H=30) then
  covers every chunk that can ever be encoded, so `encode` never meets an unknown symbol.
- Pre-tokenisation is configurable. "none" (default) trains BPE on the raw symbol string (one word
  per chunk), so merges may span dimensions and frequencies. "byte_level" sets up what the HF code's
  `ByteLevelBPETokenizer` does: the GPT-2 byte-level pre-tokeniser splits each string at regex class
  changes (letters / digits / spaces / punctuation of the characters chr(v - min_token)), so no token
  spans a class boundary. Because the seed's min_token is data-dependent, its class boundaries fall on
  other codes than ours: "byte_level" approximates the seed's segmentation, it does not reproduce it.
- Id 0 is reserved for a pad special token by default (`reserve_pad_id`), see PAD_TOKEN.
- Decoding is total: malformed sequences are padded with zero coefficients or truncated to H*D
  coefficients (the HF code returns an all-zero chunk instead), and ids outside the vocabulary are
  dropped. FAST is never decoded by the seed at inference (spec §7.3); decode serves tests/analysis.

BPE training in `tokenizers` has no randomness (no dropout; identical words are counted in a map;
alphabet ids are assigned in code-point order), so a fit is a function of the multiset of chunks:
two fits, and a fit on shuffled input, give identical vocab and merges (tested). Any sampling
randomness lives in the caller (`fast_samples.fit_fast_tokenizer_from_dataset`, seeded).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.fft import dct, idct
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from behavior_lab.data import atomic, schema

# Seed defaults (spec §7.1 and §15 item 7).
DEFAULT_ENCODED_DIMS = "0:6,7:23"
DEFAULT_SCALE = 10.0
DEFAULT_VOCAB_SIZE = 1024
DEFAULT_MIN_FREQUENCY = 2  # HF FAST BpeTrainer(min_frequency=2)
QUANTILE_RANGE_EPS = 1e-6  # spec §7.1: max(q99 - q01, 1e-6)
PRETOKENIZERS = ("none", "byte_level")
# Id 0 is BOS and padding of the FAST loss (spec §7.2/§7.3). With reserve_pad_id it is a special token
# that encode never emits. That is what the seed effectively has: in HF FAST id 0 is the raw symbol
# chr(0), which its byte-level pre-tokeniser never produces (byte 0 becomes "Ā"). Without it, id 0 is
# the symbol for code -55 (a whole chunk at q01, e.g. a closed gripper), emitted in ~1/4 of chunks.
PAD_TOKEN = "<|fast_pad|>"  # '|' (124) lies outside the symbol range 0..110, so text never contains it

META_FILE = "fast_tokenizer.json"
BPE_FILE = "bpe.json"
FORMAT_VERSION = 1


def parse_dims(spec: str | Sequence[int], action_dim: int | None = schema.ACTION_DIM) -> tuple[int, ...]:
    """Parse an encoded-dimension spec such as "0:6,7:23" (spec §7.1 `--encoded-dims`).

    Items are comma separated; each is a half-open range `start:stop` or a single index. A sequence
    of ints is accepted as is. Dimensions keep the given order and must be unique, non-negative and,
    when `action_dim` is given, below it.
    """
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise ValueError("encoded dims spec is empty; expected e.g. '0:6,7:23' (spec §7.1)")
        dims: list[int] = []
        for raw_item in text.split(","):
            item = raw_item.strip()
            if not item:
                raise ValueError(f"encoded dims spec {spec!r} has an empty item; expected e.g. '0:6,7:23'")
            parts = item.split(":")
            try:
                bounds = [int(p) for p in parts]
            except ValueError:
                raise ValueError(
                    f"encoded dims spec {spec!r}: item {item!r} is not an integer or a 'start:stop' range "
                    "of integers"
                ) from None
            if len(bounds) == 1:
                dims.append(bounds[0])
            elif len(bounds) == 2:
                start, stop = bounds
                if start >= stop:
                    raise ValueError(
                        f"encoded dims spec {spec!r}: range {item!r} is empty (start must be < stop; "
                        "ranges are half-open like Python slices)"
                    )
                dims.extend(range(start, stop))
            else:
                raise ValueError(f"encoded dims spec {spec!r}: item {item!r} has more than one ':'")
    else:
        dims = [int(d) for d in spec]
        if not dims:
            raise ValueError("encoded dims list is empty")
    negative = [d for d in dims if d < 0]
    if negative:
        raise ValueError(f"encoded dims {spec!r}: negative dimension(s) {negative} are not allowed")
    if action_dim is not None:
        too_big = [d for d in dims if d >= action_dim]
        if too_big:
            raise ValueError(
                f"encoded dims {spec!r}: dimension(s) {too_big} out of range for a {action_dim}-D action "
                f"(valid 0..{action_dim - 1})"
            )
    dupes = sorted({d for d in dims if dims.count(d) > 1})
    if dupes:
        raise ValueError(f"encoded dims {spec!r}: dimension(s) {dupes} listed more than once")
    return tuple(dims)


def format_dims(dims: Sequence[int]) -> str:
    """Inverse of `parse_dims` for canonical storage: (0,1,2,7,8) -> "0:3,7:9"."""
    items: list[str] = []
    i = 0
    while i < len(dims):
        j = i
        while j + 1 < len(dims) and dims[j + 1] == dims[j] + 1:
            j += 1
        items.append(str(dims[i]) if i == j else f"{dims[i]}:{dims[j] + 1}")
        i = j + 1
    return ",".join(items)


@dataclass(frozen=True, eq=False)  # holds arrays: no generated __eq__
class DctCodec:
    """The deterministic half of FAST: action chunk <-> integer DCT codes (spec §7.1 steps 1-5).

    q01/q99 hold the quantiles of the *encoded* dims only (len(dims),).
    """

    dims: tuple[int, ...]
    q01: np.ndarray
    q99: np.ndarray
    scale: float = DEFAULT_SCALE
    horizon: int = schema.ACTION_HORIZON

    @classmethod
    def create(
        cls,
        q01: np.ndarray,
        q99: np.ndarray,
        dims: str | Sequence[int] = DEFAULT_ENCODED_DIMS,
        scale: float = DEFAULT_SCALE,
        horizon: int = schema.ACTION_HORIZON,
    ) -> DctCodec:
        """q01/q99 are the full-width action quantiles (e.g. NormStats.action_q01, (23,) or (32,))."""
        q01 = np.asarray(q01, dtype=np.float64).reshape(-1)
        q99 = np.asarray(q99, dtype=np.float64).reshape(-1)
        if q01.shape != q99.shape:
            raise ValueError(f"q01 shape {q01.shape} != q99 shape {q99.shape}")
        dims_t = parse_dims(dims, action_dim=q01.shape[0])
        if not (np.all(np.isfinite(q01)) and np.all(np.isfinite(q99))):
            raise ValueError("action q01/q99 contain non-finite values; recompute the norm stats")
        if scale <= 0:
            raise ValueError(f"DCT scale must be > 0, got {scale}")
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        idx = list(dims_t)
        return cls(dims=dims_t, q01=q01[idx].copy(), q99=q99[idx].copy(), scale=float(scale), horizon=int(horizon))

    # Alphabet bound: |coeff| <= ||y||_2 <= sqrt(H) for y in [-1, 1]^H (orthonormal DCT).
    @property
    def max_abs_code(self) -> int:
        return int(math.ceil(self.scale * math.sqrt(self.horizon)))

    @property
    def min_token(self) -> int:
        return -self.max_abs_code

    @property
    def alphabet_size(self) -> int:
        return 2 * self.max_abs_code + 1

    @property
    def num_coeffs(self) -> int:
        return self.horizon * len(self.dims)

    def _check_chunks(self, chunks: np.ndarray) -> np.ndarray:
        x = np.asarray(chunks, dtype=np.float64)
        if x.ndim not in (2, 3):
            raise ValueError(f"expected an action chunk (H, A) or a batch (N, H, A); got shape {x.shape}")
        if x.shape[-2] != self.horizon:
            raise ValueError(f"chunk horizon {x.shape[-2]} != tokenizer horizon {self.horizon} (spec §1.3: H=30)")
        if x.shape[-1] <= max(self.dims):
            raise ValueError(
                f"chunk has {x.shape[-1]} action dims; the tokenizer encodes dims {format_dims(self.dims)} "
                f"and needs at least {max(self.dims) + 1}"
            )
        if not np.all(np.isfinite(x[..., list(self.dims)])):
            raise ValueError("action chunk contains NaN/inf in the encoded dimensions")
        return x

    def normalize(self, chunks: np.ndarray) -> np.ndarray:
        """Select dims, clip to [q01, q99], map to [-1, 1] (spec §7.1). (..., H, A) -> (..., H, D)."""
        x = self._check_chunks(chunks)[..., list(self.dims)]
        x = np.clip(x, self.q01, self.q99)
        return 2.0 * (x - self.q01) / np.maximum(self.q99 - self.q01, QUANTILE_RANGE_EPS) - 1.0

    def denormalize(self, y: np.ndarray) -> np.ndarray:
        """[-1, 1] -> action units of the encoded dims; inverse of `normalize` inside [q01, q99]."""
        y = np.clip(np.asarray(y, dtype=np.float64), -1.0, 1.0)
        return (y + 1.0) / 2.0 * np.maximum(self.q99 - self.q01, QUANTILE_RANGE_EPS) + self.q01

    def to_codes(self, chunks: np.ndarray) -> np.ndarray:
        """Chunks (N, H, A) or (H, A) -> int16 codes (N, H*D) or (H*D,), frequency-major order."""
        y = self.normalize(chunks)
        coeffs = dct(y, type=2, axis=-2, norm="ortho")  # over time, per dimension
        codes = np.rint(coeffs * self.scale)  # round half to even, like np.around in the HF code
        codes = np.clip(codes, -self.max_abs_code, self.max_abs_code)  # float round-off guard only
        lead = codes.shape[:-2]
        return codes.reshape(*lead, self.num_coeffs).astype(np.int16)

    def from_codes(self, codes: np.ndarray) -> np.ndarray:
        """Codes (..., H*D) -> action chunk (..., H, D) in action units of the encoded dims."""
        codes = np.asarray(codes, dtype=np.float64)
        lead = codes.shape[:-1]
        coeffs = codes.reshape(*lead, self.horizon, len(self.dims)) / self.scale
        y = idct(coeffs, type=2, axis=-2, norm="ortho")
        return self.denormalize(y)

    def codes_to_text(self, codes: np.ndarray) -> str:
        return "".join(map(chr, (np.asarray(codes, dtype=np.int64) - self.min_token).tolist()))

    def text_to_codes(self, text: str) -> np.ndarray:
        return np.fromiter((ord(c) for c in text), dtype=np.int64, count=len(text)) + self.min_token


def _make_bpe_tokenizer(pretokenizer: str) -> Tokenizer:
    tok = Tokenizer(models.BPE(dropout=None, unk_token=None, byte_fallback=False))
    if pretokenizer == "byte_level":
        # What HF FAST's ByteLevelBPETokenizer() sets up (no normaliser, no prefix space).
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
    elif pretokenizer != "none":
        raise ValueError(f"unknown pretokenizer {pretokenizer!r}; valid: {', '.join(PRETOKENIZERS)}")
    return tok


class FastTokenizer:
    """DCT + BPE action tokenizer (spec §7). Build with `fit` or `load`; never hand-assemble.

    encode(chunk (H, A) raw delta actions) -> list[int] token ids in [0, vocab_size);
    decode(ids) -> (H, D) actions of the encoded dims in action units.
    """

    def __init__(
        self, codec: DctCodec, bpe: Tokenizer, *, pretokenizer: str, target_vocab_size: int, reserve_pad_id: bool
    ) -> None:
        self.codec = codec
        self._bpe = bpe
        self.pretokenizer = pretokenizer
        self.target_vocab_size = int(target_vocab_size)
        self.reserve_pad_id = bool(reserve_pad_id)
        self._id_to_token = {i: t for t, i in bpe.get_vocab(with_added_tokens=True).items()}
        if self.reserve_pad_id and self._id_to_token.get(0) != PAD_TOKEN:
            raise ValueError(f"reserve_pad_id is set but id 0 is {self._id_to_token.get(0)!r}, not {PAD_TOKEN!r}")
        self.vocab_size = len(self._id_to_token)
        if self.vocab_size > self.target_vocab_size:
            raise ValueError(f"BPE vocab {self.vocab_size} exceeds the configured size {self.target_vocab_size}")
        if sorted(self._id_to_token) != list(range(self.vocab_size)):
            raise ValueError("BPE vocabulary ids are not contiguous 0..V-1; the tokenizer file is corrupt")

    # --- properties -----------------------------------------------------------------------------
    @property
    def dims(self) -> tuple[int, ...]:
        return self.codec.dims

    @property
    def horizon(self) -> int:
        return self.codec.horizon

    @property
    def scale(self) -> float:
        return self.codec.scale

    # --- fitting --------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        chunks: np.ndarray,
        q01: np.ndarray,
        q99: np.ndarray,
        *,
        dims: str | Sequence[int] = DEFAULT_ENCODED_DIMS,
        scale: float = DEFAULT_SCALE,
        vocab_size: int = DEFAULT_VOCAB_SIZE,
        min_frequency: int = DEFAULT_MIN_FREQUENCY,
        pretokenizer: str = "none",
        reserve_pad_id: bool = True,
    ) -> FastTokenizer:
        """Fit on raw (unnormalised) delta-action chunks (N, H, A) and the action q01/q99 (A,)."""
        chunks = np.asarray(chunks)
        if chunks.ndim != 3 or chunks.shape[0] == 0:
            raise ValueError(f"fit expects a non-empty batch of chunks (N, H, A); got shape {chunks.shape}")
        codec = DctCodec.create(q01, q99, dims=dims, scale=scale, horizon=chunks.shape[1])
        return cls.fit_codes(
            codec,
            codec.to_codes(chunks),
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            pretokenizer=pretokenizer,
            reserve_pad_id=reserve_pad_id,
        )

    @classmethod
    def fit_codes(
        cls,
        codec: DctCodec,
        codes: np.ndarray | Iterable[np.ndarray],
        *,
        vocab_size: int = DEFAULT_VOCAB_SIZE,
        min_frequency: int = DEFAULT_MIN_FREQUENCY,
        pretokenizer: str = "none",
        reserve_pad_id: bool = True,
    ) -> FastTokenizer:
        """Train the BPE on precomputed codes (rows of `codec.to_codes`); used by the dataset hook."""
        if isinstance(codes, np.ndarray):
            codes = codes.reshape(-1, codes.shape[-1]) if codes.ndim > 1 else codes[None]
        if vocab_size <= codec.alphabet_size + int(reserve_pad_id):
            raise ValueError(
                f"vocab_size {vocab_size} must exceed the alphabet of {codec.alphabet_size} DCT symbols "
                f"(scale {codec.scale}, horizon {codec.horizon}); the seed uses 1024 (spec §7.1)"
            )
        # Every symbol is part of the initial alphabet, so unseen symbols still get ids (HF FAST does
        # the same with range(max - min + 1)). In byte-level mode the words consist of the byte-level
        # images of the symbols (all symbols are < 128, one byte each), so those are added too.
        alphabet = [chr(i) for i in range(codec.alphabet_size)]
        if pretokenizer == "byte_level":
            byte_images = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(
                "".join(alphabet)
            )[0][0]
            alphabet = alphabet + sorted(set(byte_images) - set(alphabet))
        bpe = _make_bpe_tokenizer(pretokenizer)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            show_progress=False,
            special_tokens=[PAD_TOKEN] if reserve_pad_id else [],  # special tokens take the first ids
            initial_alphabet=alphabet,  # limit_alphabet / max_token_length left unset: no limits
        )
        n_rows = 0

        def texts():
            nonlocal n_rows
            for row in codes:
                row = np.asarray(row)
                if row.shape != (codec.num_coeffs,):
                    raise ValueError(f"code row has shape {row.shape}; expected ({codec.num_coeffs},)")
                n_rows += 1
                yield codec.codes_to_text(row)

        bpe.train_from_iterator(texts(), trainer=trainer)
        if n_rows == 0:
            raise ValueError("no chunks to fit the FAST tokenizer on")
        return cls(
            codec, bpe, pretokenizer=pretokenizer, target_vocab_size=vocab_size, reserve_pad_id=reserve_pad_id
        )

    # --- encode / decode ------------------------------------------------------------------------
    def encode_codes(self, codes: np.ndarray) -> list[int]:
        codes = np.clip(np.asarray(codes), -self.codec.max_abs_code, self.codec.max_abs_code)
        return list(self._bpe.encode(self.codec.codes_to_text(codes)).ids)

    def encode(self, chunk: np.ndarray) -> list[int]:
        """One raw delta-action chunk (H, A) -> token ids (variable length)."""
        chunk = np.asarray(chunk)
        if chunk.ndim != 2:
            raise ValueError(f"encode takes one chunk (H, A); got shape {chunk.shape}; use encode_batch")
        return self.encode_codes(self.codec.to_codes(chunk))

    def encode_batch(self, chunks: np.ndarray) -> list[list[int]]:
        codes = self.codec.to_codes(np.asarray(chunks).reshape(-1, *np.shape(chunks)[-2:]))
        texts = [self.codec.codes_to_text(c) for c in codes]
        return [list(e.ids) for e in self._bpe.encode_batch(texts)]

    def decode_codes(self, tokens: Iterable[int]) -> tuple[np.ndarray, bool]:
        """Token ids -> (codes (H*D,) int64, well_formed).

        Trailing pad ids (id 0 when reserved) are stripped. Ids outside [0, vocab_size) and pad ids
        elsewhere are dropped; the symbol sequence is zero-padded or truncated to H*D coefficients.
        well_formed is False when any of that was needed.
        """
        ids = [int(t) for t in tokens]
        if self.reserve_pad_id:
            while ids and ids[-1] == 0:
                ids.pop()
        valid = [t for t in ids if t in self._id_to_token and not (self.reserve_pad_id and t == 0)]
        ok = len(valid) == len(ids)
        if self.pretokenizer == "byte_level":
            text = self._bpe.decoder.decode([self._id_to_token[t] for t in valid])
            # Guard: byte sequences that are not valid UTF-8 decode to U+FFFD. (Symbols are < 128, one
            # byte each, so only out-of-range input can cause it; raw alphabet ids pass through.)
            if "\ufffd" in text:
                ok = False
                text = text.replace("\ufffd", "")
        else:
            text = "".join(self._id_to_token[t] for t in valid)
        codes = self.codec.text_to_codes(text)
        out_of_range = (codes < -self.codec.max_abs_code) | (codes > self.codec.max_abs_code)
        if out_of_range.any():
            ok = False
            codes = codes[~out_of_range]
        n = self.codec.num_coeffs
        if codes.shape[0] != n:
            ok = False
            codes = np.concatenate([codes[:n], np.zeros(max(0, n - codes.shape[0]), dtype=np.int64)])
        return codes, ok

    def decode(self, tokens: Iterable[int]) -> np.ndarray:
        """Token ids -> (H, D) float64 chunk of the encoded dims, in action units (robust, see module)."""
        codes, _ = self.decode_codes(tokens)
        return self.codec.from_codes(codes)

    # --- persistence ----------------------------------------------------------------------------
    def _meta(self, bpe_text: str) -> dict:
        return {
            "format": "behavior_lab.fast_tokenizer",
            "version": FORMAT_VERSION,
            "dims": format_dims(self.dims),
            "q01": [float(v) for v in self.codec.q01],
            "q99": [float(v) for v in self.codec.q99],
            "scale": self.codec.scale,
            "horizon": self.codec.horizon,
            "min_token": self.codec.min_token,
            "target_vocab_size": self.target_vocab_size,
            "vocab_size": self.vocab_size,
            "pretokenizer": self.pretokenizer,
            "reserve_pad_id": self.reserve_pad_id,
            "bpe_file": BPE_FILE,
            "bpe_sha256": hashlib.sha256(bpe_text.encode("utf-8")).hexdigest(),
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write DIR/bpe.json then DIR/fast_tokenizer.json (each atomically, STYLE habit 12). The metadata carries the
        BPE file's hash, so a half-replaced directory fails `load` instead of loading mixed files."""
        d = Path(directory)
        bpe_text = self._bpe.to_str(pretty=False)
        atomic.write_text(d / BPE_FILE, bpe_text)
        atomic.write_text(d / META_FILE, json.dumps(self._meta(bpe_text), indent=2) + "\n")
        return d

    @classmethod
    def load(cls, directory: str | os.PathLike) -> FastTokenizer:
        d = Path(directory)
        meta_path = d / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"no FAST tokenizer at {d}: {META_FILE} missing (run `behavior-lab stats`)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{meta_path} is not valid JSON: {e}") from None
        if meta.get("format") != "behavior_lab.fast_tokenizer" or meta.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"{meta_path}: unsupported format {meta.get('format')!r} version {meta.get('version')!r}; "
                f"expected behavior_lab.fast_tokenizer version {FORMAT_VERSION}"
            )
        missing = [k for k in ("dims", "q01", "q99", "scale", "horizon", "target_vocab_size", "pretokenizer",
                               "bpe_sha256", "min_token", "reserve_pad_id") if k not in meta]
        if missing:
            raise ValueError(f"{meta_path}: missing key(s) {missing}")
        bpe_path = d / BPE_FILE
        if not bpe_path.is_file():
            raise FileNotFoundError(f"{bpe_path} missing (referenced by {meta_path})")
        bpe_text = bpe_path.read_text(encoding="utf-8")
        if hashlib.sha256(bpe_text.encode("utf-8")).hexdigest() != meta["bpe_sha256"]:
            raise ValueError(f"{bpe_path} does not match the hash in {meta_path}; the directory was half-written")
        dims = parse_dims(meta["dims"], action_dim=None)
        q01 = np.asarray(meta["q01"], dtype=np.float64)
        q99 = np.asarray(meta["q99"], dtype=np.float64)
        if q01.shape != (len(dims),) or q99.shape != (len(dims),):
            raise ValueError(f"{meta_path}: q01/q99 must have one entry per encoded dim ({len(dims)})")
        codec = DctCodec(dims=dims, q01=q01, q99=q99, scale=float(meta["scale"]), horizon=int(meta["horizon"]))
        if codec.min_token != int(meta["min_token"]):
            raise ValueError(f"{meta_path}: min_token {meta['min_token']} != {codec.min_token} implied by scale/horizon")
        bpe = Tokenizer.from_str(bpe_text)
        return cls(
            codec,
            bpe,
            pretokenizer=meta["pretokenizer"],
            target_vocab_size=int(meta["target_vocab_size"]),
            reserve_pad_id=bool(meta["reserve_pad_id"]),
        )

    def fingerprint(self) -> str:
        """sha256 of the saved form; equal fingerprints mean identical vocab, merges and codec."""
        bpe_text = self._bpe.to_str(pretty=False)
        return hashlib.sha256(json.dumps(self._meta(bpe_text), sort_keys=True).encode("utf-8")).hexdigest()

    def vocab_and_merges(self) -> tuple[dict[str, int], list]:
        model = json.loads(self._bpe.to_str())["model"]
        return dict(model["vocab"]), [tuple(m) for m in model["merges"]]

    def __repr__(self) -> str:
        return (
            f"FastTokenizer(dims={format_dims(self.dims)!r}, horizon={self.horizon}, scale={self.scale}, "
            f"vocab={self.vocab_size}/{self.target_vocab_size}, pretokenizer={self.pretokenizer!r}, "
            f"reserve_pad_id={self.reserve_pad_id})"
        )


def token_length_stats(
    tokenizer: FastTokenizer, chunks: np.ndarray, max_fast_tokens: int = 200
) -> dict[str, float]:
    """Token-count statistics over raw delta chunks (N, H, A) (spec §16 item 8: the seed printed them).

    `frac_truncated` is the share of chunks longer than `max_fast_tokens` (spec §7.2: 200).
    """
    lengths = np.array([len(t) for t in tokenizer.encode_batch(chunks)], dtype=np.float64)
    if lengths.size == 0:
        raise ValueError("token_length_stats needs at least one chunk")
    return {
        "n": int(lengths.size),
        "mean": float(lengths.mean()),
        "std": float(lengths.std()),
        "min": float(lengths.min()),
        "p50": float(np.percentile(lengths, 50)),
        "p95": float(np.percentile(lengths, 95)),
        "p99": float(np.percentile(lengths, 99)),
        "max": float(lengths.max()),
        "frac_truncated": float((lengths > max_fast_tokens).mean()),
        "symbols_per_chunk": float(tokenizer.codec.num_coeffs),
    }
