"""Instruction-free tuning: warm-up of the proxy, then the main stage with momentum."""

from engine.training.run import train


__all__ = ["train"]
