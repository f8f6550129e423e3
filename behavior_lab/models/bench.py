"""Model benchmarks (`behavior-lab bench model`): training-step time, inference latency, pi05 size.

Timings are min-of-k wall times on whatever machine runs them (the project machine has 2 shared
CPU cores); they are reported, never asserted.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch
import yaml

import behavior_lab
from behavior_lab.benchmarks import register
from behavior_lab.data import schema
from behavior_lab.models.factory import build_model
from behavior_lab.models.innovation_config import InnovationConfig
from behavior_lab.models.tokenizer import ByteTokenizer

CONF = Path(behavior_lab.__file__).parent / "conf" / "model"
PI05_REFERENCE_PARAMS = 3.3e9  # Pi0.5 incl. the PaliGemma embedder (spec §1.1 sizes)


def preset(name: str) -> dict:
    return yaml.safe_load((CONF / f"{name}.yaml").read_text())


def synthetic_batch(B: int, image_size: int, fast_len: int = 64, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    task_id = torch.randint(0, 50, (B,), generator=g)
    tokens, mask = ByteTokenizer(max_len=48).encode([schema.task_name(int(t)) for t in task_id])
    return dict(
        images=torch.randint(0, 256, (B, 3, image_size, image_size, 3), generator=g, dtype=torch.uint8),
        image_mask=torch.ones(B, 3, dtype=torch.bool),
        state=torch.randn(B, 32, generator=g) * 0.5,
        actions=torch.randn(B, 30, 32, generator=g),
        task_id=task_id,
        prompt_tokens=torch.from_numpy(tokens),  # used when task_embeddings is off
        prompt_mask=torch.from_numpy(mask),
        stage=torch.zeros(B, dtype=torch.long),
        fast_tokens=torch.randint(1, 1024, (B, 200), generator=g),
        fast_mask=torch.arange(200)[None].expand(B, 200) < fast_len,
    )


def seed_innovations(num_samples: int = 15, fast: bool = True) -> InnovationConfig:
    inn = InnovationConfig.all_on()
    return dataclasses.replace(
        inn,
        multi_sample_fm=dataclasses.replace(inn.multi_sample_fm, num_samples=num_samples),
        fast_aux=dataclasses.replace(inn.fast_aux, enabled=fast),
    )


def _min_time(fn, reps: int, warmup: int = 2) -> float:
    """Min wall seconds over `reps` calls (min is the least contention-sensitive statistic)."""
    return _min_times(fn, reps, warmup)[0]


def _min_times(fn, reps: int, warmup: int = 2) -> tuple[float, float]:
    """(min wall, min process-CPU) seconds. On a shared machine the CPU time of this process is the
    steadier figure; wall ≈ CPU / threads when the cores are free."""
    for _ in range(warmup):
        fn()
    wall = cpu = float("inf")
    for _ in range(reps):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return wall, cpu


def train_step_seconds(cfg: dict, inn: InnovationConfig, B: int, reps: int, fast_len: int = 64) -> tuple[float, float]:
    """(min wall, min process-CPU) seconds of one fwd+bwd+AdamW step."""
    torch.manual_seed(0)
    model = build_model(cfg, inn, correlation_cholesky=torch.eye(cfg["action_horizon"] * cfg["action_dim"]))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = synthetic_batch(B, cfg["vision"]["image_size"], fast_len)

    def step():
        loss = model.compute_loss(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return _min_times(step, reps)


@register("model.train_step")
def bench_train_step(quick: bool = False) -> dict:
    """tiny preset: fwd+bwd+AdamW step, seed innovations on, N=1 vs N=15 flow samples."""
    cfg = preset("tiny")
    reps = 2 if quick else 5
    sizes = (8,) if quick else (16, 32)
    out: dict[str, float] = {"threads": torch.get_num_threads()}
    for B in sizes:
        (n1, n1_cpu), (n15, n15_cpu) = (train_step_seconds(cfg, seed_innovations(n), B, reps) for n in (1, 15))
        out[f"tiny_b{B}_n1_step_ms"] = round(n1 * 1e3, 1)
        out[f"tiny_b{B}_n15_step_ms"] = round(n15 * 1e3, 1)
        out[f"tiny_b{B}_n15_over_n1"] = round(n15 / n1, 3)
        out[f"tiny_b{B}_n15_steps_per_s"] = round(1.0 / n15, 2)
        out[f"tiny_b{B}_n1_step_cpu_ms"] = round(n1_cpu * 1e3, 1)
        out[f"tiny_b{B}_n15_step_cpu_ms"] = round(n15_cpu * 1e3, 1)
        out[f"tiny_b{B}_n15_over_n1_cpu"] = round(n15_cpu / n1_cpu, 3)
    # The N=15 cost is bounded below by arithmetic: tiny's prefix is ~40 tokens, so 14 extra samples
    # x 30 action tokens dominate its FLOPs. Report the FLOP ratio beside the wall ratio, and the
    # same pair for `small` (64 image tokens per camera, closer to Pi0.5's prefix/suffix proportions).
    for fast in (True, False):
        tag = "fast" if fast else "nofast"
        f1, f15 = (train_flops(cfg, seed_innovations(n, fast)) for n in (1, 15))
        out[f"tiny_{tag}_flop_n15_over_n1"] = round(f15 / f1, 3)
    (w1, _), (w15, _) = (train_step_seconds(cfg, seed_innovations(n, False), sizes[0], reps) for n in (1, 15))
    out[f"tiny_b{sizes[0]}_nofast_n15_over_n1"] = round(w15 / w1, 3)  # the embedded default's setting
    if not quick:
        small = preset("small")
        (s1, _), (s15, _) = (train_step_seconds(small, seed_innovations(n), 8, 3, fast_len=64) for n in (1, 15))
        out["small_b8_n1_step_ms"] = round(s1 * 1e3, 1)
        out["small_b8_n15_step_ms"] = round(s15 * 1e3, 1)
        out["small_b8_n15_over_n1"] = round(s15 / s1, 3)
        out["small_flop_n15_over_n1"] = round(
            train_flops(small, seed_innovations(15)) / train_flops(small, seed_innovations(1)), 3)
    B = sizes[0]
    plain, plain_cpu = train_step_seconds(cfg, InnovationConfig(), B, reps)
    out[f"tiny_b{B}_plain_pi05_step_ms"] = round(plain * 1e3, 1)
    out[f"tiny_b{B}_plain_pi05_step_cpu_ms"] = round(plain_cpu * 1e3, 1)
    return out


@register("model.inference")
def bench_inference(quick: bool = False) -> dict:
    """tiny preset: one action chunk (prefix pass + Euler steps), batch 1, with and without inpainting."""
    cfg = preset("tiny")
    model = build_model(cfg, seed_innovations(), correlation_cholesky=torch.eye(960)).eval()
    batch = {k: v for k, v in synthetic_batch(1, cfg["vision"]["image_size"]).items() if not k.startswith("fast")}
    reps = 3 if quick else 10
    out: dict[str, float] = {}
    for steps in (10, 20):
        out[f"tiny_b1_{steps}steps_ms"] = round(_min_time(lambda: model.sample_actions(batch, num_steps=steps), reps) * 1e3, 1)
    kept = torch.zeros(1, 4, 32)
    out["tiny_b1_20steps_inpaint_ms"] = round(
        _min_time(lambda: model.sample_actions(batch, num_steps=20, initial_actions=kept), reps) * 1e3, 1)
    big = {k: v.expand(16, *v.shape[1:]) for k, v in batch.items()}
    out["tiny_b16_20steps_ms"] = round(_min_time(lambda: model.sample_actions(big, num_steps=20), max(2, reps // 3)) * 1e3, 1)
    return out


@register("model.pi05_params")
def bench_pi05_params(quick: bool = False) -> dict:  # noqa: ARG001
    """pi05 preset built on the meta device: parameter counts vs Pi0.5's ~3.3B."""
    base = build_model(preset("pi05"), InnovationConfig(), device="meta")
    seed = build_model(preset("pi05"), InnovationConfig.all_on(), device="meta")

    def count(m, prefix=""):
        return sum(p.numel() for k, p in m.named_parameters() if k.startswith(prefix))

    total = count(base)
    return {
        "pi05_params": total,
        "pi05_vs_reference": round(total / PI05_REFERENCE_PARAMS, 4),
        "siglip_params": count(base, "vision."),
        "vlm_params": count(base, "backbone.vlm."),
        "expert_params": count(base, "backbone.expert."),
        "seed_new_params": count(seed) - total,  # spec §1.6: ~51.1M
    }


def train_flops(cfg: dict, inn: InnovationConfig, B: int = 1, fast_len: int = 64) -> float:
    """fwd+bwd FLOPs of one compute_loss on the meta device (no memory, no time)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(cfg, inn, device="meta")
    N = model.num_samples
    batch = {k: v.to("meta") for k, v in synthetic_batch(B, cfg["vision"]["image_size"], fast_len).items()}
    if inn.fast_aux.enabled:
        batch["fast_tokens"], batch["fast_mask"] = batch["fast_tokens"][:, :fast_len], batch["fast_mask"][:, :fast_len]
    with FlopCounterMode(display=False) as counter:
        out = model.compute_loss(batch, noise=torch.zeros(B, N, 30, 32, device="meta"),
                                 time=torch.full((B, N), 0.5, device="meta"))
        out["loss"].backward()
    return float(counter.get_total_flops())


@register("model.train_flops")
def bench_train_flops(quick: bool = False) -> dict:  # noqa: ARG001
    """Training FLOPs per example (fwd+bwd, seed innovations, 64 FAST tokens): N=15 vs N=1, tiny and pi05."""
    out: dict[str, float] = {}
    for name in ("tiny", "pi05"):
        n1 = train_flops(preset(name), seed_innovations(1))
        n15 = train_flops(preset(name), seed_innovations(15))
        out[f"{name}_n1_gflop"] = round(n1 / 1e9, 2)
        out[f"{name}_n15_gflop"] = round(n15 / 1e9, 2)
        out[f"{name}_n15_over_n1"] = round(n15 / n1, 3)
    return out
