"""Pure nn.Module side of behavior_lab (docs/interfaces.md "Model").

- `factory.build_model(model_node, innovation_node, correlation_cholesky=None)`: the one constructor.
- `pi_behavior.PiBehavior`: `compute_loss(batch, noise=None, time=None)`, `sample_actions(batch, ...)`.
- `gemma_mot`: Gemma mixture of transformers from transformers' leaf modules, our layer loop, adaRMSNorm.
- `prefix`: prefix layout, ar-flag attention groups, RoPE positions, state encoders (spec §1.2-1.5).
- `vision`: SigLIP tower (pi05/small) or conv + spatial-softmax keypoints (tiny).
- `checkpoint.load_pi05_base`: local openpi/LeRobot pi05_base safetensors -> LoadReport.
- `config` / `innovation_config`: dataclasses built from conf/model/<preset>.yaml and conf/innovation/*.
- `tokenizer.ByteTokenizer`: prompts for text conditioning on tiny presets.
- `bench`: `behavior-lab bench model.*`.
"""
