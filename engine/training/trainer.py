"""`transformers.Trainer` extended for instruction-free tuning through its seams."""

from __future__ import annotations

from transformers import Trainer

from engine.proxy import ProxyInstruction


class InstructionFreeTrainer(Trainer):
    """A Trainer that also optimises a proxy instruction.

    - `create_optimizer` adds the proxy as its own parameter group with
      `proxy_learning_rate` and no weight decay.
    - In the main stage with momentum, `training_step` loads the moving
      average t̄ into the proxy before the forward pass;
      `ProxyMomentumCallback` updates t̄ after the optimizer step.
    - `compute_loss` checks that the proxy hook is in place whenever the
      batch holds placeholders, so a proxy can never be silently ignored.

    Without a proxy (the fixed- and no-instruction baselines) it behaves as a
    plain Trainer.
    """

    def __init__(
        self,
        *args,
        proxy: ProxyInstruction | None = None,
        proxy_learning_rate: float = 1e-3,
        use_average: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.proxy = proxy
        self.proxy_learning_rate = proxy_learning_rate
        self.use_average = use_average

    def create_optimizer(self, model=None):
        if self.optimizer is not None:
            return self.optimizer
        model = model if model is not None else self.model
        proxy_parameters = {id(self.proxy.tokens)} if self.proxy is not None else set()
        decay_names = set(self.get_decay_parameter_names(model))
        decay, no_decay = [], []
        for name, parameter in model.named_parameters():
            if not parameter.requires_grad or id(parameter) in proxy_parameters:
                continue
            (decay if name in decay_names else no_decay).append(parameter)

        groups = []
        if decay:
            groups.append({"params": decay, "weight_decay": self.args.weight_decay})
        if no_decay:
            groups.append({"params": no_decay, "weight_decay": 0.0})
        if self.proxy is not None and self.proxy.tokens.requires_grad:
            groups.append({"params": [self.proxy.tokens], "weight_decay": 0.0, "lr": self.proxy_learning_rate})
        if not groups:
            raise ValueError("Nothing to train: no model parameter requires grad and there is no proxy.")

        optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, model)
        self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.proxy is not None and self.use_average:
            # `reload` momentum: loading t̄ into t before each step means t
            # never keeps a trajectory of its own, so t̄ moves by (1−m) times
            # one optimizer step and with m = 0.999 the proxy stays close to
            # where warm-up left it. `shadow` momentum (method.momentum_update)
            # keeps t's trajectory instead.
            self.proxy.load_average()
        return super().training_step(model, inputs, num_items_in_batch)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if (
            self.proxy is not None
            and not self.proxy.attached
            and bool((inputs["input_ids"] == self.proxy.placeholder_id).any())
        ):
            raise RuntimeError(
                "The batch contains proxy placeholders but the proxy hook is not attached; "
                "call proxy.attach(model.get_input_embeddings()) before training."
            )
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
