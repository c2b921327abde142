// End to end: a real host, the gateway, the sample file explorer and the UI probe, driven in
// Debian's headless Chromium. Run: `npm run e2e` in ui/ (CTest runs it as ui.e2e).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  GATEWAY,
  inputOf,
  instanceOf,
  launchBrowser,
  makeExplorerRoot,
  node,
  openPanel,
  panel,
  paths,
  probeExecutable,
  startHost,
  upgradeStatus,
  waitFor,
} from './harness.mjs';

let host;
let browser;
let filesRoot;

before(async () => {
  filesRoot = makeExplorerRoot();
  host = await startHost({
    extensions: [
      {
        id: 'file-explorer',
        executable: path.join(paths.extensions, 'file-explorer', 'file-explorer'),
        args: ['--root', filesRoot],
        checkpoint_bytes: 4096,
        // As in the demo: CRASHED for 100 ms before the restart. The gateway forwards the
        // supervisor's lifecycle broadcast at once (its ext.list poll, every 200 ms, would
        // often miss it).
        restart: '{ policy = "backoff", initial_ms = 100, factor = 2, cap_ms = 5000 }',
      },
      { id: 'ui-probe', executable: probeExecutable(), args: ['--tick-ms', '100'] },
    ],
  });
  browser = await launchBrowser();
  fs.mkdirSync(paths.artifacts, { recursive: true });
});

after(async () => {
  await browser?.close();
  const code = await host?.stop();
  if (filesRoot) fs.rmSync(filesRoot, { recursive: true, force: true });
  assert.equal(code, 0, 'symphony up exits 0 after SIGINT');
});

test('the file explorer: type a search, matching files appear', async () => {
  const page = await browser.newPage();
  await openPanel(page, host, 'file-explorer');
  await inputOf(page, 'file-explorer', 'search').fill('needle');
  const results = node(page, 'file-explorer', 'results');
  await results.getByText('needle-report.txt').waitFor({ timeout: 10_000 });
  await results.getByText('needle-notes.md').waitFor({ timeout: 10_000 });
  assert.equal(await results.getByText('haystack.csv').count(), 0, 'non-matching files are not listed');
  await page.close();
});

test('kill -9 the file explorer: the UI shows CRASHED, then recovers with its state', async () => {
  const page = await browser.newPage();
  await openPanel(page, host, 'file-explorer');
  await inputOf(page, 'file-explorer', 'search').fill('haystack');
  await node(page, 'file-explorer', 'results').getByText('haystack.csv').waitFor({ timeout: 10_000 });
  // The extension's checkpoint holds the query; give its save a moment to commit.
  const before = instanceOf(host.bus, 'file-explorer');
  process.kill(before.pid, 'SIGKILL');
  await page
    .locator('[data-extension="file-explorer"][data-state="CRASHED"]')
    .first()
    .waitFor({ timeout: 5_000 });
  await page
    .locator('[data-extension="file-explorer"][data-state="HEALTHY"]')
    .first()
    .waitFor({ timeout: 15_000 });
  const afterRestart = instanceOf(host.bus, 'file-explorer');
  assert.notEqual(afterRestart.pid, before.pid, 'a new process');
  // Its state came back: the query and its results, rendered from the restarted extension.
  await node(page, 'file-explorer', 'results').getByText('haystack.csv').waitFor({ timeout: 10_000 });
  assert.equal(await inputOf(page, 'file-explorer', 'search').inputValue(), 'haystack');
  await page.close();
});

test("the dashboard's restart button restarts an extension", async () => {
  const page = await browser.newPage();
  await openPanel(page, host, GATEWAY);
  const before = instanceOf(host.bus, 'ui-probe');
  const row = panel(page, GATEWAY).locator('[data-type="row"]', { hasText: 'ui-probe' }).first();
  await row.locator('[data-type="button"]', { hasText: /restart/i }).first().click();
  const restarted = await waitFor(
    () => {
      const now = instanceOf(host.bus, 'ui-probe');
      return now && now.state === 'HEALTHY' && now.pid !== before.pid ? now : null;
    },
    { timeout: 15_000, what: 'ui-probe restarted with a new pid' },
  );
  // The dashboard shows the new process.
  await row.getByText(String(restarted.pid)).waitFor({ timeout: 10_000 });
  await page.screenshot({ path: path.join(paths.artifacts, 'dashboard.png'), fullPage: true });
  assert.ok(fs.statSync(path.join(paths.artifacts, 'dashboard.png')).size > 10_000);
  await page.close();
});

test('a click reaches the extension and its answer is rendered', async () => {
  const page = await browser.newPage();
  await openPanel(page, host, 'ui-probe');
  const count = node(page, 'ui-probe', 'count');
  await count.waitFor();
  const start = Number((await count.innerText()).match(/-?\d+/)[0]);
  for (let i = 0; i < 3; ++i) await node(page, 'ui-probe', 'increment').click();
  await waitFor(async () => Number((await count.innerText()).match(/-?\d+/)[0]) === start + 3, {
    what: `count ${start + 3}`,
  });
  await page.close();
});

test('a bad token and a foreign Origin are refused', async () => {
  assert.equal(await upgradeStatus(host.port, { token: 'nope', origin: host.origin }), 401);
  assert.equal(await upgradeStatus(host.port, { origin: host.origin }), 401);
  assert.equal(await upgradeStatus(host.port, { token: host.token, origin: 'http://evil.example' }), 403);
  assert.equal(
    await upgradeStatus(host.port, { token: host.token, origin: host.origin, host: 'evil.example' }),
    403,
  );
  assert.equal(await upgradeStatus(host.port, { token: host.token, origin: host.origin }), 101);
  // The app, opened with a wrong token, says so instead of showing anything.
  const page = await browser.newPage();
  await page.goto(`${host.origin}/?token=0000#/`);
  await waitFor(() => page.evaluate(() => window.__symphony?.status === 'unauthorized'), {
    what: 'status unauthorized',
  });
  assert.equal(await panel(page, GATEWAY).count(), 0);
  await page.close();
});

test('kill -9 the gateway: the browser reconnects by itself and no extension state is lost', async () => {
  const page = await browser.newPage();
  await openPanel(page, host, 'ui-probe');
  await node(page, 'ui-probe', 'increment').click();
  const count = node(page, 'ui-probe', 'count');
  await waitFor(async () => /\d/.test(await count.innerText()));
  const shown = await count.innerText();
  const gateway = instanceOf(host.bus, GATEWAY);
  process.kill(gateway.pid, 'SIGKILL');
  await waitFor(() => page.evaluate(() => window.__symphony?.status !== 'connected'), {
    what: 'the app noticed the gateway went away',
  });
  await waitFor(() => page.evaluate(() => window.__symphony?.status === 'connected'), {
    timeout: 20_000,
    what: 'the app reconnected',
  });
  assert.notEqual(instanceOf(host.bus, GATEWAY).pid, gateway.pid);
  await waitFor(async () => (await count.innerText()) === shown, { what: `count still ${shown}` });
  await page.close();
});
