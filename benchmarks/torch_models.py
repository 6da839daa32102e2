"""The shipped recipes' models written in PyTorch the way a PyTorch user writes them:
``nn.Embedding``, ``nn.LSTM`` / ``nn.GRU``, ``F.cross_entropy``, ``torch.optim``, default
threads. The baseline of ``full_models.py`` and ``decoding.py``; PyTorch is installed by
hand and is never a zoo dependency. Only the processes that time PyTorch import this.

Where the PyTorch model cannot be zoo's exactly, ``differences`` says so, and the
benchmark prints it beside the figures.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

RNNS = {"lstm": nn.LSTM, "gru": nn.GRU}
OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}
# A masked key's score before the softmax, as in zoo's AdditiveAttention.
MASKED_SCORE = -1e6


class LanguageModel(nn.Module):
    """Embedding (or one-hot inputs), a stack of ``nn.LSTM`` / ``nn.GRU`` each followed
    by dropout, and a linear head: zoo's ``LanguageModel`` from the same recipe entries.

    Shapes: tokens [batch, time] → (logits [batch, time, vocab], states of every layer).
    """

    def __init__(self, vocab_size, layers, embedding_dim=0, dropout=0.0):
        super().__init__()
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim) if embedding_dim else None
        width = embedding_dim or vocab_size
        self.input_dropouts, self.rnns = nn.ModuleList(), nn.ModuleList()
        for spec in layers:
            self.input_dropouts.append(nn.Dropout(spec.get("dropout", 0.0)))
            self.rnns.append(RNNS[spec["name"]](width, spec["units"], batch_first=True))
            width = spec["units"]
        self.output_dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, vocab_size)

    def forward(self, tokens, states=None):
        if self.embedding is None:
            hidden = F.one_hot(tokens, self.vocab_size).float()
        else:
            hidden = self.embedding(tokens)
        states = states or [None] * len(self.rnns)
        new_states = []
        for input_dropout, rnn, state in zip(self.input_dropouts, self.rnns, states, strict=True):
            hidden, state = rnn(input_dropout(hidden), state)
            hidden = self.output_dropout(hidden)
            new_states.append(state)
        return self.head(hidden), new_states


class GenerationBackend:
    """A ``LanguageModel`` as a backend of ``zoo.decoding.generate_tokens``: one token per
    call, NumPy in and out, no autograd."""

    def __init__(self, model):
        self.model = model.eval()

    def initial_states(self, batch_size):
        return None  # nn.LSTM / nn.GRU start from zeros

    def step(self, tokens, states):
        with torch.inference_mode():
            logits, states = self.model(torch.from_numpy(tokens).long()[:, None], states)
        return logits[:, 0].numpy(), states


def detached(states):
    """Carried states cut from the graph (truncated backpropagation through time)."""
    return [
        tuple(part.detach() for part in state) if isinstance(state, tuple) else state.detach()
        for state in states
    ]


class AdditiveAttention(nn.Module):
    """w_vᵀ tanh(W_q q + W_k k), softmax over the unmasked keys, weighted sum of values."""

    def __init__(self, units, query_dim, key_dim):
        super().__init__()
        self.query_dense = nn.Linear(query_dim, units, bias=False)
        self.key_dense = nn.Linear(key_dim, units, bias=False)
        self.score_dense = nn.Linear(units, 1, bias=False)

    def forward(self, query, projected_keys, values, key_mask):
        """query [batch, query_dim], keys [batch, keys, units] → context [batch, value_dim]."""
        features = torch.tanh(self.query_dense(query)[:, None, :] + projected_keys)
        scores = self.score_dense(features).squeeze(-1).masked_fill(~key_mask, MASKED_SCORE)
        return torch.bmm(F.softmax(scores, dim=-1)[:, None, :], values)[:, 0]


class Translator(nn.Module):
    """seq2seq-attn: a GRU encoder (packed by length), a GRU decoder stepped in a Python
    loop with additive attention on the top state (the d2l PyTorch decoder), the deep
    output tanh([s_t; c_t] W_o + b_o) and the target embedding tied to the output layer.

    Shapes: (source [batch, src_time], lengths [batch], decoder_input [batch, time]) →
    o_t [batch, time, units]; ``output_weights`` scores them.
    """

    def __init__(self, src_vocab_size, tgt_vocab_size, spec):
        super().__init__()
        encoder, decoder = spec["encoder"], spec["decoder"]
        if not (
            encoder["layer"] == "gru"
            and decoder["cell"] == "gru_cell"
            and spec["attention"]["name"] == "additive_attention"
            and decoder["deep_output"]
            and decoder["tie_embeddings"]
        ):
            raise ValueError("only seq2seq-attn's model is written in PyTorch here")
        embedding_dim, units = spec["embedding_dim"], decoder["units"]
        self.embedding_dropout = nn.Dropout(spec["embedding_dropout"])
        self.source_embedding = nn.Embedding(src_vocab_size, embedding_dim)
        self.encoder = nn.GRU(
            embedding_dim,
            encoder["units"],
            num_layers=encoder["num_layers"],
            dropout=encoder["dropout"],
            batch_first=True,
        )
        self.target_embedding = nn.Embedding(tgt_vocab_size, embedding_dim)
        self.attention = AdditiveAttention(spec["attention"]["units"], units, encoder["units"])
        self.decoder = nn.GRU(
            embedding_dim + encoder["units"],
            units,
            num_layers=decoder["num_layers"],
            dropout=decoder["dropout"],
        )
        self.output_projection = nn.Linear(units + encoder["units"], units)
        self.output_dropout = nn.Dropout(decoder["dropout"])
        self.head_bias = nn.Parameter(torch.zeros(tgt_vocab_size))

    def forward(self, source, lengths, decoder_input):
        embedded = self.embedding_dropout(self.source_embedding(source))
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        memory, state = self.encoder(packed)
        memory, _ = pad_packed_sequence(memory, batch_first=True, total_length=source.shape[1])
        memory_mask = torch.arange(source.shape[1])[None, :] < lengths[:, None]
        keys = self.attention.key_dense(memory)
        targets = self.embedding_dropout(self.target_embedding(decoder_input))
        tops = []
        for step in range(decoder_input.shape[1]):
            context = self.attention(state[-1], keys, memory, memory_mask)
            step_input = torch.cat([targets[:, step], context], dim=-1)[None]
            top, state = self.decoder(step_input, state)
            tops.append(torch.cat([top[0], context], dim=-1))
        outputs = torch.tanh(self.output_projection(torch.stack(tops, dim=1)))
        return self.output_dropout(outputs)

    def output_weights(self):
        return self.target_embedding.weight, self.head_bias


def full_softmax_loss(hidden, targets, weights, biases):
    """Cross-entropy over the whole vocabulary; padding (id 0) ignored."""
    logits = hidden @ weights.T + biases
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=0)


def sampled_softmax_loss(hidden, targets, weights, biases, num_sampled):
    """Cross-entropy over the true word and ``num_sampled`` words drawn without
    replacement from TensorFlow's log-uniform (Zipf) distribution, each logit corrected by
    -log(expected count) and accidental hits of the true word masked, as
    ``tf.nn.sampled_softmax_loss``; the expected count is approximated by
    num_sampled · P(word). Padding (id 0) is left out."""
    keep = targets != 0
    hidden, labels = hidden[keep], targets[keep]
    vocab_size = weights.shape[0]
    ids = torch.arange(vocab_size, dtype=torch.float64)
    probabilities = (
        torch.log((ids + 2) / (ids + 1)) / torch.log(ids.new_tensor(vocab_size + 1))
    ).float()
    sampled = torch.multinomial(probabilities, num_sampled, replacement=False)
    log_counts = torch.log(num_sampled * probabilities)
    true_logits = (hidden * weights[labels]).sum(-1) + biases[labels] - log_counts[labels]
    sampled_logits = hidden @ weights[sampled].T + biases[sampled] - log_counts[sampled]
    sampled_logits = sampled_logits.masked_fill(labels[:, None] == sampled[None, :], -1e9)
    logits = torch.cat([true_logits[:, None], sampled_logits], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(labels), dtype=torch.long))


def training_step(model, loss, train: dict, steps_per_epoch: int):
    """One optimizer step of ``loss()`` with the recipe's ``train`` settings: its
    optimizer and learning rate (cosine schedule per batch, as zoo's), global-norm
    clipping, and an exponential moving average of the weights (``AveragedModel``, the
    PyTorch way; a fixed decay where zoo's warms up). Returns the step as a function
    that returns the loss as a float."""
    options = {"lr": train["learning_rate"]}
    if train["optimizer"] == "adamw":
        options["weight_decay"] = train["weight_decay"]
    optimizer = OPTIMIZERS[train["optimizer"]](model.parameters(), **options)
    scheduler = None
    if train["lr_schedule"] == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=train["epochs"] * steps_per_epoch, eta_min=train["min_learning_rate"]
        )
    averaged = None
    if train["weight_averaging"] is not None:
        averaged = torch.optim.swa_utils.AveragedModel(
            model,
            multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(train["weight_averaging"]),
        )
    model.train()

    def step():
        optimizer.zero_grad()
        value = loss()
        value.backward()
        if train["clip_norm"]:
            nn.utils.clip_grad_norm_(model.parameters(), train["clip_norm"])
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if averaged is not None:
            averaged.update_parameters(model)
        return value.item()

    return step


def differences(workload: dict) -> list[str]:
    """What the PyTorch model of ``workload`` does otherwise than zoo's, in words."""
    spec, notes = workload["model"], []
    if workload["task"] == "language_model":
        if any(layer.get("recurrent_dropout") for layer in spec["layers"]):
            notes.append("no recurrent dropout (nn.LSTM/nn.GRU have none)")
        if any(layer.get("dropout") for layer in spec["layers"]):
            notes.append("input dropout drawn per step (zoo: one mask per sequence)")
        if any(layer["name"] == "gru" for layer in spec["layers"]):
            notes.append("nn.GRU resets after the recurrent product (zoo: before)")
    else:
        notes.append("nn.GRU resets after the recurrent product (zoo: before)")
        if spec["sampled_softmax"]:
            notes.append("sampled softmax by torch.multinomial, expected counts n·P")
        else:
            notes.append("full softmax, as zoo with sampled_softmax=0")
    if workload["train"]["weight_averaging"] is not None:
        notes.append("AveragedModel EMA at a fixed decay (zoo's warms up)")
    return notes
