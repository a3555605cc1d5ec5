"""Chat prompts for training and inference, rendered with each model's own template."""

from __future__ import annotations

from engine.models.families import Family


_RESPONSE_MARK = "\u2063RESPONSE\u2063"


def user_messages(text: str) -> list[dict]:
    """Return a single user turn holding the image and `text` (which may be empty)."""
    content: list[dict] = [{"type": "image"}]
    if text:
        content.append({"type": "text", "text": text})
    return [{"role": "user", "content": content}]


def render_prompt(processor, family: Family, text: str) -> str:
    """Render the user turn up to where the model's reply starts.

    PaliGemma has no chat template: its processor adds the image tokens and
    the separator itself, so the text is passed through unchanged.
    """
    if not family.uses_chat_template:
        return text
    return processor.apply_chat_template(user_messages(text), add_generation_prompt=True, tokenize=False)


def _render_with_mark(processor, family: Family) -> tuple[str, str]:
    messages = user_messages("x") + [{"role": "assistant", "content": [{"type": "text", "text": _RESPONSE_MARK}]}]
    rendered = processor.apply_chat_template(messages, tokenize=False)
    if _RESPONSE_MARK not in rendered:
        raise ValueError(
            f"The chat template of this {family.name} model drops the assistant reply; "
            "it cannot be used to train on reports."
        )
    before, after = rendered.split(_RESPONSE_MARK, 1)
    return before, after


def reply_prefix_text(processor, family: Family) -> str:
    """Return what the template puts between the generation prompt and the reply.

    Some templates end the generation prompt with `ASSISTANT:` but render a
    reply as `ASSISTANT: text`. The report is trained with that space, so
    training matches the template.
    """
    if not family.uses_chat_template:
        return ""
    before, _ = _render_with_mark(processor, family)
    prompt = render_prompt(processor, family, "x")
    return before[len(prompt) :] if before.startswith(prompt) else ""


def end_of_turn_text(processor, family: Family) -> str:
    """Return the text the template puts after an assistant reply (e.g. `<|im_end|>\\n`).

    The report is followed by these tokens in training, so that the tuned
    model learns to stop where the template ends a turn.
    """
    tokenizer = getattr(processor, "tokenizer", processor)
    if not family.uses_chat_template:
        return tokenizer.eos_token or ""
    _, after = _render_with_mark(processor, family)
    return after
