// Runs the page's contract.js in node on what tests/test_web.py sends on stdin, prints
// the answers as JSON:
//   {cleaning: [{steps, text: {token_level, whitespace}, samples}], prefixes: [{text,
//    vocabulary, samples}], search: {decoding, rows, cases: [{state, beam}]}}
// The search runs on a small decode_step made of arithmetic (fakeDecodeStep), the same
// one the test gives the Python client, with many ties.
import { readFileSync } from "node:fs";
import {
  applySteps,
  cutTokens,
  LanguageModel,
  Translator,
} from "../../zoo/export/web/page/contract.js";

const job = JSON.parse(readFileSync(0, "utf8"));
const VOCABULARY = 7;

/** log P of token v after `token` in state (s0, s1): -((3 v + 7 s0 + 5 token) mod 11) / 4,
 * exact in float32, so both languages compute the same numbers; the state moves on. */
function fakeDecodeStep(feeds) {
  const rows = feeds.token.data.length;
  const logProbs = new Float32Array(rows * VOCABULARY);
  const state = new Float32Array(rows * 2);
  for (let row = 0; row < rows; row++) {
    const token = feeds.token.data[row];
    const [s0, s1] = feeds.state_0.data.subarray(row * 2, row * 2 + 2);
    for (let v = 0; v < VOCABULARY; v++) {
      logProbs[row * VOCABULARY + v] = -((3 * v + 7 * s0 + 5 * token) % 11) / 4;
    }
    state[row * 2] = (s0 + token) % 13;
    state[row * 2 + 1] = s1 * 0.5 + 1;
  }
  return { log_probs: logProbs, state_0: state };
}

const cleaning = job.cleaning.map(({ steps, text, samples }) =>
  samples.map((sample) => {
    const cleaned = applySteps(steps, sample);
    return [cleaned, cutTokens(cleaned, text)];
  }),
);

// a language model's prefix ids (null: refused), lines and <eos> included
const prefixes = job.prefixes.map(({ text, vocabulary, samples }) => {
  const manifest = { text, decoding: {}, vocab: { unk_id: 0 }, signatures: { step: {} } };
  const model = new LanguageModel(manifest, vocabulary, null);
  return samples.map((sample) => {
    try {
      return model.prefixIds(sample).ids;
    } catch {
      return null;
    }
  });
});

const { decoding, rows, cases } = job.search;
const special = { "<pad>": 0, "<bos>": 1, "<eos>": 2, "<unk>": 3 };
const manifest = {
  text: { cleaning_steps: [], token_level: "word", whitespace: " " },
  decoding,
  source_vocab: { special_ids: special },
  target_vocab: { special_ids: special },
  signatures: {
    encode: { outputs: [{ name: "state_0", shape: [1, 2] }] },
    decode_step: {
      inputs: [
        { name: "token", shape: [rows] },
        { name: "state_0", shape: [rows, 2] },
      ],
    },
  },
};
const vocabulary = "<pad>\n<bos>\n<eos>\n<unk>\na\nb\nc\n";
const translator = new Translator(manifest, vocabulary, vocabulary, async (signature, feeds) =>
  fakeDecodeStep(feeds),
);
const searches = [];
for (const { state, beam } of cases) {
  searches.push(await translator.search({ state_0: Float32Array.from(state) }, beam));
}
process.stdout.write(JSON.stringify({ cleaning, prefixes, searches }));
