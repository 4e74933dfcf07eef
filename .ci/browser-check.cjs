// Opens each chapter of the built book in headless Chromium and checks it,
// at a desktop width (1280 px, the sidebar shown) and a phone's (390 px).
// Usage: node browser-check.cjs BASE_URL OUT_DIR page.html...
const { chromium } = require('playwright-core');
const fs = require('fs');
const os = require('os');
const path = require('path');

const [base, outDir, ...pages] = process.argv.slice(2);
const widths = [1280, 390];

// Runs in the page. Nothing in the content column may be wider than the
// column, unless it is inside a block that scrolls on purpose: one whose CSS
// (book/theme/css/layout.css) sets --layout-scroll: deliberate. mdBook makes
// every table and code block scroll (overflow-x: auto), so "scrollable" alone
// proves nothing: a desktop reader does not see a scrollbar until the end of
// a long block, and misses a table's last columns or a line's end. So a box
// whose content is wider than it fails the page unless it was meant to
// scroll; one that clips (overflow hidden) always fails.
function layout() {
  const main = document.querySelector('.content main');
  const mainBox = main.getBoundingClientRect();
  const problems = [];
  const scrolls = [];
  const heading = (el) => {
    let h = null;
    for (const c of main.querySelectorAll('h1, h2, h3, h4')) {
      if (c.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING) h = c; else break;
    }
    return h ? ` under "${h.textContent.trim().slice(0, 60)}"` : '';
  };
  const describe = (el) => {
    const table = el.matches('table') ? el : el.querySelector(':scope > table');
    if (table) {
      const cols = [...table.querySelectorAll('th')].map((th) => th.textContent.trim()).join(' | ');
      return `the table (${cols.slice(0, 70)})${heading(el)}`;
    }
    if (el.matches('code')) {
      const lang = (el.className.match(/language-\S+/) || ['code'])[0];
      const first = el.textContent.split('\n').find((l) => l.trim()) || '';
      return `the ${lang} block ("${first.trim().slice(0, 50)}")${heading(el)}`;
    }
    if (el.matches('img')) return `the image ${el.getAttribute('src')}${heading(el)}`;
    return `<${el.tagName.toLowerCase()} class="${el.className}">${heading(el)}`;
  };
  const col = main.clientWidth;
  if (main.scrollWidth > col + 1) problems.push(`the content column overflows: ${main.scrollWidth} px of content in ${col} px`);
  for (const el of main.querySelectorAll('*')) {
    const style = getComputedStyle(el);
    if (style.position === 'absolute' || style.position === 'fixed') continue;
    if (style.overflowX === 'visible' || style.display === 'inline') {
      // Not a scroll container: a chart, table or listing must stay inside
      // the column itself.
      if (el.matches('img, svg, table, pre') && !el.parentElement.closest('[data-layout-scroller]')) {
        const r = el.getBoundingClientRect();
        // (mdBook keeps a hidden copy of each image for its zoom view.)
        if (r.width === 0 && r.height === 0) continue;
        if (r.right > mainBox.right + 1 || r.left < mainBox.left - 1)
          problems.push(`${describe(el)} is ${Math.round(r.width)} px wide in a ${col} px column, not in a scroll`);
      }
      continue;
    }
    const wide = el.scrollWidth;
    const box = el.clientWidth;
    el.setAttribute('data-layout-scroller', '');
    if (wide <= box + 1) continue;
    const scrolls_ = style.overflowX === 'auto' || style.overflowX === 'scroll';
    const deliberate = style.getPropertyValue('--layout-scroll').trim() === 'deliberate';
    if (scrolls_ && deliberate) scrolls.push(wide);
    else problems.push(`${describe(el)} is ${wide} px wide in a ${box} px box: ` +
      (scrolls_ ? 'it scrolls, hiding the rest, and nothing chose that (wrap it, or make it a deliberate scroll in layout.css)'
                : `its overflow is ${style.overflowX}, so the rest is cut off`));
  }
  return { col, problems, scrolls };
}

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'book-chromium-'));
  // Flags as the workplace runs Chromium: no sandbox as root, and no
  // background connections, which a closed network refuses noisily.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: widths[0], height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
           '--disable-quic', '--disable-component-update', '--disable-sync'],
  });
  let failures = 0;
  const started = Date.now();
  for (const width of widths) {
    for (const name of pages) {
      const page = await context.newPage();
      await page.setViewportSize({ width, height: 900 });
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
      const fit = await page.evaluate(layout);
      problems.push(...fit.problems);
      const shot = path.join(outDir, name.replace(/\.html$/, width === widths[0] ? '.png' : `-${width}.png`));
      await page.screenshot({ path: shot, fullPage: true });
      const label = `${name} @${width}px`;
      if (problems.length) {
        failures++;
        console.log(`FAIL ${label} ("${title}")`);
        for (const p of problems) console.log(`  - ${p}`);
      } else {
        const scrolls = fit.scrolls.length ? `${fit.scrolls.length} deliberate scroll(s), widest ${Math.max(...fit.scrolls)} px` : 'no scroll';
        console.log(`ok   ${label} ("${title}"): ${images.length} image(s), ${charts.length} chart(s), no console errors; ` +
                    `fits its ${fit.col} px column, ${scrolls}; ${shot}`);
      }
      await page.close();
    }
  }
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
  const total = pages.length * widths.length;
  console.log(`${total - failures} passed, ${failures} failed (${pages.length} pages at ${widths.join(' and ')} px, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  process.exit(failures ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(1); });
