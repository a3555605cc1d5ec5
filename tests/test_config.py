import pytest

from engine.config import RunConfig


def test_defaults_follow_the_recipe():
    config = RunConfig()
    config.validate()
    assert config.method.num_proxy_tokens == 8
    assert config.method.momentum == 0.999
    assert config.method.warmup_epochs == 1.0
    assert config.method.trainable == ["vision", "projector"]
    assert config.method.mode == "lora"
    assert config.method.shuffling == "auto"


def test_yaml_round_trip(tmp_path):
    config = RunConfig()
    config.method.momentum = 0.9
    config.training.max_steps = 5
    config.save(tmp_path / "config.yaml")
    loaded = RunConfig.load(tmp_path / "config.yaml")
    assert loaded == config


def test_validate_reports_every_problem_at_once():
    config = RunConfig()
    config.method.momentum = 1.5
    config.method.num_proxy_tokens = 0
    config.method.trainable = ["vision", "decoder"]
    config.training.batch_size = 0
    with pytest.raises(ValueError) as error:
        config.validate()
    message = str(error.value)
    assert "method.momentum is 1.5" in message
    assert "method.num_proxy_tokens is 0" in message
    assert "unknown group(s) ['decoder']" in message
    assert "training.batch_size is 0" in message


def test_unknown_key_named_with_its_section():
    with pytest.raises(ValueError, match=r"Unknown config key\(s\) method\.momentom"):
        RunConfig.from_dict({"method": {"momentom": 0.9}})


def test_invalid_choice_lists_the_options():
    config = RunConfig()
    config.method.shuffling = "words"
    with pytest.raises(ValueError, match="method.shuffling is 'words'; expected one of none, comma, sentence, auto"):
        config.validate()


def test_wrong_types_named_before_range_checks():
    config = RunConfig.from_dict({"training": {"epochs": "one"}, "method": {"trainable": "vision"}})
    with pytest.raises(ValueError) as error:
        config.validate()
    message = str(error.value)
    assert "training.epochs is 'one'; expected a number" in message
    assert "method.trainable is 'vision'; expected a list of text" in message


def test_whole_numbers_accepted_for_floats():
    config = RunConfig.from_dict({"method": {"momentum": 0}, "training": {"epochs": 2}})
    config.validate()
