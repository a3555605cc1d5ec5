from app.tabs.tune.events import wire_tune_tab
from app.tabs.tune.layout import TuneTab, render_tune_tab


__all__ = ["TuneTab", "render_tune_tab", "wire_tune_tab"]
