// Opens one dashboard of the `zdm-deploy dashboard` page in Debian's headless chromium, waits
// for its first full refresh, saves a full-page screenshot and prints, as JSON, what each panel
// shows (data-state, data-series) and where it is on the screenshot (CSS pixels = image pixels).
// Usage: node dashboard_page.mjs URL SCREENSHOT.png
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  // Flags known to work on this machine kind: no sandbox as root, no GPU, and no background
  // connections (the network beyond loopback is closed).
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const out = { url, errors: [], panels: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 }, deviceScaleFactor: 1 });
  page.on("pageerror", (e) => out.errors.push(e.message));
  page.on("requestfailed", (r) => out.errors.push(`${r.url()}: ${r.failure().errorText}`));
  page.on("response", (r) => { if (r.status() >= 400) out.errors.push(`${r.url()}: ${r.status()}`); });
  await page.goto(url);
  await page.waitForFunction(
    () => Number(document.body.dataset.refreshes || 0) >= 1 || document.body.dataset.error, null,
    { timeout: 90000 });
  out.title = await page.title();
  out.pageError = await page.evaluate(() => document.body.dataset.error || null);
  out.panels = await page.$$eval(".panel", (els) => els.map((el) => {
    const box = (e) => { const r = e.getBoundingClientRect();
      return { x: Math.round(r.x + window.scrollX), y: Math.round(r.y + window.scrollY),
        w: Math.round(r.width), h: Math.round(r.height) }; };
    const canvas = el.querySelector("canvas");
    return { title: el.dataset.title, type: el.dataset.type, state: el.dataset.state,
      series: Number(el.dataset.series), text: el.querySelector(".body").innerText.slice(0, 200),
      rect: box(el), canvas: canvas ? box(canvas) : null };
  }));
  await page.screenshot({ path: screenshot, fullPage: true });
} catch (e) {
  out.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
