"""Haven: a private, on-device CBT self-help companion for the terminal."""

__version__ = "0.1.0"
