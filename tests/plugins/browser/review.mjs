// Log in through the simple auth manager and read the gate review pages in Debian's chromium.
// Usage: node review.mjs '{"base": "http://127.0.0.1:PORT", "username": "...", "password": "...",
//   "dagId": "...", "runId": "...", "screenshot": "/path.png", "runScreenshot": "/path.png",
//   "runPageScreenshot": "/path.png", "modelsScreenshot": "/path.png",
//   "userDataDir": "/empty/dir", "chromium": "/usr/bin/chromium"}'
// Prints one JSON object: what an anonymous visit got, and what the logged-in pages show.
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.argv[2]);
const FLAGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

async function gateRows(frame) {
  return frame.$$eval("section.run", (sections) => sections.flatMap((s) => {
    const dag = s.querySelector(".meta code")?.textContent ?? "";
    const run = s.querySelector("h2")?.textContent ?? "";
    return [...s.querySelectorAll("table:not(.findings) > tbody > tr")]
      .filter((tr) => tr.children.length === 8)
      .map((tr) => ({
        dag, run,
        task: tr.children[0].querySelector("code")?.textContent ?? "",
        gate: tr.children[1].textContent,
        verdict: tr.children[2].textContent,
        integrity: tr.children[3].textContent,
      }));
  }));
}

const context = await chromium.launchPersistentContext(cfg.userDataDir, {
  executablePath: cfg.chromium ?? "/usr/bin/chromium",
  headless: true,
  args: FLAGS,
  viewport: { width: 1400, height: 900 },
});
const dialogs = [];
context.on("page", (p) => p.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); }));
const page = context.pages()[0] ?? (await context.newPage());
page.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); });
const out = {};
try {
  const anonymous = await page.goto(`${cfg.base}/mlsecops/`);
  out.anonymousStatus = anonymous.status();
  await page.click("text=Log in");
  await page.fill("input[name=username]", cfg.username);
  await page.fill("input[name=password]", cfg.password);
  await page.click("button[type=submit]");
  await page.waitForURL(/\/mlsecops\/$/, { timeout: 30000 });
  await page.waitForSelector("section.run");
  out.title = await page.title();
  out.heading = await page.textContent("header h1");
  out.gates = await gateRows(page);
  out.scriptElements = await page.$$eval("script", (s) => s.length);
  await page.goto(`${cfg.base}/mlsecops/?dag_id=${encodeURIComponent(cfg.dagId)}`);
  await page.waitForSelector("section.run");
  await page.screenshot({ path: cfg.screenshot, fullPage: true });

  const runUrl = `${cfg.base}/dags/${encodeURIComponent(cfg.dagId)}/runs/`
    + `${encodeURIComponent(cfg.runId)}/plugin/mlsecops-run-gates`;
  await page.goto(runUrl);
  const frame = page.frameLocator("iframe");
  await frame.locator("section.run").first().waitFor({ timeout: 30000 });
  const handle = await page.waitForSelector("iframe");
  out.runTabGates = await gateRows(await handle.contentFrame());
  if (cfg.runScreenshot) await page.screenshot({ path: cfg.runScreenshot });

  // The run page itself: gates in DAG order, the decision, the pictures.
  await page.setViewportSize({ width: 1400, height: 2000 });
  await page.goto(`${cfg.base}/mlsecops/run?dag_id=${encodeURIComponent(cfg.dagId)}`
    + `&run_id=${encodeURIComponent(cfg.runId)}`);
  await page.waitForSelector("section.run");
  out.runPage = {
    pipeline: await page.$$eval("nav.pipeline > span > code", (c) => c.map((e) => e.textContent)),
    gates: (await gateRows(page)).map((g) => ({ task: g.task, gate: g.gate, verdict: g.verdict })),
    pictures: await page.$$eval("figure.chart svg", (s) => s.map((e) => e.getAttribute("aria-label"))),
    decision: (await (await page.$(".decision"))?.textContent())?.replace(/\s+/g, " ").trim() ?? "",
    scriptElements: await page.$$eval("script", (s) => s.length),
  };
  if (cfg.runPageScreenshot) await page.screenshot({ path: cfg.runPageScreenshot });

  // The model inventory.
  await page.goto(`${cfg.base}/mlsecops/models`);
  await page.waitForSelector("section.model");
  out.models = await page.$$eval("section.model", (sections) => sections.map((s) => ({
    name: s.querySelector("h2")?.textContent ?? "",
    aliases: [...s.querySelectorAll("table.aliases tbody tr")].map((tr) => ({
      alias: tr.children[0].textContent, version: tr.children[1].textContent,
      verified: tr.children[2].textContent, reason: tr.children[3].textContent,
    })),
  })));
  if (cfg.modelsScreenshot) {
    await page.setViewportSize({ width: 1400, height: 1100 });
    await page.screenshot({ path: cfg.modelsScreenshot });
  }
} catch (err) {
  out.error = String(err);
  out.url = page.url();
} finally {
  out.dialogs = dialogs;
  await context.close();
}
console.log(JSON.stringify(out));
