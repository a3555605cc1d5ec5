import pytest
from transformers import GPT2Config, GPT2LMHeadModel

from engine.models.families import UnsupportedModelError
from engine.models.loading import ModelNotAvailableError, load_config, load_model


def test_local_folder_loads_through_auto_classes(tiny_model_factory):
    loaded = load_model(str(tiny_model_factory("qwen2_vl")))
    assert loaded.family.name == "qwen2_vl"
    assert loaded.tokenizer.padding_side == "right"
    assert not loaded.is_demo


def test_demo_model_is_labelled(caplog):
    loaded = load_model("demo")
    assert loaded.is_demo
    assert loaded.family.name == "llava"
    assert "answers are meaningless" in caplog.text


def test_uncached_hub_id_fails_without_download(monkeypatch):
    # Downloads are off by default, so this must fail from the local cache
    # alone, whatever the value of HF_HUB_OFFLINE.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(ModelNotAvailableError, match="downloads are off") as error:
        load_model("Qwen/Qwen2.5-VL-3B-Instruct")
    assert "not in the local Hugging Face cache" in str(error.value)
    assert "hf download Qwen/Qwen2.5-VL-3B-Instruct" in str(error.value)


def test_offline_hub_id_with_download_allowed(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError, match="HF_HUB_OFFLINE is set"):
        load_model("Qwen/Qwen2.5-VL-3B-Instruct", allow_download=True)


def test_unsupported_architecture_lists_supported(tmp_path):
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64)).save_pretrained(tmp_path)
    with pytest.raises(UnsupportedModelError, match="Model type 'gpt2' is not supported") as error:
        load_model(str(tmp_path))
    for model_type in ("mllama", "qwen2_5_vl", "idefics3", "llava", "gemma3", "paligemma"):
        assert model_type in str(error.value)


def test_file_path_rejected(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"")
    with pytest.raises(ModelNotAvailableError, match="is a file"):
        load_config(str(path))
