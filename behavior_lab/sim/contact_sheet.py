"""Contact sheet of the suite: per task, an overview and the three robot cameras, at the start of an
episode and mid-way through the expert demo. ``python -m behavior_lab.sim.contact_sheet [OUT.png]``
(default docs/sim/contact_sheet.png). Used to eyeball that every scene is sensible.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from behavior_lab.data import schema  # noqa: E402

PX = 128


def _overview(env, renderer: mujoco.Renderer) -> np.ndarray:
    cam = mujoco.MjvCamera()
    x, y, _ = (env.data.qpos[env.qadr(n)] for n in ("base_x", "base_y", "base_yaw"))
    cam.lookat[:] = [x + 0.6, y, 0.7]
    cam.distance, cam.azimuth, cam.elevation = 2.4, 35.0, -32.0
    renderer.update_scene(env.data, camera=cam)
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
    return renderer.render().copy()


def task_rows(task: str, instance: int = 0) -> list[tuple[str, list[np.ndarray]]]:
    from behavior_lab.sim import make_env
    from behavior_lab.sim.experts import make_expert

    env = make_env(task, image_size=PX)
    renderer = mujoco.Renderer(env.model, PX, PX)
    expert = make_expert(env, 0)
    obs = env.reset(instance)
    expert.reset()
    rows = [(f"{task} — start", [_overview(env, renderer)] + [obs[k] for k in schema.OBS_RGB_KEYS])]
    half = env.task.mean_demo_length // 2
    done = False
    while not done and env.steps < half:
        obs, done, _ = env.step(expert.act(obs))
    rows.append((f"{task} — step {env.steps}", [_overview(env, renderer)] + [obs[k] for k in schema.OBS_RGB_KEYS]))
    renderer.close()
    env.close()
    return rows


def make_sheet(out: str | Path, tasks=None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from behavior_lab.sim import TASKS

    rows = [r for t in (tasks or TASKS) for r in task_rows(t)]
    cols = ("overview", "head (zed)", "left wrist", "right wrist")
    fig, axes = plt.subplots(len(rows), 4, figsize=(8, 2.1 * len(rows)), squeeze=False)
    for i, (label, images) in enumerate(rows):
        for j, img in enumerate(images):
            ax = axes[i][j]
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(cols[j], fontsize=9)
        axes[i][0].set_ylabel(label.replace(" — ", "\n"), fontsize=7)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(make_sheet(sys.argv[1] if len(sys.argv) > 1 else "docs/sim/contact_sheet.png"))
