// The one Kafka request the console test needs that the strom CLI does not make: an admin
// OffsetCommit (v2: generation -1, no member), as a consumer does when it catches up.
// Encoded by hand on Node's net module; a dozen fields, no client library.
import net from "node:net";

function str(text) {
  const bytes = Buffer.from(text, "utf8");
  const length = Buffer.alloc(2);
  length.writeInt16BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

function i16(v) { const b = Buffer.alloc(2); b.writeInt16BE(v); return b; }
function i32(v) { const b = Buffer.alloc(4); b.writeInt32BE(v); return b; }
function i64(v) { const b = Buffer.alloc(8); b.writeBigInt64BE(BigInt(v)); return b; }

function offsetCommitV2(correlationId, group, topic, offsets) {
  const body = Buffer.concat([
    str(group), i32(-1), str(""), i64(-1), // group, generation, member, retention
    i32(1), str(topic), i32(offsets.length),
    ...offsets.map(([partition, offset]) => Buffer.concat([i32(partition), i64(offset), i16(-1)])),
  ]);
  const header = Buffer.concat([i16(8), i16(2), i32(correlationId), str("strom-console-test")]);
  return Buffer.concat([i32(header.length + body.length), header, body]);
}

function request(port, frame) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let data = Buffer.alloc(0);
    socket.setTimeout(10000, () => { socket.destroy(); reject(new Error("OffsetCommit timed out")); });
    socket.on("error", reject);
    socket.on("data", (chunk) => {
      data = Buffer.concat([data, chunk]);
      if (data.length >= 4 && data.length >= 4 + data.readInt32BE(0)) {
        socket.end();
        resolve(data.subarray(4, 4 + data.readInt32BE(0)));
      }
    });
    socket.write(frame);
  });
}

// Error codes of the (single-topic) OffsetCommit v2 response, per partition.
function errorCodes(response) {
  let at = 4; // correlation id
  const topics = response.readInt32BE(at); at += 4;
  const codes = [];
  for (let t = 0; t < topics; t++) {
    at += 2 + response.readInt16BE(at);
    const partitions = response.readInt32BE(at); at += 4;
    for (let p = 0; p < partitions; p++) {
      at += 4;
      codes.push(response.readInt16BE(at)); at += 2;
    }
  }
  return codes;
}

/// Commits `offsets` ([[partition, offset], ...]) for `group`, retrying while the
/// coordinator loads (the first commit creates __consumer_offsets).
export async function commitOffsets(port, group, topic, offsets) {
  const deadline = Date.now() + 20000;
  for (let attempt = 1; ; attempt++) {
    const codes = errorCodes(await request(port, offsetCommitV2(attempt, group, topic, offsets)));
    if (codes.every((c) => c === 0)) return;
    if (Date.now() > deadline) throw new Error(`OffsetCommit failed with error codes ${codes}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
