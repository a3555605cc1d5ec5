"""Evaluation: multiple-choice questions, scoring, and base-versus-tuned comparison."""
