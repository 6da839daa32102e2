"""Bounds on what a user can ask for, in a recipe or an option: each is far above any
sensible use and low enough that a typo fails at once instead of allocating or running
for hours. The recipe checks (``zoo.recipe``) and the CLI's options share them."""

MAX_SEED = 2**32 - 1  # what NumPy and TensorFlow seeds take
MAX_BEAM_WIDTH = 100
MAX_GENERATE_LENGTH = 10_000  # tokens of `zoo generate`
MAX_DECODE_LENGTH = 10_000  # tokens of one translation (decode.max_length)
# Beam search keeps beam_width × max_length tokens of history per sentence, for 256
# sentences at a time, and runs max_length steps of beam_width rows each: the width and
# the length may each be large, not both (100 × 1,000 is 100 MB of history).
MAX_BEAM_TOKENS = 100_000
MAX_LENGTH_PENALTY_ALPHA = 10.0  # α of (1/L^α) log P; 0 to 2 is the useful range
MAX_WORKERS = 64  # replicas of data-parallel training (train.replicas, --workers)
MAX_CHECKPOINT_MINUTES = 10_080.0  # --checkpoint-minutes: a week

# Model sizes. The shipped models use 64 to 768 units and 1 to 2 layers; an LSTM of
# 8,192 units already holds 270M weights (1 GB, 4 GB with Adam's moments).
MAX_UNITS = 8_192  # units, embedding sizes, hidden widths
MAX_LAYERS = 64  # stacked layers
MAX_VOCAB_SIZE = 1_000_000  # subword pieces learned, words sampled for the softmax

# Data. One batch holds batch_size × num_steps tokens (per side, for a translator), each
# with its activations kept for the backward pass: the shipped recipes use 1,024 to 4,096.
MAX_BATCH_SIZE = 16_384
MAX_BATCH_TOKENS = 1 << 18
MAX_NUM_STEPS = 10_000  # a language model's window
MAX_SENTENCE_TOKENS = 1_000  # a translator's num_steps: every pair is padded to it
MAX_MIN_FREQ = 1_000_000
MAX_SENTENCES = 100_000_000  # sentence pairs to evaluate on (evaluate.max_sentences)
# The sine series of the sequence-model section (1,000 points, τ = 4, horizons up to 64):
# k-step predictions hold points × (τ + k) values.
MAX_SERIES_POINTS = 100_000
MAX_LAGS = 1_000  # τ
MAX_HORIZON = 1_000  # k of a k-step-ahead prediction
MAX_NOISE_STD = 100.0  # the sine's amplitude is 1

# Training.
MAX_EPOCHS = 10_000
MAX_LEARNING_RATE = 1_000.0  # SGD on recurrent models goes up to about 30 (AWD-LSTM)
MAX_CLIP_NORM = 10_000.0  # θ; null turns clipping off
MAX_WEIGHT_DECAY = 1.0  # decoupled: each step takes learning_rate × weight_decay of a weight
MAX_CONNECT_TIMEOUT = 86_400.0  # seconds a worker waits for the others: a day
