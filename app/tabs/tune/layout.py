"""Tune tab: model, method settings, start and stop, live loss curve, progress and log."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app.model_catalog import DEMO_CHOICE, model_choices, size_warning
from app.tabs.tune.progress import STAGE_COLOURS, empty_loss_frame


POLL_SECONDS = 0.5


@dataclass
class TuneTab:
    dataset_info: gr.Markdown
    model_choice: gr.Dropdown
    local_folder: gr.Textbox
    model_note: gr.Markdown
    settings: dict[str, gr.components.Component]
    """Method and training inputs by the name of the start handler's parameter."""
    run_name: gr.Textbox
    start_button: gr.Button
    stop_button: gr.Button
    status: gr.Markdown
    progress: gr.HTML
    loss_plot: gr.LinePlot
    log_tail: gr.Textbox
    timer: gr.Timer


def _method_inputs(defaults) -> dict[str, gr.components.Component]:
    method = defaults.method
    with gr.Row():
        num_proxy_tokens = gr.Number(method.num_proxy_tokens, precision=0, minimum=1, maximum=256,
                                     label="Proxy tokens (K)", info="Soft tokens that stand in for the instruction.")
        momentum = gr.Number(method.momentum, minimum=0.0, maximum=0.99999, step=0.001, label="Proxy momentum (m)",
                             info="The proxy used in each forward pass is a moving average with this momentum.")
        warmup_epochs = gr.Number(method.warmup_epochs, minimum=0.0, step=0.5, label="Warm-up epochs",
                                  info="Epochs that train the proxy alone before the model; 0 skips the warm-up.")
    with gr.Row():
        trainable = gr.CheckboxGroup(["vision", "projector", "language"], value=list(method.trainable),
                                     label="Trained in the main stage",
                                     info="Module groups of the model that the main stage tunes.")
        shuffling = gr.Radio(["auto", "comma", "sentence", "none"], value=method.shuffling, label="Response shuffling",
                             info="Reorders report phrases each epoch; auto picks by report style.")
    return {"num_proxy_tokens": num_proxy_tokens, "momentum": momentum, "warmup_epochs": warmup_epochs,
            "trainable": trainable, "shuffling": shuffling}


def _advanced_inputs(defaults) -> dict[str, gr.components.Component]:
    method, training = defaults.method, defaults.training
    with gr.Accordion("Advanced", open=False):
        with gr.Row():
            mode = gr.Radio([("LoRA adapters", "lora"), ("Full weights", "full")], value=method.mode,
                            label="Tuning mode")
            instruction = gr.Radio(
                [("Proxy instruction (instruction-free)", "proxy"), ("Fixed text", "fixed"), ("No instruction", "none")],
                value=method.instruction, label="User turn",
            )
            precision = gr.Radio(["auto", "fp32", "bf16"], value=defaults.model.precision, label="Precision",
                                 info="auto: bf16 on GPUs that support it, fp32 on the CPU.")
        with gr.Row():
            learning_rate = gr.Number(training.learning_rate, minimum=0.0, label="Learning rate (model weights)")
            proxy_learning_rate = gr.Number(method.proxy_learning_rate, minimum=0.0, label="Learning rate (proxy)")
            warmup_learning_rate = gr.Number(method.warmup_learning_rate, minimum=0.0,
                                             label="Learning rate (proxy, warm-up)")
        with gr.Row():
            epochs = gr.Number(training.epochs, minimum=0.0, step=1, label="Epochs (main stage)")
            max_steps = gr.Number(0, precision=0, minimum=0, label="Max steps (main stage)",
                                  info="0 uses the epochs above.")
            batch_size = gr.Number(training.batch_size, precision=0, minimum=1, label="Batch size")
        with gr.Row():
            image_size = gr.Number(0, precision=0, minimum=0, label="Image size (px, longest side)",
                                   info="0 keeps the processor's default.")
            lora_rank = gr.Number(method.lora_rank, precision=0, minimum=1, label="LoRA rank")
            seed = gr.Number(training.seed, precision=0, minimum=0, label="Seed")
        fixed_instruction = gr.Textbox(method.fixed_instruction, label="Fixed instruction text",
                                       info="Used only when the user turn is 'Fixed text'.")
    return {"mode": mode, "instruction": instruction, "precision": precision, "learning_rate": learning_rate,
            "proxy_learning_rate": proxy_learning_rate, "warmup_learning_rate": warmup_learning_rate,
            "epochs": epochs, "max_steps": max_steps, "batch_size": batch_size, "image_size": image_size,
            "lora_rank": lora_rank, "seed": seed, "fixed_instruction": fixed_instruction}


def render_tune_tab(defaults) -> TuneTab:
    """Build the Tune tab; `defaults` is a RunConfig whose values fill the inputs."""
    dataset_info = gr.Markdown("No data chosen yet: choose data on the Data tab first.", elem_id="tune-dataset")
    with gr.Row():
        model_choice = gr.Dropdown(model_choices(), value=DEMO_CHOICE, label="Model", scale=3)
        local_folder = gr.Textbox("", label="Model folder", placeholder="/path/to/model (holds config.json)",
                                  visible=False, scale=2)
    model_note = gr.Markdown(size_warning(DEMO_CHOICE, has_gpu=False), elem_classes=["model-note"])

    settings = _method_inputs(defaults)
    settings.update(_advanced_inputs(defaults))

    with gr.Row():
        run_name = gr.Textbox("", label="Run name", placeholder="automatic (date, time and model)", scale=3)
        start_button = gr.Button("Start tuning", variant="primary", scale=1, elem_id="start-training")
        stop_button = gr.Button("Stop", variant="stop", scale=1, interactive=False, elem_id="stop-training")

    status = gr.Markdown("No run followed yet.", elem_id="training-status")
    progress = gr.HTML("", elem_id="training-progress")
    loss_plot = gr.LinePlot(
        empty_loss_frame(),
        x="step",
        y="loss",
        color="stage",
        color_map=STAGE_COLOURS,
        title="Training loss",
        x_title="Optimizer step",
        y_title="Loss",
        height=320,
        elem_id="loss-plot",
    )
    # A Markdown line rather than the plot's caption, which gradio 6.31 cuts off at the plot's height.
    gr.Markdown("Orange: warm-up (the proxy alone). Blue: main stage.", elem_classes=["model-note"])
    log_tail = gr.Textbox(label="Log (last lines)", lines=12, max_lines=12, autoscroll=True, interactive=False,
                          elem_id="training-log")
    timer = gr.Timer(POLL_SECONDS, active=False)

    return TuneTab(dataset_info=dataset_info, model_choice=model_choice, local_folder=local_folder,
                   model_note=model_note, settings=settings, run_name=run_name, start_button=start_button,
                   stop_button=stop_button, status=status, progress=progress, loss_plot=loss_plot,
                   log_tail=log_tail, timer=timer)
