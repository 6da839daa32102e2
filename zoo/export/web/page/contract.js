// What export.json (format zoo-export 3) states, in JavaScript: the vocabularies, the
// cleaning, the tokens, a language model's generation and a translator's beam search.
// Every function follows a field of export.json, as tests/clients/translate_client.py
// does in Python; the runtime is passed in as run(signature, feeds), so this module runs
// in a browser and in node alike (tests/web/contract_check.mjs).

/** The tokens by id: UTF-8, one a line, each line ended by "\n", never stripped. */
export function readVocabulary(text) {
  return text.slice(0, -1).split("\n"); // the last line ends with "\n" too
}

/** text.cleaning_steps (or join_steps) in order, each pattern's JavaScript form. */
export function applySteps(steps, text) {
  for (const step of steps) {
    if ("replace" in step) {
      const pattern = typeof step.replace === "string" ? step.replace : step.replace.javascript;
      // "with" is plain text: a function keeps "$1" or "$&" from being read as a group
      text = text.replace(new RegExp(pattern, "gu"), () => step.with);
    } else if (step.lowercase) {
      text = text.toLowerCase();
    } else if (step.trim) {
      text = text.replace(/^ +| +$/g, ""); // spaces (U+0020) only, not String.trim's set
    }
  }
  return text;
}

/** text.tokens: code points of a character model, else the pieces between runs of
 * text.whitespace (Python's whitespace: JavaScript's \s is another set). */
export function cutTokens(text, spec) {
  if (spec.token_level === "char") return Array.from(text);
  return text.split(new RegExp(`${spec.whitespace}+`, "u")).filter((piece) => piece !== "");
}

/** The error the CLI gives for input with no tokens, as one line. */
export class InputError extends Error {}

/** The ids of the `width` highest values, higher first, ties to the lower id. */
export function bestIds(values, width) {
  const best = []; // ids, kept sorted: higher value first, then lower id
  for (let id = 0; id < values.length; id++) {
    const value = values[id];
    if (best.length === width && !(value > values[best[width - 1]])) continue;
    let at = best.length === width ? width - 1 : best.length;
    while (at > 0 && value > values[best[at - 1]]) at--;
    best.splice(at, 0, id);
    if (best.length > width) best.pop();
  }
  return best;
}

function descending(a, b) {
  return a > b ? -1 : a < b ? 1 : 0; // -Infinity - -Infinity is NaN: no subtraction
}

/** A language model of an export: generate(prefix, length, options) yields the text
 * to show, token by token: first the cleaned prefix, then each token's text. */
export class LanguageModel {
  constructor(manifest, vocabularyText, run) {
    this.manifest = manifest;
    this.text = manifest.text;
    this.decoding = manifest.decoding;
    this.tokens = readVocabulary(vocabularyText);
    this.ids = new Map(this.tokens.map((token, id) => [token, id]));
    this.unknown = manifest.vocab.unk_id;
    this.step = manifest.signatures.step;
    this.run = run;
  }

  /** The cleaned prefix, its ids and the tokens the model never saw (read as unk_id,
   * named as zoo generate names them); a prefix that cleaning leaves blank is refused. */
  prefixIds(prefix) {
    let cleaned = applySteps(this.text.cleaning_steps, prefix);
    if (this.text.token_level === "char" && this.text.line_ends === "space") {
      cleaned = cleaned.replaceAll("\n", " "); // text.tokens: a line end is read as " "
    }
    const tokens =
      this.text.line_ends === "eos" ? this.lineTokens(cleaned) : cutTokens(cleaned, this.text);
    if (tokens.length === 0 || cleaned.trim() === "") {
      throw new InputError(`nothing left of '${prefix}' after cleaning`);
    }
    const unseen = [...new Set(tokens.filter((token) => !this.ids.has(token)))].sort();
    return { cleaned, ids: tokens.map((token) => this.ids.get(token) ?? this.unknown), unseen };
  }

  /** text.tokens with line_ends eos: each line's tokens, then <eos>; a prefix's last
   * line gets no <eos> unless the prefix ends with a line end. */
  lineTokens(cleaned) {
    const lines = cleaned.split("\n");
    const endsWithLineEnd = lines.length > 1 && lines[lines.length - 1] === "";
    if (endsWithLineEnd) lines.pop();
    return lines.flatMap((line, number) => {
      const last = number === lines.length - 1;
      return [...cutTokens(line, this.text), ...(last && !endsWithLineEnd ? [] : ["<eos>"])];
    });
  }

  /** decoding.steps: states from zeros, the prefix fed one id at a time, then `length`
   * tokens, each fed back; greedy is the argmax (ties to the lower id). */
  async *generate(
    prefix,
    length,
    { greedy = false, temperature = 1.0, random = Math.random } = {},
  ) {
    const { cleaned, ids } = this.prefixIds(prefix);
    yield cleaned;
    let states = Object.fromEntries(
      this.step.states.map((state) => [state.name, new Float32Array(size(state.shape))]),
    );
    let logits = null;
    const feed = async (id) => {
      const feeds = { tokens: { data: Int32Array.of(id), shape: [1] } };
      for (const state of this.step.states) {
        feeds[state.name] = { data: states[state.name], shape: state.shape };
      }
      const outputs = await this.run("step", feeds);
      logits = outputs.logits;
      states = Object.fromEntries(
        this.step.states.map((state) => [state.name, outputs[state.name]]),
      );
    };
    for (const id of ids) await feed(id);
    let previous = cleaned;
    for (let generated = 0; generated < length; generated++) {
      const id = greedy ? argmax(logits) : sample(logits, temperature, random);
      const piece = this.piece(this.tokens[id], previous);
      previous = piece;
      yield piece;
      await feed(id);
    }
  }

  /** decoding.output: tokens joined by text.join, <eos> a line end with no space
   * beside it; with words, one space before a token unless a line end is beside it. */
  piece(token, previous) {
    if (token === "<eos>") return "\n";
    if (this.text.join === "" || previous.endsWith(" ") || previous.endsWith("\n")) return token;
    return this.text.join + token;
  }
}

function size(shape) {
  return shape.reduce((product, dimension) => product * dimension, 1);
}

function argmax(values) {
  let best = 0;
  for (let id = 1; id < values.length; id++) if (values[id] > values[best]) best = id;
  return best;
}

function sample(logits, temperature, random) {
  const scaled = Array.from(logits, (value) => value / temperature); // float64
  const top = Math.max(...scaled);
  const weights = scaled.map((value) => Math.exp(value - top));
  let draw = random() * weights.reduce((sum, weight) => sum + weight, 0);
  for (let id = 0; id < weights.length; id++) {
    draw -= weights[id];
    if (draw < 0) return id;
  }
  return weights.length - 1;
}

/** A translator of an export: translate(sentence, beamWidth) as `zoo translate`. */
export class Translator {
  constructor(manifest, sourceText, targetText, run) {
    this.text = manifest.text;
    this.decoding = manifest.decoding;
    this.sourceIds = new Map(readVocabulary(sourceText).map((token, id) => [token, id]));
    this.targetTokens = readVocabulary(targetText);
    this.sourceSpecial = manifest.source_vocab.special_ids;
    this.targetSpecial = manifest.target_vocab.special_ids;
    const inputs = manifest.signatures.decode_step.inputs;
    this.carried = inputs.filter((tensor) => tensor.name !== "token");
    // numbers in one row of each carried tensor: its shape after the rows
    this.rowSize = Object.fromEntries(
      this.carried.map((tensor) => [tensor.name, size(tensor.shape.slice(1))]),
    );
    this.rows = this.decoding.decode_step_rows;
    this.encodeOutputs = manifest.signatures.encode.outputs;
    this.run = run;
  }

  /** encode's inputs by name: the cleaned sentence's first num_steps - 1 tokens' ids
   * (unknown: <unk>), <eos>, <pad> up to num_steps; valid_len. */
  source(sentence) {
    const cleaned = applySteps(this.text.cleaning_steps, sentence);
    const words = cutTokens(cleaned, this.text);
    if (words.length === 0) throw new InputError("empty sentence");
    const numSteps = this.decoding.num_steps;
    const special = this.sourceSpecial;
    const ids = words
      .slice(0, numSteps - 1)
      .map((word) => this.sourceIds.get(word) ?? special["<unk>"]);
    ids.push(special["<eos>"]);
    const validLen = ids.length;
    while (ids.length < numSteps) ids.push(special["<pad>"]);
    return {
      source: { data: Int32Array.from(ids), shape: [1, numSteps] },
      valid_len: { data: Int32Array.of(validLen), shape: [1] },
    };
  }

  /** decode_step on k rows (decoding.rows): padded to its fixed rows with copies of
   * row 0, every output cut back to the first k rows. */
  async step(tokens, carried) {
    const k = tokens.length;
    const rowOrder = Array.from({ length: this.rows }, (_, row) => (row < k ? row : 0));
    const feeds = {
      token: { data: Int32Array.from(rowOrder, (row) => tokens[row]), shape: [this.rows] },
    };
    for (const tensor of this.carried) {
      const rows = gatherRows(carried[tensor.name], rowOrder, this.rowSize[tensor.name]);
      feeds[tensor.name] = { data: rows, shape: tensor.shape };
    }
    const outputs = await this.run("decode_step", feeds);
    const kept = {};
    for (const [name, value] of Object.entries(outputs)) {
      kept[name] = value.slice(0, (value.length / this.rows) * k);
    }
    return kept;
  }

  /** decoding.beam_search, step by step; greedy is k = 1. */
  async search(encoded, k) {
    const alpha = this.decoding.length_penalty_alpha;
    const maxLength = this.decoding.max_length;
    const bos = this.targetSpecial["<bos>"];
    const eos = this.targetSpecial["<eos>"];
    let carried = {};
    for (const tensor of this.carried) {
      const firstRow = encoded[tensor.name];
      carried[tensor.name] = gatherRows(firstRow, new Array(k).fill(0), firstRow.length);
    }
    let tokens = new Array(k).fill(bos);
    let logP = Array.from({ length: k }, (_, row) => (row === 0 ? 0 : -Infinity));
    let finished = new Array(k).fill(false);
    let histories = Array.from({ length: k }, () => []);
    let bestScore = -Infinity;
    let best = [];
    const offer = (rows, length) => {
      let top = null;
      for (const row of rows) {
        const score = logP[row] / length ** alpha;
        if (top === null || score > top.score) top = { row, score }; // ties to the lower row
      }
      if (top !== null && top.score > bestScore) {
        bestScore = top.score;
        best = histories[top.row];
      }
    };
    let alive = [];
    for (let t = 1; t <= maxLength; t++) {
      const outputs = await this.step(tokens, carried);
      const vocabulary = outputs.log_probs.length / k;
      for (const [name, value] of Object.entries(outputs))
        if (name !== "log_probs") carried[name] = value;
      const width = Math.min(k, vocabulary);
      const candidates = []; // row order, each row's best first
      for (let row = 0; row < k; row++) {
        const values = Float64Array.from(
          outputs.log_probs.subarray(row * vocabulary, (row + 1) * vocabulary),
        );
        for (const id of this.decoding.never_emit) values[id] = -Infinity;
        if (finished[row]) {
          values.fill(-Infinity);
          values[eos] = 0;
        }
        for (const id of bestIds(values, width)) {
          candidates.push({ parent: row, id, score: logP[row] + values[id] });
        }
      }
      // Array.sort is stable: ties go to the earlier candidate
      const chosen = candidates.sort((a, b) => descending(a.score, b.score)).slice(0, k);
      const wasFinished = chosen.map((candidate) => finished[candidate.parent]);
      tokens = chosen.map((candidate) => candidate.id);
      logP = chosen.map((candidate) => candidate.score);
      finished = chosen.map((candidate, row) => wasFinished[row] || candidate.id === eos);
      histories = chosen.map((candidate) => [...histories[candidate.parent], candidate.id]);
      const parents = chosen.map((candidate) => candidate.parent);
      carried = Object.fromEntries(
        Object.entries(carried).map(([name, value]) => [
          name,
          gatherRows(value, parents, this.rowSize[name]),
        ]),
      );
      const newly = [];
      alive = [];
      for (let row = 0; row < k; row++) {
        if (!Number.isFinite(logP[row])) continue;
        if (finished[row] && !wasFinished[row]) newly.push(row);
        if (!finished[row]) alive.push(row);
      }
      offer(newly, t);
      if (alive.length === 0) return best;
    }
    offer(alive, maxLength);
    return best;
  }

  /** decoding.output: tokens without <eos>, <pad>, <bos>, joined by one space. */
  output(ids) {
    const dropped = new Set(["<eos>", "<pad>", "<bos>"].map((token) => this.targetSpecial[token]));
    const words = ids.filter((id) => !dropped.has(id)).map((id) => this.targetTokens[id]);
    return applySteps(this.text.join_steps ?? [], words.join(" "));
  }

  async translate(sentence, beamWidth) {
    const k = beamWidth ?? this.decoding.beam_width;
    if (!(k >= 1 && k <= this.rows)) {
      throw new InputError(
        `this export's decode_step takes at most ${this.rows} rows (its beam width); ${k} asked`,
      );
    }
    const encoded = await this.run("encode", this.source(sentence));
    return this.output(await this.search(encoded, k));
  }
}

/** The rows `order` of `values`, a flat Float32Array of rows of `rowSize` numbers. */
function gatherRows(values, order, rowSize) {
  const gathered = new Float32Array(order.length * rowSize);
  order.forEach((row, at) => {
    gathered.set(values.subarray(row * rowSize, (row + 1) * rowSize), at * rowSize);
  });
  return gathered;
}
