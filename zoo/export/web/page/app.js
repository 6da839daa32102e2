// The page of one exported model: reads export.json, loads the float TFLite file into
// LiteRT.js (its WebAssembly CPU backend, bundled under litert/), and runs the language
// model or the translator as contract.js says. document.body.dataset.state tells a
// reader (and the browser tests) where it is: loading, ready, running, error; and
// dataset.runs how many runs have ended.

import { loadAndCompile, loadLiteRt, Tensor } from "./litert/core.js";
import { InputError, LanguageModel, Translator } from "./contract.js";

const $ = (id) => document.getElementById(id);

function setState(state) {
  document.body.dataset.state = state;
}

function showError(error) {
  $("error").textContent =
    error instanceof InputError ? error.message : `error: ${error.message ?? error}`;
}

async function text(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: ${response.status} ${response.statusText}`);
  return response.text();
}

/** run(signature, feeds) of contract.js on a compiled model: every tensor bound by name
 * (tensor_binding), every output copied out of WebAssembly memory and freed. */
function runner(model) {
  return async (signature, feeds) => {
    const inputs = {};
    for (const [name, { data, shape }] of Object.entries(feeds))
      inputs[name] = new Tensor(data, shape);
    try {
      const outputs = await model.run(signature, inputs);
      const values = {};
      for (const [name, tensor] of Object.entries(outputs)) {
        values[name] = tensor.toTypedArray().slice();
        tensor.delete();
      }
      return values;
    } finally {
      for (const tensor of Object.values(inputs)) tensor.delete();
    }
  };
}

function describe(manifest) {
  const web = manifest.web;
  const megabytes = (web.size / 1e6).toFixed(1);
  const number = (value) => (Number.isInteger(value) ? value : value.toFixed(3));
  const metrics = Object.entries(web.model.metrics)
    .map(([label, value]) => `${label} ${number(value)}`)
    .join(", ");
  $("name").textContent = web.model.name;
  document.title = `${web.model.name} · zoo`;
  $("about").textContent = [
    `${manifest.task.replace("_", " ")} (recipe ${manifest.recipe})`,
    `${web.tflite}, ${megabytes} MB`,
    metrics,
  ]
    .filter(Boolean)
    .join(" · ");
}

function milliseconds(seconds) {
  return `${(seconds * 1000).toFixed(1)} ms`;
}

function languageModelPage(model) {
  const form = $("language-model");
  form.hidden = false;
  $("length").value = model.decoding.length;
  $("temperature").value = model.decoding.temperature;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await busy($("generate"), async () => {
      const length = Number($("length").value);
      const temperature = Number($("temperature").value);
      if (!(Number.isInteger(length) && length >= 1 && length <= 10000)) {
        throw new InputError(`length: 1 to 10000, got ${$("length").value}`);
      }
      if (!(temperature > 0 && Number.isFinite(temperature))) {
        throw new InputError(`temperature: a finite number above 0, got ${$("temperature").value}`);
      }
      const { unseen } = model.prefixIds($("prefix").value);
      if (unseen.length > 0) {
        const named = unseen.map((token) => `'${token}'`).join(", ");
        $("note").textContent = `the model never saw ${named} in the prefix; read as <unk>`;
      }
      const stream = model.generate($("prefix").value, length, {
        greedy: $("greedy").checked,
        temperature,
      });
      let generated = -1; // the first piece is the cleaned prefix
      let start = performance.now();
      for await (const piece of stream) {
        if (generated === -1) start = performance.now(); // the prefix's steps are not timed
        $("output").textContent += piece;
        generated += 1;
        if (generated > 0) {
          const seconds = (performance.now() - start) / 1000;
          $("timing").textContent =
            `${generated} tokens, ${milliseconds(seconds / generated)} per token`;
        }
      }
    });
  });
}

function translatorPage(model) {
  const form = $("translator");
  form.hidden = false;
  $("beam").max = model.rows;
  $("beam").value = model.decoding.beam_width;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await busy($("translate"), async () => {
      const beam = Number($("beam").value);
      if (!Number.isInteger(beam))
        throw new InputError(`beam width: a whole number, got ${$("beam").value}`);
      const start = performance.now();
      $("output").textContent = await model.translate($("sentence").value, beam);
      const seconds = (performance.now() - start) / 1000;
      $("timing").textContent = `${milliseconds(seconds)} per sentence (beam ${beam})`;
    });
  });
}

async function busy(button, work) {
  button.disabled = true;
  setState("running");
  $("output").textContent = "";
  $("timing").textContent = "";
  $("error").textContent = "";
  $("note").textContent = "";
  try {
    await work();
    setState("ready");
  } catch (error) {
    showError(error);
    setState(error instanceof InputError ? "ready" : "error");
  } finally {
    button.disabled = false;
    document.body.dataset.runs = Number(document.body.dataset.runs ?? 0) + 1;
  }
}

async function main() {
  if ("serviceWorker" in navigator) {
    // offline after the first visit; a page opened from file:// has none, and runs anyway
    navigator.serviceWorker.register("sw.js").catch(() => {});
  }
  const manifest = JSON.parse(await text("export.json"));
  describe(manifest);
  await loadLiteRt(manifest.web.runtime.wasm);
  const compiled = await loadAndCompile(manifest.web.tflite, { accelerator: "wasm" });
  const run = runner(compiled);
  if (manifest.task === "language_model") {
    languageModelPage(new LanguageModel(manifest, await text(manifest.vocab.file), run));
  } else if (manifest.task === "translator") {
    const [source, target] = await Promise.all([
      text(manifest.source_vocab.file),
      text(manifest.target_vocab.file),
    ]);
    translatorPage(new Translator(manifest, source, target, run));
  } else {
    throw new Error(`this page runs language models and translators, not ${manifest.task}`);
  }
  setState("ready");
}

main().catch((error) => {
  showError(error);
  setState("error");
});
