// Drives the log viewer (/logs/) like a person would: open it, see the
// newest records and the chart, filter by service and result, page with
// Older / Newer, switch on the live tail and watch a new record arrive.
// Prints one JSON line with what the page showed at each step.
//
// usage: node logs.mjs <page-url> <screenshot.png> <service> <result> <tail-service>
import { chromium } from 'playwright-core';

const [url, screenshot, service, result, tailService] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const cells = (page, cls) => page.$$eval('#rows td.' + cls, (tds) => tds.map((t) => t.textContent));
const bars = (page) => page.$$eval('#chart rect.bar', (rs) => rs.map((r) => ({
  result: r.classList.contains('failure') ? 'failure' : 'success',
  count: Number(r.dataset.count),
})));
const sum = (list, result) => list.filter((b) => b.result === result).reduce((n, b) => n + b.count, 0);
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(url);
  const title = await page.title();
  await page.waitForSelector('#rows tr', { timeout: 20000 });
  await page.waitForSelector('#chart rect.bar', { timeout: 20000 });
  const initial = {
    rows: (await cells(page, 'id')).length,
    times: await page.$$eval('#rows td.time', (tds) => tds.map((t) => t.title)),
    bars: await bars(page),
    totalSuccess: await page.textContent('#total-success'),
    totalFailure: await page.textContent('#total-failure'),
  };

  // Filter by service and result.
  await page.fill('#service', service);
  await page.selectOption('#result', result);
  await page.click('#apply');
  await page.waitForFunction(
    ([s, r]) => {
      const rows = [...document.querySelectorAll('#rows tr')];
      return rows.length > 0 && rows.every((tr) => tr.querySelector('.service').textContent === s
        && tr.querySelector('.result').textContent === r);
    },
    [service, result], { timeout: 20000 },
  );
  await page.waitForFunction(
    (r) => document.querySelector('#total-' + (r === 'success' ? 'failure' : 'success')).textContent === '0',
    result, { timeout: 20000 },
  );
  const filtered = {
    services: [...new Set(await cells(page, 'service'))],
    results: [...new Set(await cells(page, 'result'))],
    rows: (await cells(page, 'id')).length,
    totalSuccess: await page.textContent('#total-success'),
    totalFailure: await page.textContent('#total-failure'),
    bars: await bars(page),
  };

  // Pages of 10, without filters.
  await page.click('#clear');
  await page.selectOption('#limit', '10');
  await page.click('#apply');
  await page.waitForFunction(() => document.querySelectorAll('#rows tr').length === 10
    && !document.querySelector('#older').disabled, null, { timeout: 20000 });
  const first = await cells(page, 'id');
  await page.click('#older');
  await page.waitForFunction((f) => document.querySelector('#rows td.id')?.textContent !== f, first[0], { timeout: 20000 });
  const second = await cells(page, 'id');
  const status = await page.textContent('#status');
  await page.click('#newer');
  await page.waitForFunction((f) => document.querySelector('#rows td.id')?.textContent === f, first[0], { timeout: 20000 });
  const back = await cells(page, 'id');

  // Live tail: a record written now appears on top without a reload.
  await page.check('#live');
  await page.waitForTimeout(500);
  const posted = await page.evaluate(async (svc) => {
    const r = await fetch('/log', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ service: svc, user_id: 'tail-user', action: 'tail', result: 'success' }),
    });
    return { status: r.status, id: (await r.json()).id };
  }, tailService);
  await page.waitForFunction((id) => document.querySelector('#rows tr')?.dataset.id === id, posted.id, { timeout: 20000 });
  const tail = {
    posted,
    topService: (await cells(page, 'service'))[0],
    rows: (await cells(page, 'id')).length,
    fresh: await page.$$eval('#rows tr.fresh', (rs) => rs.length),
  };
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ title, initial, filtered, pages: { first, second, back, status }, tail }));
} finally {
  await browser.close();
}
