// Opens an HTML report in a real browser, Debian's chromium, headless, driven over the DevTools
// protocol (chrome-remote-interface), and checks what issue 17 asks of a report:
//   - the page renders: a full-page screenshot that is not blank (many colours, enough ink);
//   - the console shows no errors (console.error, uncaught exceptions, browser log errors);
//   - the page makes no network requests (every request other than the file itself fails it);
//   - hovering a chart shows its tooltip (the inline script works).
// Usage: node browser-check.mjs REPORT.html SCREENSHOT.png [WIDTH] [MIN_CHARTS]
// (MIN_CHARTS: the least number of SVG charts the page must hold, default 4 as hcat's report
// has; with 0, a page without charts skips the hover check.)
// Prints one summary line; exit 1 with the reason otherwise. Chromium runs in its own process
// group, with its own profile directory, and is killed on every path; every wait is bounded.
import CDP from "chrome-remote-interface";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { inflateSync } from "node:zlib";

const [reportPath, screenshotPath, widthArg] = process.argv.slice(2);
const width = Number(widthArg ?? 1000);
const minCharts = Number(process.argv[5] ?? 4);
const pageUrl = pathToFileURL(resolve(reportPath)).href;
const profile = mkdtempSync(join(tmpdir(), "hkit-chromium-"));
let chromium;

function cleanup() {
  if (chromium && chromium.exitCode === null) {
    try {
      process.kill(-chromium.pid, "SIGKILL");
    } catch {}
  }
  rmSync(profile, { recursive: true, force: true });
}

function fail(what) {
  console.error(`browser-check: ${what}`);
  cleanup();
  process.exit(1);
}

function within(ms, promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

// Starts chromium; resolves with the DevTools port it printed on stderr.
function startChromium() {
  chromium = spawn(
    process.env.HKIT_CHROMIUM ?? "chromium",
    [
      "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
      "--disable-extensions", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--metrics-recording-only", "--hide-scrollbars",
      `--user-data-dir=${profile}`, "--remote-debugging-port=0", "about:blank",
    ],
    // its singleton socket goes to $TMPDIR: inside the profile, so the cleanup removes it too
    { detached: true, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, TMPDIR: profile } },
  );
  return new Promise((resolvePort, reject) => {
    let seen = "";
    chromium.on("error", (e) => reject(new Error(`cannot start chromium: ${e.message}`)));
    chromium.on("exit", (code) => reject(new Error(`chromium exited (${code}) before listening: ${seen.slice(-500)}`)));
    chromium.stderr.on("data", (chunk) => {
      seen += chunk;
      const m = /DevTools listening on ws:\/\/[^:]+:(\d+)\//.exec(seen);
      if (m) resolvePort(Number(m[1]));
      if (seen.length > 1 << 20) seen = seen.slice(-4096); // bounded
    });
  });
}

// A PNG's pixels (8-bit RGB or RGBA, not interlaced, as chromium writes them).
function decodePng(png) {
  let pos = 8, width = 0, height = 0, channels = 0;
  const idat = [];
  while (pos < png.length) {
    const len = png.readUInt32BE(pos), type = png.toString("latin1", pos + 4, pos + 8);
    const data = png.subarray(pos + 8, pos + 8 + len);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[12] !== 0) fail("unexpected PNG layout");
      channels = { 2: 3, 6: 4 }[data[9]];
      if (!channels) fail(`unexpected PNG colour type ${data[9]}`);
    } else if (type === "IDAT") idat.push(data);
    pos += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels, out = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x];
      const a = x >= channels ? out[y * stride + x - channels] : 0;
      const b = y ? out[(y - 1) * stride + x] : 0;
      const c = x >= channels && y ? out[(y - 1) * stride + x - channels] : 0;
      let p;
      if (filter === 0) p = 0;
      else if (filter === 1) p = a;
      else if (filter === 2) p = b;
      else if (filter === 3) p = (a + b) >> 1;
      else {
        const q = a + b - c, pa = Math.abs(q - a), pb = Math.abs(q - b), pc = Math.abs(q - c);
        p = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[y * stride + x] = (v + p) & 255;
    }
  }
  return { width, height, channels, pixels: out };
}

const problems = [];
const requests = [];
let client;
try {
  const port = await within(30000, startChromium(), "chromium to listen");
  client = await within(10000, CDP({ port }), "DevTools connection");
  const { Page, Runtime, Network, Log, Emulation, Input } = client;
  Runtime.consoleAPICalled(({ type, args }) => {
    if (type === "error" || type === "assert")
      problems.push(`console.${type}: ${args.map((a) => a.value ?? a.description).join(" ")}`);
  });
  Runtime.exceptionThrown(({ exceptionDetails }) =>
    problems.push(`exception: ${exceptionDetails.exception?.description ?? exceptionDetails.text}`));
  Log.entryAdded(({ entry }) => {
    if (entry.level === "error") problems.push(`log: ${entry.text} ${entry.url ?? ""}`);
  });
  Network.requestWillBeSent(({ request }) => {
    if (request.url !== pageUrl) requests.push(request.url);
  });
  await Promise.all([Page.enable(), Runtime.enable(), Network.enable(), Log.enable()]);
  await Emulation.setDeviceMetricsOverride({ width, height: 800, deviceScaleFactor: 1, mobile: false });
  const loaded = Page.loadEventFired();
  const nav = await Page.navigate({ url: pageUrl });
  if (nav.errorText) fail(`navigation failed: ${nav.errorText}`);
  await within(30000, loaded, "the page to load");

  const facts = (
    await Runtime.evaluate({
      expression: `JSON.stringify({title: document.title, svgs: document.querySelectorAll('svg').length,
        height: document.documentElement.scrollHeight, tips: document.querySelectorAll('[data-tip]').length,
        external: [...document.querySelectorAll('[src],[href],link,iframe,object,embed')].map(e => e.src || e.href || e.tagName)})`,
      returnByValue: true,
    })
  ).result.value;
  const f = JSON.parse(facts);
  if (!/^hkit report/.test(f.title)) fail(`unexpected title '${f.title}'`);
  if (f.svgs < minCharts) fail(`expected at least ${minCharts} charts, found ${f.svgs}`);
  if (f.external.length) fail(`the page refers to other resources: ${f.external.join(", ")}`);

  // hover the middle of the first chart: the tooltip must show
  if (f.svgs > 0) await hoverFirstChart();

  async function hoverFirstChart() {
  const box = (
    await Runtime.evaluate({
      expression: `(() => { const r = document.querySelector('rect.hit').ownerSVGElement.getBoundingClientRect();
        return JSON.stringify({x: r.left + r.width / 2, y: r.top + 100 + window.scrollY}); })()`,
      returnByValue: true,
    })
  ).result.value;
  const { x, y } = JSON.parse(box);
  // the browser clamps the scroll near the end of a short page: aim from where it really is
  const scrolled = (
    await Runtime.evaluate({
      expression: `(() => { window.scrollTo(0, ${Math.max(0, y - 300)}); return window.scrollY; })()`,
      returnByValue: true,
    })
  ).result.value;
  await Input.dispatchMouseEvent({ type: "mouseMoved", x, y: y - scrolled });
  const tip = (
    await Runtime.evaluate({
      expression: `(() => { const t = document.getElementById('tip'); return t.style.display + '|' + t.textContent; })()`,
      returnByValue: true,
    })
  ).result.value;
  if (!tip.startsWith("block|") || tip.length < 10) fail(`hovering a chart shows no tooltip (${tip})`);
  await Runtime.evaluate({ expression: "window.scrollTo(0, 0)" });
  await Input.dispatchMouseEvent({ type: "mouseMoved", x: 0, y: 0 });
  }

  // the whole page as one screenshot
  const height = Math.min(f.height, 16000);
  await Emulation.setDeviceMetricsOverride({ width, height, deviceScaleFactor: 1, mobile: false });
  const shot = await within(30000, Page.captureScreenshot({ format: "png", captureBeyondViewport: true }), "the screenshot");
  const png = Buffer.from(shot.data, "base64");
  writeFileSync(screenshotPath, png);
  const img = decodePng(png);
  const colours = new Set();
  let ink = 0;
  for (let i = 0; i < img.pixels.length; i += img.channels) {
    const r = img.pixels[i], g = img.pixels[i + 1], b = img.pixels[i + 2];
    colours.add(((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3));
    if (r < 240 || g < 240 || b < 240) ink++;
  }
  const inkShare = ink / (img.width * img.height);
  if (colours.size < 20) fail(`the screenshot looks blank: ${colours.size} colours`);
  if (inkShare < 0.03) fail(`the screenshot looks blank: ${(inkShare * 100).toFixed(1)}% non-white`);
  if (problems.length) fail(`console errors: ${problems.join("; ")}`);
  if (requests.length) fail(`network requests: ${requests.join(", ")}`);
  console.log(
    `browser-check: ok: ${img.width}x${img.height} screenshot, ${colours.size} colours, ` +
      `${(inkShare * 100).toFixed(1)}% ink, ${f.svgs} charts, 0 console errors, 0 requests`,
  );
} catch (e) {
  fail(e.message);
} finally {
  if (client) await client.close().catch(() => {});
  cleanup();
}
