"""Byte-level prompt tokenizer for the tiny presets' text conditioning (task_embeddings=off).

Pi0.5 tokenises prompts with PaliGemma's SentencePiece model; tiny presets have a small vocabulary,
so prompts are UTF-8 bytes mapped to ids offset + b. The default offset 256 keeps ids 0..255 for the
state bins (spec §1.2), so vocab_size ≥ 512 is needed.
"""

from __future__ import annotations

import numpy as np


class ByteTokenizer:
    def __init__(self, max_len: int = 48, offset: int = 256):
        self.max_len, self.offset = max_len, offset

    @property
    def vocab_size(self) -> int:
        return self.offset + 256

    def encode(self, prompts: list[str] | str) -> tuple[np.ndarray, np.ndarray]:
        """-> tokens (B, max_len) int64 (0 = pad), mask (B, max_len) bool. Long prompts are truncated."""
        if isinstance(prompts, str):
            prompts = [prompts]
        tokens = np.zeros((len(prompts), self.max_len), dtype=np.int64)
        mask = np.zeros((len(prompts), self.max_len), dtype=bool)
        for i, text in enumerate(prompts):
            ids = [self.offset + b for b in text.replace("_", " ").encode("utf-8")][: self.max_len]
            tokens[i, : len(ids)] = ids
            mask[i, : len(ids)] = True
        return tokens, mask

    def decode(self, tokens: np.ndarray, mask: np.ndarray | None = None) -> str:
        ids = [int(t) for j, t in enumerate(tokens) if (mask is None or mask[j]) and t >= self.offset]
        return bytes(t - self.offset for t in ids).decode("utf-8", errors="replace")
