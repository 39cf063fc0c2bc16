// Publish events to event-gateway's ingest from Node.js: the wire format of docs/wire.md.
//   node producer.mjs [--ingest tcp://127.0.0.1:5556] [--count 5] [--skip-pseq N] [--send-map]
// --skip-pseq N never sends event N (the gateway reports an `upstream` gap: 1 missed);
// --send-map also sends one event as a msgpack map, which the gateway rejects as `decode`.
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { encode } from "@msgpack/msgpack";
import * as zmq from "zeromq";

const { values: opts } = parseArgs({
  options: {
    ingest: { type: "string", default: process.env.EVENT_GATEWAY_INGEST ?? "tcp://127.0.0.1:5556" },
    count: { type: "string", default: "5" },
    "skip-pseq": { type: "string", default: "0" },
    "send-map": { type: "boolean", default: false },
  },
});

// One producer id per process (≤ 64 chars); pseq starts at 1 and grows by 1 per event.
const producer = `node-${randomBytes(4).toString("hex")}`;
let pseq = 0;

/** One event as the array [type, ts, source, entity, payload, producer, pseq]. */
function wireEvent(type, entity, payload) {
  pseq += 1;
  const ts = new Date().toISOString(); // 2026-01-27T10:21:33.123Z: UTC, milliseconds, Z
  return [type, ts, "node", entity, payload, producer, pseq];
}

// XPUB, connected (the gateway binds); `immediate` queues nothing while disconnected.
const sock = new zmq.XPublisher({ immediate: true, sendHighWaterMark: 100000, linger: 2000 });
sock.connect(opts.ingest);
await sock.receive(); // the gateway's subscription (0x01): from here on nothing is dropped
console.log(JSON.stringify({ producer }));

const skip = Number(opts["skip-pseq"]);
for (let i = 0; i < Number(opts.count); i++) {
  const event = wireEvent("task.progress", ["task", "node-demo"], { progress: i, message: `step ${i}` });
  if (event[6] === skip) continue; // lost on purpose: the next event carries a jump
  await sock.send(encode(event));
}
if (opts["send-map"]) {
  // The natural mistake: a map with named fields instead of the positional array.
  const [type, ts, source, entity, payload] = wireEvent("task.progress", ["task", "node-demo"], {});
  await sock.send(encode({ type, ts, source, entity, payload, producer, pseq }));
}
sock.close(); // linger: queued events still leave before the process exits
