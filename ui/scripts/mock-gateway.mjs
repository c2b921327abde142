// A stand-in for the C++ gateway, for developing the app without a bus: serves dist/ and speaks
// the protocol (docs/ui-protocol.md section 4) on /ws with a few fake extensions. Dependency-free
// (a minimal RFC 6455 server: text frames, pings ignored).
//   npm run build && node scripts/mock-gateway.mjs [--port 8090] [--token t] [--rate-hz 1000]
// then open http://127.0.0.1:8090/?token=t
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const port = Number(args.port ?? 8090);
const token = args.token ?? 't';
const rateHz = Number(args['rate-hz'] ?? 1000);
const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', args.dist ?? 'dist');
const now = () => performance.timeOrigin + performance.now();

// ---- fake extensions ----------------------------------------------------------------------------
const exts = new Map(); // id -> {state, seq, tree}
function ext(id, state, tree) {
  exts.set(id, { id, state, seq: 1, tree });
}
const node = (id, type, props = {}, children = [], events) => ({ id, type, props, children, ...(events ? { events } : {}) });
const files = ['alpha.txt', 'needle-report.txt', 'notes/needle-notes.md', 'notes/other.log', 'deep/a/b/haystack.csv'];
const resultRows = (q) =>
  files.filter((f) => f.includes(q)).map((f) => node(`r:${f}`, 'text', { text: f, mono: true }));

ext('ui-gateway', 'HEALTHY', node('dash', 'stack', { gap: 16 }, [
  node('stats', 'stack', { direction: 'row' }, [
    node('s-ext', 'stat', { label: 'Extensions', value: 3 }),
    node('s-rate', 'stat', { label: 'Frames', value: 0, unit: '/s' }),
    node('s-browsers', 'stat', { label: 'Browsers', value: 1 }),
  ]),
  node('exts', 'card', { title: 'Extensions', description: 'Live from the supervisor' }, [
    node('ext-table', 'table', { columns: ['Extension', 'State', 'PID', ''] }, ['file-explorer', 'ticker', 'broken'].map((id, i) =>
      node(`row-${id}`, 'row', {}, [
        node(`name-${id}`, 'text', { text: id, mono: true }),
        node(`state-${id}`, 'badge', { text: 'HEALTHY', tone: 'success' }),
        node(`pid-${id}`, 'text', { text: String(4000 + i) }),
        node(`restart-${id}`, 'button', { label: 'Restart', variant: 'secondary' }, [], ['click']),
      ]))),
  ]),
  node('log-card', 'card', { title: 'Log' }, [node('log', 'log', { lines: ['gateway up'], max_lines: 200 })]),
]));
ext('file-explorer', 'HEALTHY', node('fx', 'card', { title: 'File explorer', description: '/tmp/files' }, [
  node('search', 'input', { value: '', placeholder: 'file name', debounce_ms: 50 }, [], ['change', 'submit']),
  node('tabs', 'tabs', { value: 'list' }, [
    node('list', 'tab', { label: 'Results' }, [node('results', 'list', { empty: 'Type to search' }, [])]),
    node('treev', 'tab', { label: 'Tree' }, [node('tree', 'tree', { items: [{ id: '/', label: '/', children: files.map((f) => ({ id: f, label: f, children: [] })) }], selected: '' }, [], ['select'])]),
  ], ['change']),
  node('prog', 'progress', { value: 64, label: 'Indexed' }),
]));
const points = Array.from({ length: 300 }, () => 0);
ext('ticker', 'HEALTHY', node('tk', 'stack', {}, [
  node('count', 'stat', { label: 'count', value: 0 }),
  node('increment', 'button', { label: 'Increment' }, [], ['click']),
  node('chart', 'line-chart', { series: [{ name: 'signal', points }, { name: 'noise', points }], unit: 'ms', height: 200 }),
  node('mystery', 'sparkle-widget', { x: 1 }, [node('inner', 'text', { text: 'child of an unknown type' })]),
]));
ext('broken', 'CRASHED', node('b', 'text', { text: 'the last thing it showed' }));

// ---- WebSocket ----------------------------------------------------------------------------------
const clients = new Set();
function frameText(text) {
  const payload = Buffer.from(text);
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x81, n]) : n < 65536 ? Buffer.from([0x81, 126, n >> 8, n & 255]) : (() => {
    const b = Buffer.alloc(10); b[0] = 0x81; b[1] = 127; b.writeBigUInt64BE(BigInt(n), 2); return b;
  })();
  return Buffer.concat([head, payload]);
}
function send(sock, msg) {
  if (!sock.destroyed) sock.write(frameText(JSON.stringify({ v: 1, ...msg })));
}
function broadcast(msg) {
  for (const c of clients) send(c, msg);
}
function snapshotOf(e) {
  return { kind: 'snapshot', extension: e.id, seq: e.seq, t: now(), tree: e.tree };
}
function publish(e, ops, extra = {}) {
  e.seq += 1;
  applyLocal(e, ops);
  broadcast({ kind: 'patch', extension: e.id, seq: e.seq, base: e.seq - 1, t: now(), ops, ...extra });
}
function find(n, id) {
  if (n.id === id) return n;
  for (const c of n.children ?? []) {
    const f = find(c, id);
    if (f) return f;
  }
  return null;
}
function applyLocal(e, ops) {
  for (const op of ops) {
    if (op.op === 'props') Object.assign(find(e.tree, op.id).props, op.set ?? {});
    else if (op.op === 'replace') {
      const parent = (function up(n) { for (const c of n.children ?? []) { if (c.id === op.id) return n; const r = up(c); if (r) return r; } return null; })(e.tree);
      const i = parent.children.findIndex((c) => c.id === op.id);
      parent.children[i] = op.node;
    }
  }
}
function parseFrames(sock, buf) {
  while (buf.length >= 2) {
    const op = buf[0] & 15;
    let len = buf[1] & 127;
    let off = 2;
    if (len === 126) { if (buf.length < 4) break; len = buf.readUInt16BE(2); off = 4; }
    else if (len === 127) { if (buf.length < 10) break; len = Number(buf.readBigUInt64BE(2)); off = 10; }
    if (buf.length < off + 4 + len) break;
    const mask = buf.subarray(off, off + 4);
    const data = Buffer.from(buf.subarray(off + 4, off + 4 + len));
    for (let i = 0; i < data.length; i++) data[i] ^= mask[i & 3];
    buf = buf.subarray(off + 4 + len);
    if (op === 8) { sock.end(); break; }
    if (op === 1) onMessage(sock, JSON.parse(data.toString()));
  }
  return buf;
}
let count = 0;
function onMessage(sock, m) {
  if (m.kind === 'resync') {
    for (const e of exts.values()) if (!m.extension || m.extension === e.id) send(sock, snapshotOf(e));
    return;
  }
  if (m.kind !== 'event') return;
  const e = exts.get(m.extension);
  const target = e && find(e.tree, m.node);
  if (!target || !(target.events ?? []).includes(m.event)) {
    send(sock, { kind: 'ack', seq: m.seq, ok: false, error: `node '${m.node}' has no event '${m.event}'` });
    return;
  }
  if (m.node === 'increment') {
    count += 1;
    publish(e, [{ op: 'props', id: 'count', set: { value: count } }], { events_done: [m.seq] });
  } else if (m.node === 'search' && m.event === 'change') {
    const q = String(m.payload.value ?? '');
    publish(e, [
      { op: 'props', id: 'search', set: { value: q } },
      { op: 'replace', id: 'results', node: node('results', 'list', { empty: q ? 'No match' : 'Type to search' }, q ? resultRows(q) : []) },
    ], { events_done: [m.seq] });
  } else if (m.node === 'tabs') {
    publish(e, [{ op: 'props', id: 'tabs', set: { value: m.payload.value } }], { events_done: [m.seq] });
  } else if (m.node === 'tree') {
    publish(e, [{ op: 'props', id: 'tree', set: { selected: m.payload.id } }], { events_done: [m.seq] });
  } else if (m.node.startsWith('restart-')) {
    const g = exts.get('ui-gateway');
    const log = find(g.tree, 'log').props.lines;
    publish(g, [{ op: 'props', id: 'log', set: { lines: [...log, `restart ${m.node.slice(8)}`] } }], { events_done: [m.seq] });
  }
  send(sock, { kind: 'ack', seq: m.seq, ok: true, tree_seq: e.seq });
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/ws') {
    res.writeHead(426).end('/ws is a WebSocket endpoint\n'); // as the C++ gateway: no token check here
    return;
  }
  const file = path.join(dist, url.pathname === '/' ? 'index.html' : path.normalize(url.pathname));
  if (!file.startsWith(dist) || !fs.existsSync(file)) return res.writeHead(404).end('not found');
  const type = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' }[path.extname(file)] ?? 'application/octet-stream';
  res.writeHead(200, { 'content-type': type });
  fs.createReadStream(file).pipe(res);
});
server.on('upgrade', (req, sock) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname !== '/ws' || url.searchParams.get('token') !== token) {
    sock.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  sock.setNoDelay(true);
  let buf = Buffer.alloc(0);
  sock.on('data', (d) => (buf = parseFrames(sock, Buffer.concat([buf, d]))));
  sock.on('close', () => clients.delete(sock));
  sock.on('error', () => clients.delete(sock));
  clients.add(sock);
  send(sock, { kind: 'hello', gateway: 'ui-gateway', bus: 'mock' });
  for (const e of exts.values()) send(sock, { kind: 'state', extension: e.id, state: e.state, instance: 0 });
  for (const e of exts.values()) send(sock, snapshotOf(e));
});

// ---- the 1 kHz stream and a heartbeat -----------------------------------------------------------
let tick = 0;
const tk = exts.get('ticker');
const sig = Array.from({ length: 300 }, () => 0);
const noise = Array.from({ length: 300 }, () => 0);
const period = 1000 / rateHz;
let next = performance.now();
function pump() {
  const t = performance.now();
  while (next <= t) {
    next += period;
    tick += 1;
    sig.push(Math.sin(tick / 80) * 40 + 50); sig.shift();
    noise.push(50 + (Math.random() - 0.5) * 30); noise.shift();
    publish(tk, [{ op: 'props', id: 'chart', set: { series: [{ name: 'signal', points: sig.map((v) => Math.round(v * 100) / 100) }, { name: 'noise', points: noise.map((v) => Math.round(v * 100) / 100) }] } }]);
  }
}
if (rateHz > 0) setInterval(pump, 1);
setInterval(() => broadcast({ kind: 'heartbeat' }), 5000);
setInterval(() => {
  const g = exts.get('ui-gateway');
  publish(g, [{ op: 'props', id: 's-rate', set: { value: rateHz } }]);
}, 1000);

server.listen(port, '127.0.0.1', () => console.log(`UI: http://127.0.0.1:${port}/?token=${token}`));
