// Drives an exported model's page in Debian's Chromium with playwright-core (from
// zoo/export/web/package.json; NODE_PATH points at its node_modules). Reads a job as
// JSON on stdin, prints the results as JSON on stdout:
//   {url, userDataDir, phone, screenshot, offline, translate: [{sentence, beam}],
//    generate: [{prefix, length, greedy}]}
// phone: a 412 x 915 viewport with touch, controls tapped. offline: after the first load
// the service worker is waited for, "offline?" is printed and a line awaited on stdin
// (the test stops its server then), the network is cut and the page reloaded. The
// result names every request made to another origin than the page's (foreign).
const { chromium } = require("playwright-core");
const readline = require("node:readline");

const lines = readline.createInterface({ input: process.stdin });
const nextLine = (() => {
  const queue = [];
  const waiting = [];
  lines.on("line", (line) => (waiting.length ? waiting.shift()(line) : queue.push(line)));
  return () =>
    queue.length ? Promise.resolve(queue.shift()) : new Promise((resolve) => waiting.push(resolve));
})();

async function finishRun(page, runs) {
  await page.waitForFunction((n) => Number(document.body.dataset.runs ?? 0) >= n, runs, {
    timeout: 120000,
  });
  return page.evaluate(() => ({
    output: document.getElementById("output").textContent,
    error: document.getElementById("error").textContent,
    note: document.getElementById("note").textContent,
    timing: document.getElementById("timing").textContent,
    updates: window.outputUpdates,
  }));
}

async function main() {
  const job = JSON.parse(await nextLine());
  const context = await chromium.launchPersistentContext(job.userDataDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: job.phone ? { width: 412, height: 915 } : { width: 1100, height: 800 },
    isMobile: Boolean(job.phone),
    hasTouch: Boolean(job.phone),
    serviceWorkers: "allow",
  });
  const messages = [];
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (message) => messages.push(`${message.type()}: ${message.text()}`));
    page.on("pageerror", (error) => messages.push(`pageerror: ${error.message}`));
    // every request that leaves the served folder's origin (the page should make none)
    const foreign = [];
    const origin = new URL(job.url).origin;
    let requests = 0;
    context.on("request", (request) => {
      requests += 1;
      if (new URL(request.url()).origin !== origin) foreign.push(request.url());
    });
    // counts the changes of the output box: a streamed continuation changes it token by token
    await page.addInitScript(() => {
      window.outputUpdates = 0;
      document.addEventListener("DOMContentLoaded", () => {
        new MutationObserver(() => window.outputUpdates++).observe(
          document.getElementById("output"),
          {
            childList: true,
            characterData: true,
            subtree: true,
          },
        );
      });
    });
    await page.goto(job.url);
    const ready = () =>
      page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state), null, {
        timeout: 120000,
      });
    await ready();
    const result = { offline: false };
    if (job.offline) {
      await page.evaluate(async () => {
        await navigator.serviceWorker.ready;
        while (!navigator.serviceWorker.controller)
          await new Promise((resolve) => setTimeout(resolve, 50));
      });
      process.stdout.write("offline?\n");
      await nextLine();
      await context.setOffline(true);
      await page.reload();
      await ready();
      result.offline = true;
    }
    result.state = await page.evaluate(() => document.body.dataset.state);
    result.about = await page.evaluate(() => document.getElementById("about").textContent);
    result.name = await page.evaluate(() => document.getElementById("name").textContent);
    const press = (selector) => (job.phone ? page.tap(selector) : page.click(selector));
    let runs = 0;
    result.translations = [];
    for (const { sentence, beam } of job.translate ?? []) {
      await page.fill("#sentence", "");
      await page.type("#sentence", sentence);
      await page.fill("#beam", String(beam));
      await press("#translate");
      result.translations.push(await finishRun(page, ++runs));
    }
    result.continuations = [];
    for (const { prefix, length, greedy } of job.generate ?? []) {
      await page.fill("#prefix", "");
      await page.type("#prefix", prefix);
      await page.fill("#length", String(length));
      await page.setChecked("#greedy", greedy);
      await page.evaluate(() => (window.outputUpdates = 0));
      await press("#generate");
      result.continuations.push(await finishRun(page, ++runs));
    }
    if (job.screenshot) await page.screenshot({ path: job.screenshot, fullPage: false });
    result.messages = messages;
    result.foreign = foreign;
    result.requests = requests;
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await context.close();
    lines.close();
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
