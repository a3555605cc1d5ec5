"""Choose what the main stage trains: module groups, fully or through LoRA."""

from __future__ import annotations

import logging
import re

from peft import LoraConfig, get_peft_model
from torch import nn

from engine.config import MethodConfig
from engine.models.families import Family, module_names_in_groups, parameters_by_group


logger = logging.getLogger(__name__)

# Not targeted by LoRA: SigLIP-style pooling heads, which VLMs never call (a
# LoRA layer there gets no gradient), and the output head, which is usually
# tied to the input embeddings (peft would then save the whole embedding).
_NOT_LORA_TARGETS = re.compile(r"(^|\.)(head|lm_head)(\.|$)")


def freeze(model: nn.Module) -> None:
    for parameter in model.parameters():
        parameter.requires_grad_(False)


def apply_trainable_parts(model: nn.Module, family: Family, method: MethodConfig) -> nn.Module:
    """Freeze the model, then unfreeze the chosen groups (full) or wrap them with LoRA.

    Returns the model to train: the same object in `full` mode, a
    `PeftModel` in `lora` mode. The caller re-enables the proxy afterwards,
    because peft freezes every parameter it does not own.
    """
    freeze(model)
    groups = list(method.trainable)
    if not groups:
        return model

    if method.mode == "full":
        names = set()
        for group, group_names in parameters_by_group(model, family).items():
            if group in groups:
                names.update(group_names)
        for name, parameter in model.named_parameters():
            if name in names:
                parameter.requires_grad_(True)
        return model

    linear, modules_to_save = [], []
    for group in groups:
        group_linear, group_others = module_names_in_groups(model, family, [group])
        group_linear = [name for name in group_linear if not _NOT_LORA_TARGETS.search(name)]
        if group_linear:
            linear.extend(group_linear)
        else:
            # A group without linear layers (Gemma 3's projector multiplies by a
            # raw parameter) is trained whole, as peft's modules_to_save.
            modules_to_save.extend(group_others)
            logger.info("Group %r has no linear layer; training %s fully", group, ", ".join(group_others))

    if not linear:
        raise ValueError(
            f"LoRA found no linear layer in module groups {groups} of this {family.name} model; "
            "use method.mode: full for these groups."
        )
    lora_config = LoraConfig(
        r=method.lora_rank,
        lora_alpha=method.lora_alpha,
        lora_dropout=method.lora_dropout,
        target_modules=linear,
        modules_to_save=modules_to_save or None,
    )
    return get_peft_model(model, lora_config)


def trained_parameter_names(model: nn.Module, exclude_prefix: str = "proxy_instruction") -> list[str]:
    """Return the names of parameters that require grad, without the proxy."""
    return [
        name
        for name, parameter in model.named_parameters()
        if parameter.requires_grad and exclude_prefix not in name.split(".")
    ]
