"""PyAV encode/decode: H.264 and HEVC, random access across keyframes, resize on decode."""

from __future__ import annotations

import numpy as np
import pytest

from behavior_lab.data.images import resize_with_pad
from behavior_lab.data.video import VideoReader, decode_video, encode_video, video_codec_name


def _frames(t=70, s=32):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, size=(1, s, s, 3)).astype(np.int32)
    shift = (np.arange(t) * 3)[:, None, None, None]
    return ((base + shift) % 256).astype(np.uint8)


@pytest.mark.parametrize("codec,name", [("libx264", "h264"), ("libx265", "hevc")])
def test_random_access_matches_sequential(tmp_path, codec, name):
    frames = _frames()
    path = tmp_path / "v.mp4"
    encode_video(path, frames, codec=codec, gop=16)
    assert video_codec_name(path) == name
    full = decode_video(path, expected_frames=len(frames))
    assert full.shape == frames.shape
    small = decode_video(path, 16)
    np.testing.assert_array_equal(small, resize_with_pad(full, 16))
    with VideoReader(path, 16) as r:
        for i in (69, 3, 4, 40, 17, 0, 33, 34, 68):
            np.testing.assert_array_equal(r.read(i), small[i])
        with pytest.raises(Exception, match="frame 70 not found"):
            r.read(70)


def test_encode_rejects_bad_frames(tmp_path):
    with pytest.raises(ValueError, match="even height and width"):
        encode_video(tmp_path / "a.mp4", np.zeros((3, 31, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        encode_video(tmp_path / "a.mp4", np.zeros((3, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="unknown video codec"):
        encode_video(tmp_path / "a.mp4", np.zeros((3, 32, 32, 3), np.uint8), codec="vp9")
    assert not list(tmp_path.iterdir())


def test_resize_with_pad_keeps_aspect():
    img = np.full((20, 40, 3), 200, np.uint8)
    out = resize_with_pad(img, 20)
    assert out.shape == (20, 20, 3)
    assert (out[:5] == 0).all() and (out[15:] == 0).all() and (out[5:15] == 200).all()
    rgba = np.zeros((2, 8, 8, 4), np.uint8)
    assert resize_with_pad(rgba, 4).shape == (2, 4, 4, 3)
