"""The proving ground: a synthetic experiment that tests whether instruction-free tuning helps."""
