"""Learning parity: the same word-level LSTM language model trained by zoo and by PyTorch
on the same token ids, the same batches and the same initial weights, with validation
perplexity after each epoch side by side.

    python3 benchmarks/learning_parity.py [--epochs 3] [--train-tokens 170000]
        [--init zoo|keras|torch] [--epsilon pytorch|keras] [--threads 1]

The corpus is a word-level text the project ships: the distinct English sentences of
fra-eng (``fra_eng_english``, in its fixed order), lower case, words and punctuation
split by the nltk tokenizer, one sentence a line, written as three files (train, then
validation, then test) of ``--train-tokens`` and ``--validation-tokens`` tokens. zoo reads
them as a user's corpus (``data.source: {train, validation, test}``, ``token_level:
word``, ``line_ends: eos``) and trains through its own path: a recipe resolved by
``zoo.recipe.validate``, the task's data and model, ``zoo.training.trainer.fit`` with the
recipe's optimizer and clipping, the sequential sampler with the state carried from batch
to batch. PyTorch (a baseline installed by hand, never a zoo dependency) then trains
``nn.Embedding`` → ``nn.LSTM`` (2 layers) → ``nn.Linear`` on exactly the batches zoo
drew, epoch by epoch, with its state carried the same way, ``F.cross_entropy``,
``clip_grad_norm_`` and ``torch.optim.Adam``.

Both start from the same weights: ``--init zoo`` (the default), those zoo's word-level
defaults drew (embedding N(0, 1), output layer U(±1/√fan_in): PyTorch's; the LSTM's
Keras' own, Glorot-uniform input kernels, orthogonal recurrent kernels, forget-gate bias
1); ``--init keras``, Keras' everywhere (embedding U(±0.05), Glorot-uniform output
layer); ``--init torch``, PyTorch's defaults everywhere (U(±1/√h) for the LSTM), copied
into zoo's model. ``--epsilon pytorch`` (the default): Adam's ε is PyTorch's 1e-8 in
both, added to √v̂ (zoo's ``train.epsilon``); ``--epsilon keras``: zoo's Keras Adam as it
comes (1e-7 added to √v, ``train.epsilon: null``), PyTorch's Adam with 1e-7.

Validation perplexity is measured the same way in both: zoo's validation windows
(``num_steps`` tokens each, from a zero state, every token once), as ``model.fit`` reports
``val_perplexity``. Seconds are each framework's training time for the epoch (validation
excluded) and mean nothing on a shared machine; perplexity per epoch does not depend on
the load.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import tempfile
import time
from pathlib import Path

NUM_LAYERS, UNITS, EMBEDDING_DIM = 2, 200, 200
BATCH_SIZE, NUM_STEPS = 20, 35
LEARNING_RATE, CLIP_NORM = 0.002, 1.0
# Adam's ε: PyTorch's default, added to √v̂ in both (zoo's train.epsilon); with
# --epsilon keras, zoo's Keras Adam as it comes (1e-7, added to √v) against PyTorch's
# Adam with 1e-7, the nearest it has
EPSILON = {"pytorch": 1e-8, "keras": 1e-7}
# --init keras: Keras' initializers for the embedding and output layer as well (zoo's
# word-level defaults are PyTorch's, zoo.tasks.language_modeling)
KERAS_INITIALIZERS = {"embedding_initializer": "uniform", "head_initializer": "glorot_uniform"}


def write_corpus(folder: Path, train_tokens: int, validation_tokens: int) -> dict:
    """fra-eng's English sentences as three word-level files of about the given sizes
    (whole lines; the test file is as long as the validation one) → ``data.source``."""
    from zoo.data.language_modeling import FRA_ENG_ENGLISH, load_pretraining_text
    from zoo.text.formats import LanguageModelText

    text = LanguageModelText("lower", "word", tokenizer="nltk", line_ends="eos")
    lines = load_pretraining_text(FRA_ENG_ENGLISH, text).splitlines()
    sizes = {"train": train_tokens, "validation": validation_tokens, "test": validation_tokens}
    files, position = {}, 0
    for split, size in sizes.items():
        taken, count = [], 0
        while count < size and position < len(lines):
            words = text.split(lines[position])
            taken.append(" ".join(words[:-1]))  # the line's words; its <eos> is the line end
            count += len(words)
            position += 1
        files[split] = str(folder / f"{split}.txt")
        Path(files[split]).write_text("\n".join(taken) + "\n", encoding="utf-8")
    return files


def parity_recipe(source: dict, epochs: int, seed: int, init: str, epsilon: str) -> dict:
    """The word-level recipe both frameworks follow, resolved as ``zoo run`` resolves it."""
    from zoo.recipe import validate

    return validate(
        {
            "name": "learning-parity",
            "task": "language_model",
            "seed": seed,
            "data": {
                "source": source,
                "preprocess": "none",
                "token_level": "word",
                "line_ends": "eos",
                "num_steps": NUM_STEPS,
                "batch_size": BATCH_SIZE,
                "sampler": "sequential",
            },
            "model": {
                "embedding_dim": EMBEDDING_DIM,
                "layers": [{"name": "lstm", "units": UNITS}] * NUM_LAYERS,
                **(KERAS_INITIALIZERS if init == "keras" else {}),
            },
            "train": {
                "optimizer": "adam",
                "learning_rate": LEARNING_RATE,
                "epochs": epochs,
                "clip_norm": CLIP_NORM,
                "epsilon": EPSILON["pytorch"] if epsilon == "pytorch" else None,
            },
            "export": {"formats": []},
        }
    )


# ------------------------------------------------------------------------------ weights


def zoo_weights(model) -> dict:
    """zoo's LanguageModel weights by role, as numpy arrays in Keras' layouts."""
    weights = {"embedding": model.embedding.embeddings.numpy()}
    for index, layer in enumerate(model.backbone):
        cell = layer.cell
        weights[f"kernel_{index}"] = cell.kernel.numpy()  # [features, 4 * units], i f c o
        weights[f"recurrent_{index}"] = cell.recurrent_kernel.numpy()  # [units, 4 * units]
        weights[f"bias_{index}"] = cell.bias.numpy()
    weights["head_kernel"] = model.head.kernel.numpy()  # [units, vocab]
    weights["head_bias"] = model.head.bias.numpy()
    return weights


def set_zoo_weights(model, weights: dict) -> None:
    model.embedding.embeddings.assign(weights["embedding"])
    for index, layer in enumerate(model.backbone):
        layer.cell.kernel.assign(weights[f"kernel_{index}"])
        layer.cell.recurrent_kernel.assign(weights[f"recurrent_{index}"])
        layer.cell.bias.assign(weights[f"bias_{index}"])
    model.head.kernel.assign(weights["head_kernel"])
    model.head.bias.assign(weights["head_bias"])


def torch_model(vocab_size: int):
    """The PyTorch language model, with PyTorch's own initial weights."""
    import torch
    from torch import nn

    class WordLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(vocab_size, EMBEDDING_DIM)
            self.lstm = nn.LSTM(EMBEDDING_DIM, UNITS, NUM_LAYERS, batch_first=True)
            self.head = nn.Linear(UNITS, vocab_size)

        def forward(self, tokens, state=None):
            hidden, state = self.lstm(self.embedding(tokens), state)
            return self.head(hidden), state

    torch.manual_seed(0)
    return WordLSTM()


def torch_weights(model) -> dict:
    """The PyTorch model's weights in zoo's layouts (the gate order i, f, g/c, o is the
    same; PyTorch's two LSTM biases add up to Keras' one)."""
    weights = {"embedding": model.embedding.weight.detach().numpy().copy()}
    for index in range(NUM_LAYERS):
        lstm = model.lstm
        weights[f"kernel_{index}"] = getattr(lstm, f"weight_ih_l{index}").detach().numpy().T.copy()
        weights[f"recurrent_{index}"] = (
            getattr(lstm, f"weight_hh_l{index}").detach().numpy().T.copy()
        )
        weights[f"bias_{index}"] = (
            (getattr(lstm, f"bias_ih_l{index}") + getattr(lstm, f"bias_hh_l{index}"))
            .detach()
            .numpy()
        )
    weights["head_kernel"] = model.head.weight.detach().numpy().T.copy()
    weights["head_bias"] = model.head.bias.detach().numpy().copy()
    return weights


def set_torch_weights(model, weights: dict) -> None:
    import torch

    with torch.no_grad():
        model.embedding.weight.copy_(torch.from_numpy(weights["embedding"]))
        for index in range(NUM_LAYERS):
            lstm = model.lstm
            getattr(lstm, f"weight_ih_l{index}").copy_(
                torch.from_numpy(weights[f"kernel_{index}"].T)
            )
            getattr(lstm, f"weight_hh_l{index}").copy_(
                torch.from_numpy(weights[f"recurrent_{index}"].T)
            )
            getattr(lstm, f"bias_ih_l{index}").copy_(torch.from_numpy(weights[f"bias_{index}"]))
            getattr(lstm, f"bias_hh_l{index}").zero_()
        model.head.weight.copy_(torch.from_numpy(weights["head_kernel"].T))
        model.head.bias.copy_(torch.from_numpy(weights["head_bias"]))


# --------------------------------------------------------------------------------- zoo


def train_zoo(recipe: dict, folder: Path, start_weights: dict | None) -> dict:
    """Trains the recipe with ``zoo.training.trainer.fit`` → the batches it drew (one
    list per epoch), its initial weights, validation perplexity and seconds per epoch,
    and the validation windows."""
    import keras
    import tensorflow as tf

    from zoo.tasks import get_task
    from zoo.training.run_directory import RunDirectory
    from zoo.training.trainer import fit

    drawn: list = []

    class EpochLog(keras.callbacks.Callback):
        """Each epoch's batches (recorded as the pipeline hands them out), training
        seconds and validation perplexity."""

        def __init__(self):
            super().__init__()
            self.epochs, self.seconds, self.perplexities = [], [], []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_test_begin(self, logs=None):
            if len(self.seconds) == len(self.epochs):
                self.seconds.append(time.perf_counter() - self.started)
                self.epochs.append(list(drawn))
                drawn.clear()

        def on_epoch_end(self, epoch, logs=None):
            self.perplexities.append(float(logs["val_perplexity"]))
            print(
                f"zoo epoch {epoch + 1}: val perplexity {self.perplexities[-1]:.2f}, "
                f"{self.seconds[-1]:.0f} s",
                file=sys.stderr,
            )

    log = EpochLog()
    initial = {}

    class ParityTask:
        """The recipe's task; its model starts from ``start_weights`` when given, and
        its training callbacks end with the epoch log."""

        def __init__(self, task):
            self.task = task

        def __getattr__(self, name):
            return getattr(self.task, name)

        def build_model(self, recipe, data):
            model = self.task.build_model(recipe, data)
            if start_weights is not None:
                set_zoo_weights(model, start_weights)
            initial.update(zoo_weights(model))
            return model

        def training_callbacks(self, model, recipe):
            return [*self.task.training_callbacks(model, recipe), log]

    def record(tokens, targets):
        drawn.append((tokens.copy(), targets.copy()))
        return tokens, targets

    def recorded(tokens, targets):
        tokens, targets = tf.numpy_function(record, [tokens, targets], [tf.int32, tf.int32])
        tokens.set_shape([BATCH_SIZE, NUM_STEPS])
        targets.set_shape([BATCH_SIZE, NUM_STEPS])
        return tokens, targets

    keras.utils.set_random_seed(recipe["seed"])
    task = get_task(recipe["task"])
    run = RunDirectory(folder / "run")
    for subfolder in (run.path, run.checkpoints, run.logs):
        subfolder.mkdir(exist_ok=True)
    data = task.prepare(recipe, run, recipe["seed"])
    data.train = data.train.map(recorded)
    with contextlib.redirect_stdout(sys.stderr):  # Keras' epoch lines; stdout is the table
        fit(ParityTask(task), recipe, data, run, resume=False)
    return {
        "batches": log.epochs,
        "initial": initial,
        "perplexity": log.perplexities,
        "seconds": log.seconds,
        "validation": [(x.numpy(), y.numpy()) for x, y in data.validation],
        "vocab_size": len(data.vocab),
        "train_tokens": data.num_tokens["train"],
    }


# ----------------------------------------------------------------------------- PyTorch


def train_torch(model, epochs_of_batches: list, validation: list, epsilon: float) -> dict:
    """Trains ``model`` on the given batches, epoch by epoch, with the state carried
    from batch to batch (reset at each epoch) → validation perplexity and seconds."""
    import torch
    import torch.nn.functional as F

    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, eps=epsilon)
    perplexities, seconds = [], []
    for epoch, batches in enumerate(epochs_of_batches):
        model.train()
        started, state = time.perf_counter(), None
        for tokens, targets in batches:
            logits, state = model(torch.from_numpy(tokens).long(), state)
            loss = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), torch.from_numpy(targets).long().reshape(-1)
            )
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
            optimizer.step()
            state = tuple(part.detach() for part in state)
        seconds.append(time.perf_counter() - started)
        model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for tokens, targets in validation:
                logits, _ = model(torch.from_numpy(tokens).long())
                total += F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]),
                    torch.from_numpy(targets).long().reshape(-1),
                    reduction="sum",
                ).item()
                count += targets.size
        perplexities.append(math.exp(total / count))
        print(
            f"torch epoch {epoch + 1}: val perplexity {perplexities[-1]:.2f}, {seconds[-1]:.0f} s",
            file=sys.stderr,
        )
    return {"perplexity": perplexities, "seconds": seconds}


# -------------------------------------------------------------------------------- main


def table(zoo: dict, torch_result: dict | None, train_tokens: int) -> str:
    rows = [
        "| epoch | zoo val ppl | PyTorch val ppl | zoo / PyTorch | zoo s | PyTorch s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for epoch, zoo_perplexity in enumerate(zoo["perplexity"]):
        torch_perplexity = torch_result["perplexity"][epoch] if torch_result else math.nan
        torch_seconds = torch_result["seconds"][epoch] if torch_result else math.nan
        rows.append(
            f"| {epoch + 1} | {zoo_perplexity:.1f} | {torch_perplexity:.1f} | "
            f"{zoo_perplexity / torch_perplexity:.3f} | {zoo['seconds'][epoch]:.0f} | "
            f"{torch_seconds:.0f} |"
        )
    rows.append(
        f"\n{train_tokens:,} training tokens, vocabulary {zoo['vocab_size']:,}; seconds are "
        "training only (not comparable on a shared machine)"
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-tokens", type=int, default=170_000)
    parser.add_argument("--validation-tokens", type=int, default=20_000)
    parser.add_argument("--init", choices=("zoo", "keras", "torch"), default="zoo")
    parser.add_argument("--epsilon", choices=("pytorch", "keras"), default="pytorch")
    parser.add_argument("--threads", type=int, default=1, help="each framework's threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import torch

    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        source = write_corpus(folder, args.train_tokens, args.validation_tokens)
        recipe = parity_recipe(source, args.epochs, args.seed, args.init, args.epsilon)
        from zoo.data.language_modeling import language_model_data_for

        vocab_size = len(language_model_data_for(recipe["data"], recipe["seed"]).vocab)
        pytorch = torch_model(vocab_size)
        start = torch_weights(pytorch) if args.init == "torch" else None
        zoo = train_zoo(recipe, folder, start)
    set_torch_weights(pytorch, zoo["initial"])
    torch_result = train_torch(pytorch, zoo["batches"], zoo["validation"], EPSILON[args.epsilon])
    print(
        f"initial weights: {args.init}'s; Adam's epsilon: {args.epsilon}'s; "
        f"{args.threads} thread(s) each"
    )
    print(table(zoo, torch_result, zoo["train_tokens"]))


if __name__ == "__main__":
    main()
