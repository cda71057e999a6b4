// Drives the transactions upload page like a person would: open it, pick a
// file with the file input, click send, wait for the per-record results,
// take a screenshot. Prints one JSON line with what the page showed.
//
// usage: node upload.mjs <page-url> <file.json> <screenshot.png> [expect-processed]
import { chromium } from 'playwright-core';

const [url, file, screenshot, expectProcessed] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  await page.goto(url);
  const title = await page.title();
  await page.setInputFiles('#file', file);
  await page.click('#send');
  let outcome;
  if (expectProcessed) {
    await page.waitForSelector('#batch', { timeout: 20000 });
    await page.waitForFunction(
      (n) => document.querySelector('#processed')?.textContent === n,
      expectProcessed,
      { timeout: 30000 },
    );
    outcome = {
      batch: await page.textContent('#batch'),
      total: await page.textContent('#total'),
      processed: await page.textContent('#processed'),
      flagged: await page.textContent('#flagged'),
      flaggedCells: await page.$$eval('#records td.flagged', (cells) => cells.map((c) => c.textContent)),
    };
  } else {
    await page.waitForSelector('#problems', { timeout: 20000 });
    outcome = {
      message: await page.textContent('#result'),
      problems: await page.$$eval('#problems tr', (rows) => rows.length - 1),
    };
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ title, ...outcome }));
} finally {
  await browser.close();
}
