"""The proxy instruction: K learnable soft tokens in place of a text instruction.

During training the user turn of the chat template is `[image, K placeholder
tokens]`. A forward hook on the model's input-embedding module replaces the
embedding rows at the placeholder positions with the K vectors, so the same
mechanism works for every supported architecture, under peft and under
gradient checkpointing. The proxy is a training-time device only: inference
removes the hook and uses real instructions.

Momentum (main stage): the vectors used in every forward pass are the moving
average t̄ of the trained proxy t, updated after each optimizer step as
t̄ ← m·t̄ + (1−m)·t. Both are kept in fp32 whatever the model's dtype,
because in bf16 an update of 0.1% of the value is lost to rounding.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle


PLACEHOLDER_TOKEN = "<|proxy|>"


class ProxyInstruction(nn.Module):
    """K soft-token vectors (`tokens`, shape (K, D)) and their moving average `average`.

    `placeholder_id` is the tokenizer id of the placeholder token. It may lie
    outside the model's embedding table, so a pre-hook maps it to
    `substitute_id` before the lookup and the forward hook writes the proxy
    rows over the result.
    """

    def __init__(self, tokens: torch.Tensor, placeholder_id: int, substitute_id: int = 0) -> None:
        super().__init__()
        tokens = tokens.detach().to(torch.float32).clone()
        self.tokens = nn.Parameter(tokens)
        self.register_buffer("average", tokens.clone())
        self.placeholder_id = placeholder_id
        self.substitute_id = substitute_id
        # When True the hook writes t̄ with the gradient routed to t
        # (t̄ + t − t.detach(): value t̄, derivative 1 with respect to t).
        self.forward_uses_average = False
        self._mask: torch.Tensor | None = None
        self._handles: list[RemovableHandle] = []

    @property
    def num_tokens(self) -> int:
        return self.tokens.shape[0]

    def _apply(self, fn, recurse=True):
        # Moving the model to a device or dtype must never make the proxy
        # lower precision: keep both tensors fp32.
        super()._apply(fn, recurse)
        self.tokens.data = self.tokens.data.float()
        self.average = self.average.float()
        return self

    # --- momentum -------------------------------------------------------

    @torch.no_grad()
    def load_average(self) -> None:
        """Set the trained proxy t to the moving average t̄ (before a forward pass)."""
        self.tokens.copy_(self.average)

    @torch.no_grad()
    def update_average(self, momentum: float) -> None:
        """Apply t̄ ← m·t̄ + (1−m)·t in fp32 (after an optimizer step)."""
        self.average.mul_(momentum).add_(self.tokens, alpha=1.0 - momentum)

    @torch.no_grad()
    def reset_average(self) -> None:
        """Start t̄ as a copy of the current proxy (end of warm-up)."""
        self.average.copy_(self.tokens)

    # --- hooks ----------------------------------------------------------

    def attach(self, embedding: nn.Module) -> None:
        """Register the hooks on the input-embedding module; idempotent."""
        if self._handles:
            return
        self._handles = [
            embedding.register_forward_pre_hook(self._before_embedding, with_kwargs=True),
            embedding.register_forward_hook(self._after_embedding, with_kwargs=True),
        ]

    def detach(self) -> None:
        """Remove the hooks so the model embeds text as if the proxy never existed."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._mask = None

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def _before_embedding(self, module, args, kwargs):
        input_ids = args[0] if args else kwargs.get("input")
        if input_ids is None:
            input_ids = kwargs.get("input_ids")
        if input_ids is None:
            self._mask = None
            return None
        mask = input_ids == self.placeholder_id
        if not mask.any():
            self._mask = None
            return None
        self._mask = mask
        substituted = input_ids.masked_fill(mask, self.substitute_id)
        if args:
            return (substituted, *args[1:]), kwargs
        key = "input" if "input" in kwargs else "input_ids"
        return args, {**kwargs, key: substituted}

    def _after_embedding(self, module, args, kwargs, output):
        mask, self._mask = self._mask, None
        if mask is None:
            return None
        counts = mask.sum(dim=-1)
        rows_with_proxy = counts > 0
        if not torch.all(counts[rows_with_proxy] == self.num_tokens):
            raise ValueError(
                f"Each sequence must hold exactly {self.num_tokens} proxy placeholders, "
                f"found counts {counts.tolist()}. The prompt builder and the proxy disagree on K."
            )
        num_rows = int(rows_with_proxy.sum())
        proxy = self.tokens
        if self.forward_uses_average:
            proxy = self.average + (self.tokens - self.tokens.detach())
        vectors = proxy.to(output.dtype).unsqueeze(0).expand(num_rows, -1, -1)  # (R, K, D)
        return output.masked_scatter(mask.unsqueeze(-1), vectors.reshape(-1, output.shape[-1]))


def initial_proxy_tokens(
    embedding: nn.Module,
    tokenizer,
    num_tokens: int,
    init: str,
    text: str,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Return the starting (K, D) proxy in fp32.

    `text` init takes the embedding-module output of the instruction tokens
    (so Gemma-style scaling inside the module is included), repeated or
    truncated to K. `random` draws from a normal distribution matching the
    standard deviation of the embedding table.
    """
    weight = embedding.weight
    if init == "random":
        std = weight.detach().float().std().item()
        noise = torch.randn(num_tokens, weight.shape[1], generator=generator)
        return noise * std

    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"Proxy init text {text!r} produced no tokens; give a non-empty instruction.")
    repeats = -(-num_tokens // len(ids))
    ids = (ids * repeats)[:num_tokens]
    with torch.no_grad():
        vectors = embedding(torch.tensor([ids], device=weight.device))[0]
    return vectors.detach().float().cpu()
