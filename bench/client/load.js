'use strict';
// Load client for `make bench`: N raw-socket WebSocket clients in one Node process.
//
//   node bench/client/load.js --url ws://127.0.0.1:PORT/ws/events --n 100 [--progress FILE]
//
// Protocol with the orchestrator (bench/run.py), JSON lines on stdout:
//   {"event":"ready", ...}   once every client has completed its upgrade
//   stdin "end <count>"      the publisher queued <count> events; finish when every client has
//                            them, after --idle-ms without traffic, or --drain-ms after "end"
//   stdin "stop"             finish now (the idle-memory test holds the sockets until then)
//   {"event":"result", ...}  counts, sequence checks, latency percentiles, own CPU
//
// The handshake is written by hand and server frames are parsed in place (they are never
// masked); an event is recognised by its bytes, without JSON.parse: the emit time is the
// payload's "t_us" (µs since the epoch, from the publisher's clock) and the gateway "seq" is
// checked for contiguity per client.  One receive timestamp per socket read.
// --deflate 1: offer permessage-deflate and inflate compressed (RSV1) frames before scanning them;
// "wire_bytes" in the result counts what arrived on the sockets either way.
// --progress FILE: every 2 ms the lowest per-client event count is written there (float64 LE),
// so a max-rate publisher can bound the events in flight end to end.

const net = require('net');
const fs = require('fs');
const crypto = require('crypto');
const { performance } = require('perf_hooks');
const zlib = require('zlib');

function parseArgs(argv) {
  const out = { n: 1, drainMs: 30000, idleMs: 2000, concurrency: 200, progress: null, url: null, deflate: 0 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    out[key] = key === 'url' || key === 'progress' ? argv[i + 1] : Number(argv[i + 1]);
  }
  if (!out.url) throw new Error('--url is required');
  return out;
}

const opts = parseArgs(process.argv.slice(2));
const target = new URL(opts.url);
const N = opts.n;

// ---- latency histogram: 128 sub-buckets per power of two (< 1 % error) ----------------------
const SUB = 128;
const hist = new Float64Array(64 * SUB);
let latCount = 0;
let latMax = 0;
function record(us) {
  if (us < 0) us = 0;
  if (us > latMax) latMax = us;
  const v = Math.floor(us) + 1;
  const e = 31 - Math.clz32(v);
  const m = e < 7 ? v : Math.floor(v / 2 ** (e - 7));
  hist[(e << 7) + (m & (SUB - 1))]++;
  latCount++;
}
function bucketValue(idx) {
  const e = idx >> 7;
  const m = idx & (SUB - 1);
  if (e < 7) return m - 1;
  return (SUB + m) * 2 ** (e - 7) - 1;
}
function percentile(p) {
  if (!latCount) return null;
  const want = Math.ceil((latCount * p) / 100);
  let seen = 0;
  for (let i = 0; i < hist.length; i++) {
    seen += hist[i];
    if (seen >= want) return bucketValue(i);
  }
  return latMax;
}

// ---- frame scanning -------------------------------------------------------------------------
const KEY_T = Buffer.from('"t_us":');
const KEY_SEQ = Buffer.from('"seq":');
const CONTROL = Buffer.from('{"type":"gateway.');
const GAP = Buffer.from('{"type":"gateway.gap"');

function intAfter(buf, key, from, to) {
  let i = buf.indexOf(key, from);
  if (i < 0 || i >= to) return -1;
  i += key.length;
  let v = 0;
  let digits = 0;
  for (; i < to; i++) {
    const d = buf[i] - 48;
    if (d < 0 || d > 9) break;
    v = v * 10 + d;
    digits++;
  }
  return digits ? v : -1;
}

const events = new Float64Array(N);
const lastSeq = new Float64Array(N);
let total = 0;
let controls = 0;
let gapMessages = 0;
let seqBreaks = 0;
let firstRecvUs = 0;
let lastRecvUs = 0;
let closedEarly = 0;
let failed = 0;
let opened = 0;

const nowUs = () => (performance.timeOrigin + performance.now()) * 1000;

function onText(i, buf, from, to, t) {
  if (buf.compare(CONTROL, 0, CONTROL.length, from, from + CONTROL.length) === 0) {
    controls++;
    if (buf.compare(GAP, 0, GAP.length, from, from + GAP.length) === 0) gapMessages++;
    return;
  }
  if (!firstRecvUs) firstRecvUs = t;
  lastRecvUs = t;
  events[i]++;
  total++;
  const sent = intAfter(buf, KEY_T, from, to);
  if (sent > 0) record(t - sent);
  const seq = intAfter(buf, KEY_SEQ, from, to);
  if (seq >= 0) {
    if (lastSeq[i] && seq !== lastSeq[i] + 1) seqBreaks++;
    lastSeq[i] = seq;
  }
}

const DEFLATE_TAIL = Buffer.from([0, 0, 0xff, 0xff]);
const INFLATE = { finishFlush: zlib.constants.Z_SYNC_FLUSH };
let wireBytes = 0;
const PONG_HEADER = Buffer.from([0x8a, 0x80, 0, 0, 0, 0]); // FIN|pong, masked, empty, zero mask

// Parse every complete frame in buf; returns the unparsed tail (or null).
function scan(i, sock, buf, t) {
  let off = 0;
  while (buf.length - off >= 2) {
    const op = buf[off] & 0x0f;
    let len = buf[off + 1] & 0x7f;
    let head = 2;
    if (len === 126) {
      if (buf.length - off < 4) break;
      len = buf.readUInt16BE(off + 2);
      head = 4;
    } else if (len === 127) {
      if (buf.length - off < 10) break;
      len = Number(buf.readBigUInt64BE(off + 2));
      head = 10;
    }
    if (buf.length - off < head + len) break;
    const start = off + head;
    if (op === 1 && buf[off] & 0x40) {
      const plain = zlib.inflateRawSync(Buffer.concat([buf.subarray(start, start + len), DEFLATE_TAIL]), INFLATE);
      onText(i, plain, 0, plain.length, t);
    } else if (op === 1) onText(i, buf, start, start + len, t);
    else if (op === 9) sock.write(PONG_HEADER);
    else if (op === 8) closedEarly++;
    off = start + len;
  }
  return off < buf.length ? buf.subarray(off) : null;
}

// ---- connections ----------------------------------------------------------------------------
const sockets = [];

function open(i) {
  return new Promise((resolve) => {
    const key = crypto.randomBytes(16).toString('base64');
    const sock = net.connect({ host: target.hostname, port: Number(target.port), noDelay: true });
    sockets[i] = sock;
    let upgraded = false;
    let rest = null;
    let done = false;
    const finish = (ok) => {
      if (done) return;
      done = true;
      if (ok) opened++;
      else failed++;
      resolve();
    };
    sock.on('connect', () => {
      sock.write(
        `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\n` +
          `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
          'Sec-WebSocket-Version: 13\r\n' +
          (opts.deflate ? 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n' : '') +
          '\r\n',
      );
    });
    sock.on('data', (chunk) => {
      const t = nowUs();
      wireBytes += chunk.length;
      let buf = rest ? Buffer.concat([rest, chunk]) : chunk;
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) {
          rest = buf;
          return;
        }
        if (!buf.subarray(0, 13).toString().includes(' 101')) {
          sock.destroy();
          finish(false);
          return;
        }
        upgraded = true;
        buf = buf.subarray(end + 4);
        finish(true);
      }
      rest = scan(i, sock, buf, t);
    });
    sock.on('error', () => finish(false));
    sock.on('close', () => finish(false));
  });
}

async function openAll() {
  let next = 0;
  const worker = async () => {
    while (next < N) {
      const i = next++;
      await open(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, N) }, worker));
}

// ---- flow feedback for the max-rate publisher --------------------------------------------------
let progressFd = null;
const progressBuf = Buffer.alloc(8);
function writeProgress() {
  let low = Infinity;
  for (let i = 0; i < N; i++) if (events[i] < low) low = events[i];
  progressBuf.writeDoubleLE(low, 0);
  fs.writeSync(progressFd, progressBuf, 0, 8, 0);
}

// ---- run ---------------------------------------------------------------------------------------
let expected = -1;
let endAt = 0;
let cpuAtReady = null;

function result(reason) {
  const cpu = process.cpuUsage(cpuAtReady);
  let min = Infinity;
  let max = 0;
  for (let i = 0; i < N; i++) {
    if (events[i] < min) min = events[i];
    if (events[i] > max) max = events[i];
  }
  const out = {
    event: 'result',
    reason,
    received: total,
    wire_bytes: wireBytes,
    per_client_min: min,
    per_client_max: max,
    controls,
    gap_messages: gapMessages,
    seq_breaks: seqBreaks,
    closed_early: closedEarly,
    first_recv_us: firstRecvUs,
    last_recv_us: lastRecvUs,
    cpu_s: (cpu.user + cpu.system) / 1e6,
    lat_us: { n: latCount, p50: percentile(50), p90: percentile(90), p99: percentile(99), p999: percentile(99.9), max: latMax },
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  for (const s of sockets) if (s) s.destroy();
  process.exit(0);
}

function watch() {
  const now = Date.now();
  if (expected >= 0) {
    let all = true;
    for (let i = 0; i < N && all; i++) if (events[i] < expected) all = false;
    if (all) return result('complete');
    const idleUs = nowUs() - Math.max(lastRecvUs, endAt * 1000);
    if (idleUs > opts.idleMs * 1000) return result('idle');
    if (now - endAt > opts.drainMs) return result('drain_limit');
  }
  setTimeout(watch, 5);
}

async function main() {
  if (opts.progress) progressFd = fs.openSync(opts.progress, 'r+');
  const t0 = Date.now();
  await openAll();
  cpuAtReady = process.cpuUsage();
  process.stdout.write(JSON.stringify({ event: 'ready', opened, failed, connect_ms: Date.now() - t0 }) + '\n');
  if (progressFd !== null) setInterval(writeProgress, 2);
  let input = '';
  process.stdin.on('data', (d) => {
    input += d;
    let nl;
    while ((nl = input.indexOf('\n')) >= 0) {
      const line = input.slice(0, nl).trim();
      input = input.slice(nl + 1);
      if (line === 'stop') result('stopped');
      else if (line.startsWith('end ')) {
        expected = Number(line.slice(4));
        endAt = Date.now();
        watch();
      }
    }
  });
}

main();
