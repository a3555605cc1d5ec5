"""Supported VLM families and the module groups that can be trained.

Every supported model is loaded through `AutoModelForImageTextToText`, so
parameter names follow the transformers 5.x layout `model.<part>.…` plus a
top-level `lm_head`. A family maps each parameter to exactly one group:

- `vision`: the vision encoder,
- `projector`: what carries image features into the language model (a
  projector, a connector, Qwen's patch merger, Mllama's cross-attention
  layers),
- `language`: the language model and its output head.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from torch import nn

from engine.models.groups import MODULE_GROUPS, ModuleGroup


# Attribute name under which the training code attaches the proxy instruction
# to a model; its parameters belong to no module group.
PROXY_MODULE_NAME = "proxy_instruction"


@dataclass(frozen=True)
class Family:
    """What the engine needs to know about one model architecture.

    `group_patterns` returns, for a model config, one regular expression per
    group. A parameter belongs to the first group whose pattern matches the
    start of its name (the order is projector, vision, language, so that a
    projector nested inside the vision tower is claimed first).
    `uses_chat_template` is False for PaliGemma, whose processor builds the
    prompt itself and takes the target as `suffix`.
    """

    name: str
    model_types: tuple[str, ...]
    group_patterns: Callable[[object], dict[ModuleGroup, str]]
    uses_chat_template: bool = True
    response_token_type: int | None = None

    def group_of(self, parameter_name: str, config: object) -> ModuleGroup | None:
        """Return the group a parameter belongs to, or None for unknown names."""
        patterns = self.group_patterns(config)
        for group in ("projector", "vision", "language"):
            if re.match(patterns[group], _strip_wrappers(parameter_name)):
                return group
        return None


def _strip_wrappers(name: str) -> str:
    # peft wraps the model as `base_model.model.<name>` and LoRA layers add
    # `.base_layer`; the group is decided on the original name.
    name = re.sub(r"^(base_model\.model\.)+", "", name)
    return name.replace(".base_layer.", ".")


def _simple(vision: str, projector: str, language: str) -> Callable[[object], dict[ModuleGroup, str]]:
    def patterns(config: object) -> dict[ModuleGroup, str]:
        return {
            "vision": rf"model\.{vision}\.",
            "projector": rf"model\.{projector}\.",
            "language": rf"(model\.{language}\.|lm_head\.)",
        }

    return patterns


def _qwen_patterns(config: object) -> dict[ModuleGroup, str]:
    return {
        "vision": r"model\.visual\.",
        "projector": r"model\.visual\.(merger|deepstack_merger_list)\.",
        "language": r"(model\.language_model\.|lm_head\.)",
    }


def _mllama_patterns(config: object) -> dict[ModuleGroup, str]:
    # The cross-attention decoder layers are where image features enter the
    # language model, so they belong to the projector group.
    cross_layers = "|".join(str(i) for i in config.text_config.cross_attention_layers)
    return {
        "vision": r"model\.vision_model\.",
        "projector": rf"(model\.multi_modal_projector\.|model\.language_model\.layers\.({cross_layers})\.)",
        "language": r"(model\.language_model\.|lm_head\.)",
    }


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("mllama", ("mllama",), _mllama_patterns),
        Family("qwen2_vl", ("qwen2_vl",), _qwen_patterns),
        Family("qwen2_5_vl", ("qwen2_5_vl",), _qwen_patterns),
        Family("qwen3_vl", ("qwen3_vl",), _qwen_patterns),
        Family("idefics3", ("idefics3", "smolvlm"), _simple("vision_model", "connector", "text_model")),
        Family("llava", ("llava",), _simple("vision_tower", "multi_modal_projector", "language_model")),
        Family("gemma3", ("gemma3",), _simple("vision_tower", "multi_modal_projector", "language_model")),
        Family(
            "paligemma",
            ("paligemma",),
            _simple("vision_tower", "multi_modal_projector", "language_model"),
            uses_chat_template=False,
            response_token_type=1,
        ),
    )
}


class UnsupportedModelError(ValueError):
    """Raised for a model architecture the engine has no module groups for."""


def family_for_config(config: object) -> Family:
    """Return the family of a loaded model config, or raise with the supported list."""
    model_type = getattr(config, "model_type", None)
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    supported = ", ".join(sorted(t for f in FAMILIES.values() for t in f.model_types))
    raise UnsupportedModelError(
        f"Model type {model_type!r} is not supported. Supported model types: {supported}. "
        "Pick a checkpoint of one of these architectures."
    )


def parameters_by_group(model: nn.Module, family: Family) -> dict[ModuleGroup, list[str]]:
    """Sort every parameter name of `model` into its group.

    Raises ValueError listing names that no group claims, because training a
    model whose parameters we cannot place would silently freeze or train the
    wrong parts.
    """
    config = model.config
    groups: dict[ModuleGroup, list[str]] = {group: [] for group in MODULE_GROUPS}
    unplaced: list[str] = []
    for name, _ in model.named_parameters():
        if PROXY_MODULE_NAME in name.split("."):
            continue
        group = family.group_of(name, config)
        if group is None:
            unplaced.append(name)
        else:
            groups[group].append(name)
    if unplaced:
        raise ValueError(
            f"{len(unplaced)} parameters of this {family.name} model belong to no module group, "
            f"e.g. {unplaced[:3]}. The model layout differs from the one this engine knows."
        )
    return groups


def module_names_in_groups(
    model: nn.Module, family: Family, groups: Iterable[ModuleGroup]
) -> tuple[list[str], list[str]]:
    """Return (linear module names, other leaf modules with parameters) in the groups.

    LoRA targets the linear layers. A group part with parameters but no linear
    layer (Gemma 3's projector multiplies by a raw parameter) is listed
    separately so it can be trained whole through peft's `modules_to_save`.
    """
    wanted = set(groups)
    config = model.config
    linear: list[str] = []
    others: list[str] = []
    for name, module in model.named_modules():
        own_parameters = list(module.parameters(recurse=False))
        if not own_parameters or PROXY_MODULE_NAME in name.split("."):
            continue
        group = family.group_of(name + ".", config)
        if group not in wanted:
            continue
        if isinstance(module, nn.Linear):
            linear.append(name)
        elif not any(name.startswith(done + ".") for done in others):
            others.append(name)
    return linear, others
