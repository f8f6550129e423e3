"""Process-wide test settings: CPU rendering backend before any mujoco import, quiet Hydra."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HYDRA_FULL_ERROR", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
