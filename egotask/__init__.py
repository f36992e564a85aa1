"""egotask: lmms-eval plugins for egocentric video question answering."""

__version__ = "0.1.0"
