from app.tabs.compare.events import wire_compare_tab
from app.tabs.compare.layout import CompareTab, render_compare_tab


__all__ = ["CompareTab", "render_compare_tab", "wire_compare_tab"]
