"""One subpackage per tab: `layout.py` builds the components, `events.py` wires them."""
