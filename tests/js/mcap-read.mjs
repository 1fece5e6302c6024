// Reads an MCAP file with @mcap/core (Foxglove's reference TypeScript reader, independent of
// hkit) and checks it against the messages hcat printed as JSON lines from the same inputs:
// every message with its topic, log_time (= received_at), publish_time (= the payload's
// measured_at, else received_at) and bytes. Both readers are used: the stream reader (file
// order, every CRC checked) and the indexed reader (summary, chunk and message indexes, as
// viewers seek), including a seek to the middle of the span.
// Usage: node mcap-read.mjs FILE.mcap EXPECTED.jsonl  -> prints a summary line; exit 1 on a
// mismatch with the first difference.
import { McapIndexedReader, McapStreamReader } from "@mcap/core";
import { open, readFile } from "node:fs/promises";

const [mcapPath, jsonlPath] = process.argv.slice(2);

function fail(what) {
  console.error(`mcap-read: ${what}`);
  process.exit(1);
}

// "2026-02-02T00:00:03.563389949Z" -> nanoseconds since the epoch, exactly (BigInt)
function rfc3339Ns(text) {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(text);
  if (!m) fail(`bad time '${text}'`);
  const seconds = BigInt(Date.parse(m[1] + m[3])) / 1000n;
  return seconds * 1000000000n + BigInt((m[2] ?? "").padEnd(9, "0"));
}

function expectedFrom(line) {
  const rec = JSON.parse(line);
  const bytes =
    rec.payload_b64 !== undefined
      ? Buffer.from(rec.payload_b64, "base64")
      : Buffer.from(rec.payload ?? "", "utf8");
  const logTime = rfc3339Ns(rec.received_at);
  let publishTime = logTime;
  let isJson = false;
  try {
    const value = JSON.parse(bytes.toString("utf8"));
    isJson = bytes.length > 0 && Buffer.from(bytes.toString("utf8"), "utf8").equals(bytes);
    if (value && typeof value.measured_at === "string" && !Number.isNaN(Date.parse(value.measured_at)))
      publishTime = BigInt(Date.parse(value.measured_at)) * 1000000n;
  } catch {
    isJson = false;
  }
  return { topic: rec.topic, logTime, publishTime, bytes, encoding: isJson ? "json" : "x-hkit-bytes" };
}

function key(m) {
  return `${m.topic}\u0000${m.logTime}\u0000${m.publishTime}\u0000${Buffer.from(m.bytes).toString("hex")}`;
}

function compare(label, got, want) {
  if (got.length !== want.length) fail(`${label}: ${got.length} messages, expected ${want.length}`);
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    for (const field of ["topic", "logTime", "publishTime", "encoding"])
      if (g[field] !== w[field])
        fail(`${label}: message ${i + 1}: ${field} is ${g[field]}, expected ${w[field]} (topic ${w.topic})`);
    if (!Buffer.from(g.bytes).equals(w.bytes))
      fail(`${label}: message ${i + 1}: bytes differ (topic ${w.topic})`);
  }
}

const expected = (await readFile(jsonlPath, "utf8")).split("\n").filter((l) => l).map(expectedFrom);
const file = await readFile(mcapPath);

// 1. the stream reader: file order, which is arrival order; CRCs checked
const stream = new McapStreamReader({ validateCrcs: true });
stream.append(file);
const channels = new Map();
const streamed = [];
let metadata = 0;
for (let rec; (rec = stream.nextRecord()); ) {
  if (rec.type === "Channel") channels.set(rec.id, rec);
  else if (rec.type === "Metadata" && rec.name === "hkit") metadata++;
  else if (rec.type === "Message") {
    const ch = channels.get(rec.channelId);
    if (!ch) fail(`message on channel ${rec.channelId} before its Channel record`);
    streamed.push({ topic: ch.topic, encoding: ch.messageEncoding, logTime: rec.logTime, publishTime: rec.publishTime, bytes: rec.data });
  }
}
if (!stream.done()) fail("stream reader: file not complete");
compare("stream reader", streamed, expected);
if (metadata !== 1) fail(`expected one Metadata record "hkit", found ${metadata}`);

// 2. the indexed reader: summary, chunk indexes, message indexes (log time order)
const handle = await open(mcapPath, "r");
const readable = {
  size: async () => BigInt((await handle.stat()).size),
  read: async (offset, size) => {
    const buf = Buffer.alloc(Number(size));
    await handle.read(buf, 0, Number(size), Number(offset));
    return buf;
  },
};
const reader = await McapIndexedReader.Initialize({ readable });
if (!reader.statistics) fail("no Statistics record");
if (reader.statistics.messageCount !== BigInt(expected.length))
  fail(`statistics: ${reader.statistics.messageCount} messages, expected ${expected.length}`);
if (reader.chunkIndexes.length === 0 && expected.length) fail("no chunk indexes");
const topics = new Set(expected.map((m) => m.topic));
const summaryTopics = new Set([...reader.channelsById.values()].map((c) => c.topic));
if (summaryTopics.size !== topics.size) fail(`summary has ${summaryTopics.size} topics, expected ${topics.size}`);
for (const c of reader.channelsById.values())
  if (c.schemaId !== 0) fail(`channel ${c.topic} has schema ${c.schemaId}, expected none`);
const indexed = [];
for await (const rec of reader.readMessages({ validateCrcs: true })) {
  const ch = reader.channelsById.get(rec.channelId);
  indexed.push({ topic: ch.topic, encoding: ch.messageEncoding, logTime: rec.logTime, publishTime: rec.publishTime, bytes: rec.data });
}
const byKey = (a, b) => (a.logTime < b.logTime ? -1 : a.logTime > b.logTime ? 1 : key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
compare("indexed reader", [...indexed].sort(byKey), [...expected].sort(byKey));
for (let i = 1; i < indexed.length; i++)
  if (indexed[i].logTime < indexed[i - 1].logTime) fail("indexed reader: messages not in log time order");

// 3. a seek: from the middle of the span, exactly the messages at or after it
const times = expected.map((m) => m.logTime).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
const middle = times.length ? times[Math.floor(times.length / 2)] : 0n;
let fromMiddle = 0;
for await (const rec of reader.readMessages({ startTime: middle })) {
  if (rec.logTime < middle) fail("seek returned a message before its start time");
  fromMiddle++;
}
const wantFromMiddle = times.filter((t) => t >= middle).length;
if (fromMiddle !== wantFromMiddle) fail(`seek: ${fromMiddle} messages, expected ${wantFromMiddle}`);
await handle.close();

console.log(`mcap-read: ok: ${expected.length} messages, ${reader.channelsById.size} channels, ${reader.chunkIndexes.length} chunks, seek from the middle: ${fromMiddle}`);
