"""behavior_lab: ablation framework for the BEHAVIOR-1K 2025 winning policy."""
__version__ = "0.1.0"
