from app.tabs.runs.events import wire_runs_tab
from app.tabs.runs.layout import RunsTab, render_runs_tab


__all__ = ["RunsTab", "render_runs_tab", "wire_runs_tab"]
