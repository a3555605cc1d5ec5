from app.tabs.data.events import wire_data_tab
from app.tabs.data.layout import DataTab, render_data_tab


__all__ = ["DataTab", "render_data_tab", "wire_data_tab"]
