"""The real model adapter: input/output transforms (spec §8.2, §9.1), the exported-checkpoint
loader, and the tiny model (random init) end to end through PolicyRuntime and the server."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from .runtime_fakes import make_obs

from behavior_lab.data import schema
from behavior_lab.data.stats import NormStats
from behavior_lab.policy.model_predictor import ModelChunkPredictor, PredictorConfig
from behavior_lab.policy.observation import parse_observation
from behavior_lab.policy.predictor import ChunkRequest
from behavior_lab.policy.runtime import PolicyRuntime

pytest.importorskip("behavior_lab.models.factory")
pytestmark = pytest.mark.timeout(300)


def make_stats(seed=0) -> NormStats:
    rng = np.random.default_rng(seed)
    return NormStats(
        action_mean=rng.normal(size=(30, 32)) * 0.1,
        action_std=rng.uniform(0.5, 2.0, size=(30, 32)),
        action_global_mean=np.zeros(32),
        action_global_std=np.ones(32),
        action_q01=-np.ones(32),
        action_q99=np.ones(32),
        state_mean=rng.normal(size=32) * 0.1,
        state_std=rng.uniform(0.5, 2.0, size=32),
        state_q01=-np.ones(32),
        state_q99=np.ones(32),
        task_num_stages={1: 6, 2: 15},
        task_mean_length={},
        delta_mask=schema.DELTA_ACTION_MASK.copy(),
    )


class RecordingModel(torch.nn.Module):
    """Returns fixed normalised actions; records what it was given."""

    def __init__(self, normalised: np.ndarray):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.normalised = torch.as_tensor(normalised, dtype=torch.float32)
        self.batches = []

    def sample_actions(self, batch, num_steps=20, noise=None, initial_actions=None):
        self.batches.append((batch, initial_actions, num_steps))
        B = batch["images"].shape[0]
        return {"actions": self.normalised[None].repeat(B, 1, 1), "stage_logits": torch.zeros(B, 15)}


def _request(stats_state=None, kept=None, task=1, stage=2):
    p = parse_observation(make_obs(task=task, image_hw=(48, 40)))
    return ChunkRequest(p.images, p.state, p.task_id, stage, 6, initial_actions=kept), p


def test_batch_layout_and_state_normalisation():
    stats = make_stats()
    model = RecordingModel(np.zeros((30, 32)))
    pred = ModelChunkPredictor(model, stats, PredictorConfig(image_size=16))
    req, p = _request()
    batch = pred.build_batch([req])
    assert batch["images"].shape == (1, 3, 16, 16, 3) and batch["images"].dtype == np.uint8
    expected = np.zeros(32)
    expected[:23] = (p.state - stats.state_mean[:23]) / (stats.state_std[:23] + 1e-6)
    expected[23:] = (0 - stats.state_mean[23:]) / (stats.state_std[23:] + 1e-6)
    np.testing.assert_allclose(batch["state"][0, :23], expected[:23], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(batch["state"][0, 23:], 0.0)  # zero-padded after normalising 23 dims
    assert batch["task_id"].tolist() == [1] and batch["stage"].tolist() == [2] and batch["num_stages"].tolist() == [6]


def test_output_is_unnormalised_per_timestep_absolute_and_truncated():
    stats = make_stats()
    z = np.random.default_rng(1).normal(size=(30, 32))
    pred = ModelChunkPredictor(RecordingModel(z), stats, PredictorConfig(image_size=16))
    req, p = _request()
    out = pred.predict([req])
    expected = z * (stats.action_std + 1e-6) + stats.action_mean  # spec §8.2 inverse
    expected = expected[:, :23]
    expected[:, schema.DELTA_ACTION_MASK] += p.state[schema.DELTA_ACTION_MASK]
    np.testing.assert_allclose(out.actions[0], expected, rtol=1e-5, atol=1e-5)
    assert out.actions.shape == (1, 30, 23) and out.stage_logits.shape == (1, 15)


def test_kept_actions_are_retransformed_against_the_new_state():
    stats = make_stats()
    model = RecordingModel(np.zeros((30, 32)))
    pred = ModelChunkPredictor(model, stats, PredictorConfig(image_size=16))
    kept = np.random.default_rng(2).normal(size=(4, 23)).astype(np.float32)
    req, p = _request(kept=kept)
    pred.predict([req])
    init = model.batches[-1][1].numpy()[0]
    delta = kept.astype(np.float64).copy()
    delta[:, schema.DELTA_ACTION_MASK] -= p.state[schema.DELTA_ACTION_MASK]
    expected = (delta - stats.action_mean[:4, :23]) / (stats.action_std[:4, :23] + 1e-6)  # rows 0..3
    assert init.shape == (4, 32)
    np.testing.assert_allclose(init[:, :23], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(init[:, 23:], 0.0)


def test_mixed_batch_splits_only_by_kept_actions():
    model = RecordingModel(np.zeros((30, 32)))
    pred = ModelChunkPredictor(model, make_stats(), PredictorConfig(image_size=16))
    with_k = _request(kept=np.zeros((4, 23), np.float32))[0]
    without = _request()[0]
    out = pred.predict([with_k, without, with_k])
    assert out.actions.shape == (3, 30, 23)
    assert sorted(b[0]["images"].shape[0] for b in model.batches) == [1, 2]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A real exported checkpoint of the tiny preset, random init."""
    import json

    from omegaconf import OmegaConf

    from behavior_lab.serving.bench import tiny_model
    from behavior_lab.training.export import export_checkpoint

    root = tmp_path_factory.mktemp("ckpt")
    model, cfg = tiny_model()
    stats = make_stats()
    (root / "data" / "meta").mkdir(parents=True)
    np.savez(root / "data" / "meta" / "action_correlation.npz", cholesky=np.eye(960))
    obj = stats.to_json()
    obj["correlation"] = {"file": "action_correlation.npz", "sha256": None}
    (root / "data" / "meta" / "norm_stats.json").write_text(json.dumps(obj))
    out = export_checkpoint(root / "export", model.state_dict(), OmegaConf.to_container(cfg), root / "data")
    return out


def test_load_checkpoint_and_run_runtime_with_tiny_model(tiny_checkpoint):
    from behavior_lab.policy.loading import load_checkpoint

    torch.manual_seed(0)
    model, stats, cfg = load_checkpoint(tiny_checkpoint, device="cpu")
    rt = PolicyRuntime(model, stats, cfg)
    obs = make_obs(task=2, image_hw=(72, 72))
    acts = np.stack([rt.act([obs])[0] for _ in range(21)])
    assert acts.shape == (21, 23) and acts.dtype == np.float32 and np.all(np.isfinite(acts))
    sess = rt.sessions[0]
    assert sess.replans == 2 and sess.inpainting.kept is not None
    assert rt.num_stages(2) == 15 and rt.num_stages(3) == schema.SEED_TASK_NUM_STAGES[3]


def test_load_checkpoint_errors_name_the_file(tmp_path):
    from behavior_lab.policy.loading import CheckpointError, load_checkpoint

    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "config.yaml").write_text("model: {}\n")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(tmp_path)


@pytest.mark.filterwarnings("ignore:connect\\(\\) must be used:DeprecationWarning")
def test_server_with_tiny_model(tiny_checkpoint):
    pytest.importorskip("openpi_client")
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    from behavior_lab.policy.loading import load_checkpoint
    from behavior_lab.policy.session import make_policy_factory
    from behavior_lab.serving.server import PolicyServer, ServerConfig

    model, stats, cfg = load_checkpoint(tiny_checkpoint, device="cpu")
    factory = make_policy_factory(ModelChunkPredictor(model, stats, cfg), norm_stats=stats)
    srv = PolicyServer(factory, ServerConfig(host="127.0.0.1", port=0))
    srv.start_in_thread()
    try:
        client = WebsocketClientPolicy(host="127.0.0.1", port=srv.port)
        for _ in range(3):
            out = client.infer(make_obs(task=1, image_hw=(96, 96)))
            assert out["action"].shape == (23,) and out["action"].dtype == np.float32
            assert np.all(np.isfinite(out["action"]))
    finally:
        srv.stop()


def test_text_prompt_model_gets_prompt_tokens():
    """innovation task_embeddings=off: the adapter adds the same ByteTokenizer prompts as training."""
    from omegaconf import OmegaConf

    from behavior_lab.models.factory import build_model
    from behavior_lab.models.tokenizer import ByteTokenizer
    from behavior_lab.serving.bench import SEED_MODEL_INNOVATIONS, tiny_model  # noqa: F401

    _, cfg = tiny_model()
    innovation = dict(SEED_MODEL_INNOVATIONS, task_embeddings={"enabled": False}, correlated_noise={"enabled": False})
    torch.manual_seed(0)
    model = build_model(cfg.model, innovation).eval()
    pred = ModelChunkPredictor(model, make_stats(), OmegaConf.create({"model": cfg.model}))
    req, _ = _request(task=12)
    batch = pred.build_batch([req])
    tokens, mask = ByteTokenizer(max_len=48).encode(["preparing lunch box"])
    np.testing.assert_array_equal(batch["prompt_tokens"], tokens)
    np.testing.assert_array_equal(batch["prompt_mask"], mask)
    out = pred.predict([req])
    assert out.actions.shape == (1, 30, 23) and np.all(np.isfinite(out.actions))


def test_serve_command_builds_policies_from_a_checkpoint_and_a_task_map(tiny_checkpoint, tmp_path):
    import json

    from omegaconf import OmegaConf

    from behavior_lab.cli.serve import build_policy_factory

    base = {"ckpt": str(tiny_checkpoint), "device": "cpu", "policy": {"num_steps": 2}}
    factory, meta = build_policy_factory(OmegaConf.create(base))
    out = factory().infer(make_obs(task=1, image_hw=(40, 40)))
    assert out["action"].shape == (23,) and meta["ckpt"] == str(tiny_checkpoint)

    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"checkpoints": {"only": {"path": str(tiny_checkpoint), "tasks": [3]}}}))
    factory, meta = build_policy_factory(OmegaConf.create({**base, "ckpt": "hold", "task_checkpoints": str(mapping)}))
    policy = factory()
    assert policy.infer(make_obs(task=3, image_hw=(40, 40)))["action"].shape == (23,)
    with pytest.raises(ValueError, match="not in the task -> checkpoint map"):
        policy.infer(make_obs(task=4, image_hw=(40, 40)))


def test_privileged_model_gets_task_info_and_refuses_observations_without_it():
    """model.task_info_dim > 0 (DESIGN §8 lever 5): the runtime requires schema.TASK_INFO_KEY in every
    observation (checked before any state changes) and the adapter passes it to the model."""
    from omegaconf import OmegaConf

    from behavior_lab.models.factory import build_model
    from behavior_lab.policy.observation import ObservationError
    from behavior_lab.serving.bench import SEED_MODEL_INNOVATIONS, tiny_model

    _, cfg = tiny_model()
    cfg.model.task_info_dim = schema.TASK_INFO_DIM
    innovation = dict(SEED_MODEL_INNOVATIONS, correlated_noise={"enabled": False})
    torch.manual_seed(0)
    model = build_model(cfg.model, innovation).eval()
    runtime = PolicyRuntime(model, make_stats(), {"model": OmegaConf.to_container(cfg.model)})
    obs = make_obs(task=1, image_hw=(48, 40))
    with pytest.raises(ObservationError, match="task_info.*privileged"):
        runtime.act([obs])
    info = np.linspace(-1, 1, schema.TASK_INFO_DIM).astype(np.float32)
    seen = []
    original = model.sample_actions
    model.sample_actions = lambda batch, **kw: (seen.append(batch["task_info"].clone()), original(batch, **kw))[1]
    actions = runtime.act([dict(obs, **{schema.TASK_INFO_KEY: info})])
    assert actions.shape == (1, 23) and np.all(np.isfinite(actions))
    np.testing.assert_array_equal(seen[0].numpy(), info[None])
    bad = dict(obs, **{schema.TASK_INFO_KEY: np.full(schema.TASK_INFO_DIM, np.nan, dtype=np.float32)})
    with pytest.raises(ObservationError, match="NaN"):
        runtime.act([bad])


def test_seeded_requests_do_not_depend_on_their_batch(tiny_checkpoint):
    """A request's noise_seed fixes its flow noise: alone or batched with others, its chunk differs
    only by rounding; with batch_invariant (eval's default) it is bit-identical."""
    import dataclasses

    from behavior_lab.policy.loading import load_checkpoint

    model, stats, cfg = load_checkpoint(tiny_checkpoint, device="cpu")
    reqs = []
    for i, task in enumerate((2, 1, 2)):
        p = parse_observation(make_obs(task=task, image_hw=(40, 40), arm_right=-0.1 * i))
        reqs.append(ChunkRequest(p.images, p.state, p.task_id, 0, 6, noise_seed=100 + i))
    pred = ModelChunkPredictor(model, stats, cfg)
    alone = pred.predict(reqs[:1]).actions[0]
    torch.manual_seed(123)  # the global RNG plays no part in seeded requests
    batched = pred.predict(reqs).actions[0]
    np.testing.assert_allclose(alone, batched, atol=1e-4)
    other = pred.predict([dataclasses.replace(reqs[0], noise_seed=5)]).actions[0]
    assert np.abs(other - alone).max() > 1e-3
    inv = ModelChunkPredictor(model, stats, cfg, batch_invariant=True)
    np.testing.assert_array_equal(inv.predict(reqs).actions[0], inv.predict(reqs[:1]).actions[0])
