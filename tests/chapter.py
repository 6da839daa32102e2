"""What the issues require of the registry, shared by the tests that check it."""

# The layers the chapter's equations call for (issue 2's "done when").
CHAPTER_LAYERS = frozenset(
    {"rnn_cell", "gru_cell", "lstm_cell", "rnn", "gru", "lstm", "deep_rnn", "bidirectional"}
)
