// The end-to-end harness: a real host (`symphony up` on a generated config, its own bus) with
// the gateway, the sample extensions and the UI probe, and Debian's Chromium driven by
// playwright-core. Nothing is downloaded: the browser is /usr/bin/chromium.
//
// Paths come from the environment (CTest sets them) or default to the release build:
//   SYMPHONY_BIN             build/release/engine/cli/symphony
//   SYMPHONY_EXTENSIONS_DIR  build/release/ext_sdk/extensions
//   SYMPHONY_UI_PROBE        the ui-probe manifest (searched in the build if unset)
//   SYMPHONY_UI_DIST         ui/dist (the built app the gateway serves)
//   SYMPHONY_E2E_ARTIFACTS   build/release/e2e-artifacts (screenshots, measurements)
//   CHROMIUM                 /usr/bin/chromium
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '..', '..');
const build = path.join(repo, 'build', 'release');

function firstExisting(candidates) {
  return candidates.find((p) => p && fs.existsSync(p));
}

export const paths = {
  symphony: process.env.SYMPHONY_BIN ?? path.join(build, 'engine', 'cli', 'symphony'),
  extensions: process.env.SYMPHONY_EXTENSIONS_DIR ?? path.join(build, 'ext_sdk', 'extensions'),
  probe:
    process.env.SYMPHONY_UI_PROBE ??
    firstExisting([
      path.join(build, 'ext_sdk', 'extensions', 'ui-probe', 'ui-probe.json'),
      path.join(build, 'tests', 'ui', 'ui-probe', 'ui-probe.json'),
    ]),
  dist: process.env.SYMPHONY_UI_DIST ?? path.join(repo, 'ui', 'dist'),
  artifacts: process.env.SYMPHONY_E2E_ARTIFACTS ?? path.join(build, 'e2e-artifacts'),
  chromium: process.env.CHROMIUM ?? '/usr/bin/chromium',
};

export const GATEWAY = 'ui-gateway';

// A directory for the file explorer to index, with files the tests search for.
export function makeExplorerRoot() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'symphony-e2e-files-'));
  const files = {
    'alpha.txt': 'a',
    'needle-report.txt': 'the needle',
    'notes/needle-notes.md': '# needle',
    'notes/other.log': 'x',
    'deep/a/b/haystack.csv': '1,2',
  };
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), text);
  }
  return root;
}

function toml(value) {
  return JSON.stringify(value); // TOML basic strings and arrays of them are JSON-compatible
}

// The host's config: the gateway on an ephemeral port, and `extensions` as [[extension]]
// tables ({id, executable, args, restart, checkpoint_bytes}).
export function writeConfig(dir, bus, extensions) {
  const gatewayExe = path.join(paths.extensions, GATEWAY, GATEWAY);
  const lines = [
    `bus = ${toml(bus)}`,
    'log_level = "info"',
    '',
    '[[extension]]',
    `id = ${toml(GATEWAY)}`,
    'version = "1.0.0"',
    `executable = ${toml(gatewayExe)}`,
    `args = ${toml(['--port', '0', '--static', paths.dist])}`,
    'restart = { policy = "immediate" }',
  ];
  for (const e of extensions) {
    lines.push('', '[[extension]]', `id = ${toml(e.id)}`, 'version = "1.0.0"');
    lines.push(`executable = ${toml(e.executable)}`, `args = ${toml(e.args ?? [])}`);
    if (e.checkpoint_bytes) lines.push(`checkpoint_bytes = ${e.checkpoint_bytes}`);
    lines.push(`restart = ${e.restart ?? '{ policy = "immediate" }'}`);
    if (e.topics) lines.push(e.topics);
  }
  const file = path.join(dir, 'symphony.toml');
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

export function probeExecutable() {
  if (!paths.probe) throw new Error('ui-probe manifest not found: build the release preset');
  const manifest = JSON.parse(fs.readFileSync(paths.probe, 'utf8'));
  return path.resolve(path.dirname(paths.probe), manifest.executable);
}

export function symphony(bus, args, { json = true } = {}) {
  const out = execFileSync(paths.symphony, ['--bus', bus, ...args, ...(json ? ['--json'] : [])], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return json ? JSON.parse(out) : out;
}

export function instances(bus) {
  return symphony(bus, ["ext", "list"]); // a JSON array of every instance's figures
}

export function instanceOf(bus, id) {
  return instances(bus).find((i) => i.id === id && i.state !== 'TERMINATED');
}

// Runs `symphony up` until stop(); resolves once it printed the UI's URL.
export async function startHost({ extensions, bus = `e2e-${process.pid}-${Date.now() % 100000}` }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'symphony-e2e-'));
  const config = writeConfig(dir, bus, extensions);
  const proc = spawn(paths.symphony, ['--bus', bus, 'up', '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no "UI: <url>" line from symphony up in 30 s:\n${output}`)),
      30_000,
    );
    const onData = (chunk) => {
      output += chunk.toString();
      const m = output.match(/^UI: (http\S+)/m);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', (chunk) => (output += chunk.toString()));
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`symphony up exited (${code}) before printing the URL:\n${output}`));
    });
  });
  const parsed = new URL(url);
  return {
    bus,
    url,
    port: Number(parsed.port),
    token: parsed.searchParams.get('token'),
    origin: parsed.origin,
    output: () => output,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      const exited = new Promise((resolve) => proc.on('exit', resolve));
      proc.kill('SIGINT');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      fs.rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

export async function launchBrowser() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'symphony-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: paths.chromium,
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    async newPage() {
      const page = await context.newPage();
      page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
      return page;
    },
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

// A WebSocket upgrade by hand, to see what the gateway answers (status code) without a browser.
export async function upgradeStatus(port, { token, origin, host }) {
  const http = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      path: `/ws${token === undefined ? '' : `?token=${encodeURIComponent(token)}`}`,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
        Host: host ?? `127.0.0.1:${port}`,
        ...(origin ? { Origin: origin } : {}),
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', reject);
    req.end();
  });
}

export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export async function waitFor(predicate, { timeout = 10_000, interval = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

export function panel(page, extension) {
  return page.locator(`[data-extension="${extension}"]`);
}

export function node(page, extension, id) {
  return page.locator(`[data-extension="${extension}"] [data-node-id="${id}"]`);
}

// The <input> of an input node (the node's element itself or one inside it).
export function inputOf(page, extension, id) {
  return node(page, extension, id).locator('xpath=descendant-or-self::input').first();
}

export async function openPanel(page, host, extension) {
  const hash = extension === GATEWAY ? '#/' : `#/ext/${extension}`;
  await page.goto(`${host.url}${hash}`);
  await panel(page, extension).first().waitFor({ timeout: 15_000 });
}
