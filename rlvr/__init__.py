"""rlvr: run and dissect 1-shot RLVR (GRPO on one math problem)."""

__version__ = "0.1.0"
__all__ = ["__version__"]
