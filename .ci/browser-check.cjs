// Opens each chapter of the built book in headless Chromium and checks it.
// Usage: node browser-check.cjs BASE_URL OUT_DIR page.html...
const { chromium } = require('playwright-core');
const fs = require('fs');
const os = require('os');
const path = require('path');

const [base, outDir, ...pages] = process.argv.slice(2);

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'book-chromium-'));
  // Flags as the workplace runs Chromium: no sandbox as root, and no
  // background connections, which a closed network refuses noisily.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
           '--disable-quic', '--disable-component-update', '--disable-sync'],
  });
  let failures = 0;
  for (const name of pages) {
    const page = await context.newPage();
    const problems = [];
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
    const resp = await page.goto(`${base}/${name}`, { waitUntil: 'load' });
    if (!resp || resp.status() !== 200) problems.push(`HTTP ${resp ? resp.status() : 'no response'}`);
    const title = ((await page.locator('main h1').first().textContent({ timeout: 5000 }).catch(() => '')) || '').trim();
    if (!title) problems.push('no chapter heading rendered');
    const images = await page.$$eval('main img', (imgs) =>
      imgs.map((i) => ({ src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0 && i.naturalHeight > 0 })));
    for (const img of images) if (!img.ok) problems.push(`broken image: ${img.src}`);
    const charts = images.filter((i) => i.src && i.src.includes('generated/'));
    if (name.startsWith('lesson-') && charts.length === 0) problems.push('a lesson chapter without a generated chart');
    // Markdown that failed to render would show its raw include syntax.
    const text = await page.locator('main').innerText();
    if (text.includes('{{#include')) problems.push('an unresolved {{#include}} is visible');
    const shot = path.join(outDir, name.replace(/\.html$/, '.png'));
    await page.screenshot({ path: shot, fullPage: true });
    if (problems.length) {
      failures++;
      console.log(`FAIL ${name} ("${title}")`);
      for (const p of problems) console.log(`  - ${p}`);
    } else {
      console.log(`ok   ${name} ("${title}"): ${images.length} image(s), ${charts.length} chart(s), no console errors; ${shot}`);
    }
    await page.close();
  }
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
  console.log(`${pages.length - failures} passed, ${failures} failed`);
  process.exit(failures ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(1); });
