"""The mini-BEHAVIOR task definitions, one module per BEHAVIOR task (see ``registry``)."""
