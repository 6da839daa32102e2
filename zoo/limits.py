"""Bounds on what a user can ask for, shared by the recipe checks and the CLI's options:
each is far above any sensible use and low enough that a typo fails at once instead of
running for hours."""

MAX_SEED = 2**32 - 1  # what NumPy and TensorFlow seeds take
MAX_BEAM_WIDTH = 100
MAX_GENERATE_LENGTH = 10_000  # tokens of `zoo generate`
