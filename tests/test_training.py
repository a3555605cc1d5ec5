"""Warm-up + main stage on a tiny model of every supported family."""

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText

import engine.training.run as run_module
from engine.config import RunConfig
from engine.models.families import family_for_config, parameters_by_group
from engine.models.tiny import TINY_FAMILIES
from engine.training import train


def tiny_config(model_dir, data_dir, **method) -> RunConfig:
    config = RunConfig()
    config.model.name = str(model_dir)
    config.data.path = str(data_dir)
    config.data.quiz_fraction = 0.0
    config.training.batch_size = 2
    config.training.max_steps = 2
    config.training.learning_rate = 1e-2
    config.method.warmup_steps = 2
    config.method.warmup_learning_rate = 1e-1
    config.method.num_proxy_tokens = 4
    for key, value in method.items():
        setattr(config.method, key, value)
    return config


def snapshot(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def base_name(name: str) -> str:
    """Map a peft parameter name to the base model's name (copies of modules_to_save excluded)."""
    name = name.removeprefix("base_model.model.")
    return name.replace(".base_layer.", ".").replace(".original_module.", ".")


@pytest.fixture
def capture_after_warmup(monkeypatch):
    """Record model weights and proxy as the main stage begins (right after warm-up)."""
    captured = {}
    original = run_module.run_main

    def recording_run_main(context, proxy, resume):
        captured["weights"] = snapshot(context.loaded.model)
        captured["proxy"] = proxy.tokens.detach().clone() if proxy is not None else None
        captured["average"] = proxy.average.detach().clone() if proxy is not None else None
        return original(context, proxy, resume)

    monkeypatch.setattr(run_module, "run_main", recording_run_main)
    return captured


@pytest.mark.parametrize("mode", ["lora", "full"])
@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_two_stages_train_only_chosen_parts(
    family, mode, tiny_model_factory, small_data, tmp_path, capture_after_warmup
):
    model_dir = tiny_model_factory(family)
    initial_model = AutoModelForImageTextToText.from_pretrained(model_dir)
    initial = snapshot(initial_model)
    groups = parameters_by_group(initial_model, family_for_config(initial_model.config))
    frozen = set(groups["language"])
    trained = set(groups["vision"]) | set(groups["projector"])

    outcome = train(tiny_config(model_dir, small_data, mode=mode), tmp_path / "run")
    assert outcome.status == "completed"

    # Warm-up moved the proxy and nothing else.
    after_warmup = capture_after_warmup["weights"]
    for name, value in initial.items():
        assert torch.equal(after_warmup[name], value), f"warm-up changed model weight {name}"
    warmup_proxy = load_file(str(tmp_path / "run" / "warmup_proxy.safetensors"))
    assert torch.equal(warmup_proxy["tokens"], capture_after_warmup["proxy"])
    assert torch.equal(capture_after_warmup["average"], capture_after_warmup["proxy"])
    initial_proxy = run_module.initial_proxy_tokens(
        initial_model.get_input_embeddings(), outcome_tokenizer(model_dir), 4, "text", "Describe the image."
    )
    assert not torch.allclose(warmup_proxy["tokens"], initial_proxy), "warm-up left the proxy unchanged"

    # Main stage: frozen group unchanged, trained groups changed.
    final = {base_name(n): p.detach() for n, p in outcome.model.named_parameters() if ".modules_to_save." not in n}
    for name in frozen:
        assert torch.equal(final[name], initial[name]), f"frozen weight {name} changed"
    if mode == "full":
        changed = [n for n in trained if not torch.equal(final[n], initial[n])]
        for group in ("vision", "projector"):
            assert any(n in changed for n in groups[group]), f"no {group} weight changed"
    else:
        for name in trained:
            assert torch.equal(final[name], initial[name]), f"LoRA changed base weight {name}"
        lora = {n: p for n, p in outcome.model.named_parameters() if "lora_B" in n}
        assert lora, "no LoRA layers were added"
        assert any(p.abs().sum() > 0 for p in lora.values()), "LoRA weights did not move"
        copies = {n: p for n, p in outcome.model.named_parameters() if ".modules_to_save." in n}
        for n, p in copies.items():
            original = base_name(n.replace(".modules_to_save.default.", "."))
            assert not torch.equal(p.detach(), initial[original]), f"modules_to_save copy {n} did not move"
        for n in lora:
            group = family_for_config(initial_model.config).group_of(n, initial_model.config)
            assert group in ("vision", "projector"), f"LoRA layer {n} sits in group {group}"
    assert not torch.equal(outcome.proxy.average, capture_after_warmup["average"]), "t̄ did not move in main stage"


def outcome_tokenizer(model_dir):
    from transformers import AutoProcessor

    from engine.proxy import PLACEHOLDER_TOKEN

    tokenizer = AutoProcessor.from_pretrained(model_dir).tokenizer
    tokenizer.add_tokens([PLACEHOLDER_TOKEN], special_tokens=True)
    return tokenizer


@pytest.mark.parametrize("instruction", ["fixed", "none"])
def test_baselines_train_without_proxy(instruction, tiny_model_factory, small_data, tmp_path):
    config = tiny_config(tiny_model_factory("llava"), small_data, instruction=instruction)
    outcome = train(config, tmp_path / "run")
    assert outcome.status == "completed"
    assert outcome.proxy is None
    assert not (tmp_path / "run" / "warmup_proxy.safetensors").exists()
    stages = {
        line.split('"stage": "')[1].split('"')[0]
        for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    }
    assert stages == {"main"}


def test_momentum_applied_after_each_step(tiny_model_factory, small_data, tmp_path, capture_after_warmup):
    """With m = 0.5 and one main step, t̄ = 0.5·t̄₀ + 0.5·t₁ exactly."""
    config = tiny_config(tiny_model_factory("llava"), small_data, momentum=0.5)
    config.training.max_steps = 1
    outcome = train(config, tmp_path / "run")
    start = capture_after_warmup["average"]
    trained = outcome.proxy.tokens.detach()
    expected = 0.5 * start + 0.5 * trained
    assert torch.allclose(outcome.proxy.average, expected, atol=1e-6)
    assert not torch.equal(trained, start)


def test_bf16_model_keeps_fp32_proxy_and_exact_momentum(tiny_model_factory, small_data, tmp_path, capture_after_warmup):
    config = tiny_config(tiny_model_factory("llava"), small_data, momentum=0.999)
    config.model.precision = "bf16"
    config.training.max_steps = 1
    outcome = train(config, tmp_path / "run")

    assert outcome.status == "completed"
    assert next(p for n, p in outcome.model.named_parameters() if "lora" not in n).dtype == torch.bfloat16
    assert outcome.proxy.tokens.dtype == torch.float32
    assert outcome.proxy.average.dtype == torch.float32
    start = capture_after_warmup["average"]
    expected = 0.999 * start + 0.001 * outcome.proxy.tokens.detach()
    assert torch.allclose(outcome.proxy.average, expected, atol=1e-7)
    assert not torch.equal(outcome.proxy.average, start), "a 0.1% momentum step was lost"


def test_checkpointing_and_accumulation_train(tiny_model_factory, small_data, tmp_path):
    config = tiny_config(tiny_model_factory("qwen2_vl"), small_data)
    config.model.gradient_checkpointing = True
    config.training.gradient_accumulation_steps = 2
    config.training.batch_size = 1
    outcome = train(config, tmp_path / "run")
    assert outcome.status == "completed"
    warmup = load_file(str(tmp_path / "run" / "warmup_proxy.safetensors"))
    assert not torch.equal(outcome.proxy.tokens.detach(), warmup["tokens"])


def test_shadow_momentum_keeps_trained_proxy_apart(tiny_model_factory, small_data, tmp_path, capture_after_warmup):
    """Shadow momentum: t follows its own optimizer steps and t̄ averages it after each."""
    config = tiny_config(tiny_model_factory("llava"), small_data, momentum=0.5, momentum_update="shadow")
    config.training.max_steps = 1
    outcome = train(config, tmp_path / "run")
    start = capture_after_warmup["average"]
    trained = outcome.proxy.tokens.detach()

    assert outcome.proxy.forward_uses_average
    assert torch.allclose(outcome.proxy.average, 0.5 * start + 0.5 * trained, atol=1e-6)
    assert not torch.equal(trained, outcome.proxy.average)


def test_shadow_hook_writes_average_with_gradient_to_tokens():
    from engine.proxy import ProxyInstruction

    embedding = torch.nn.Embedding(10, 3)
    proxy = ProxyInstruction(torch.zeros(2, 3), placeholder_id=9, substitute_id=0)
    proxy.average.fill_(1.0)
    proxy.forward_uses_average = True
    proxy.attach(embedding)
    output = embedding(torch.tensor([[1, 9, 9, 2]]))
    proxy.detach()

    assert torch.equal(output[0, 1:3], torch.ones(2, 3))
    output[0, 1:3].sum().backward()
    assert torch.equal(proxy.tokens.grad, torch.ones(2, 3))
