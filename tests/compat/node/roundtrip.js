#!/usr/bin/env node
// The round-trip scenario through kafkajs (pure JavaScript, no flexible versions:
// ApiVersions v2, Metadata v6, Produce v7, Fetch v11, ListOffsets v3, JoinGroup v5).
//
// usage: node roundtrip.js <bootstrap host:port> <spec.json> <assign|group>
//
//   assign  read back with kafkajs's own Fetch request/decoder, partitions assigned
//           explicitly from offset 0 and no consumer group (kafkajs has no public assign
//           API, so this goes through its cluster/broker objects; kafkajs is pinned).
//   group   read back the way kafkajs users do: a consumer group subscribed fromBeginning
//           (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, OffsetFetch, Fetch).
//
// Prints one line `RESULT <json>` on stdout (the shape of strom_compat.scenario.Result),
// or `RESULT {"error": {...}}` naming the step that failed, and exits 1 then.
// kafkajs's own log goes to stderr.

'use strict'

const fs = require('fs')
const { Kafka, CompressionTypes, CompressionCodecs, Partitioners, logLevel } = require('kafkajs')
const { registerCodecs } = require('./codecs')

const WAIT_MS = 30000
const COMPRESSION = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}

const b64 = buffer => (buffer === null || buffer === undefined ? null : Buffer.from(buffer).toString('base64'))
const unb64 = text => (text === null ? null : Buffer.from(text, 'base64'))
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

let currentStep = 'start-up'
async function step(name, fn) {
  currentStep = name
  return await fn()
}

// kafkajs's log goes to stderr; its last errors are kept to explain a step that only timed out.
const recentErrors = []
function stderrLogCreator() {
  return ({ namespace, level, label, log }) => {
    const { message, ...extra } = log
    const line = `[kafkajs ${label} ${namespace}] ${message} ${JSON.stringify(extra)}`
    process.stderr.write(`${line}\n`)
    if (label === 'ERROR' || label === 'WARN') {
      recentErrors.push(line.slice(0, 600))
      if (recentErrors.length > 5) recentErrors.shift()
    }
  }
}

// Spec headers are an ordered list; kafkajs takes an object whose values may be arrays for a
// repeated key. The spec keeps repeated keys adjacent, so this keeps the wire order.
function headersToKafkajs(headers) {
  const out = {}
  for (const [key, value] of headers) {
    const buffer = unb64(value)
    if (out[key] === undefined) out[key] = buffer
    else out[key] = [].concat(out[key], [buffer])
  }
  return out
}

function headersFromKafkajs(headers) {
  const out = []
  for (const [key, value] of Object.entries(headers || {})) {
    for (const item of Array.isArray(value) ? value : [value]) out.push([key, b64(item)])
  }
  return out
}

function toRecord(partition, message) {
  return {
    partition,
    offset: Number(message.offset),
    key: b64(message.key),
    value: b64(message.value),
    headers: headersFromKafkajs(message.headers),
    timestamp: Number(message.timestamp),
  }
}

async function waitFor(description, predicate) {
  const deadline = Date.now() + WAIT_MS
  while (Date.now() < deadline) {
    if (await predicate()) return true
    await sleep(200)
  }
  return false
}

// Explicit assignment without a group: kafkajs's cluster + Fetch (v11 against a broker that
// offers it), from offset 0 until each partition's high watermark.
async function consumeAssigned(kafka, spec) {
  const createCluster = Object.getOwnPropertySymbols(kafka).find(s => s.toString() === 'Symbol(private:Kafka:createCluster)')
  if (!createCluster) throw new Error('kafkajs internals changed: no private:Kafka:createCluster (kafkajs is pinned; check the version)')
  const cluster = kafka[createCluster]({ allowAutoTopicCreation: false, isolationLevel: 0 })
  await cluster.connect()
  try {
    await cluster.addTargetTopic(spec.topic)
    await cluster.refreshMetadata()
    const partitions = Array.from({ length: spec.partitions }, (_, p) => p)
    const leaders = cluster.findLeaderForPartitions(spec.topic, partitions)
    const positions = new Map(partitions.map(p => [p, 0]))
    const done = new Set()
    const records = []
    const deadline = Date.now() + WAIT_MS
    while (done.size < partitions.length && Date.now() < deadline) {
      for (const [nodeId, leaderPartitions] of Object.entries(leaders)) {
        const broker = await cluster.findBroker({ nodeId })
        const wanted = leaderPartitions.filter(p => !done.has(p))
        if (wanted.length === 0) continue
        const responses = await broker.fetch({
          replicaId: -1,
          isolationLevel: 0,
          maxWaitTime: 200,
          minBytes: 1,
          maxBytes: 10485760,
          topics: [{ topic: spec.topic, partitions: wanted.map(p => ({ partition: p, fetchOffset: String(positions.get(p)), maxBytes: 1048576 })) }],
        })
        for (const { partitions: answered } of responses.responses) {
          for (const part of answered) {
            if (part.errorCode !== 0) throw new Error(`Fetch partition ${part.partition}: error code ${part.errorCode}`)
            let position = positions.get(part.partition)
            for (const message of part.messages) {
              // A fetch that starts inside a batch gets the whole batch: skip what is below.
              if (Number(message.offset) < position || message.isControlRecord) continue
              records.push(toRecord(part.partition, message))
              position = Number(message.offset) + 1
            }
            positions.set(part.partition, position)
            if (position >= Number(part.highWatermark)) done.add(part.partition)
          }
        }
      }
    }
    return records
  } finally {
    await cluster.disconnect()
  }
}

async function consumeWithGroup(kafka, spec) {
  const consumer = kafka.consumer({ groupId: `strom-compat-kafkajs-${spec.topic}`, maxWaitTimeInMs: 500, retry: { retries: 3 } })
  const records = []
  let joined = null
  let crashed = null
  consumer.on(consumer.events.GROUP_JOIN, event => (joined = event.payload))
  consumer.on(consumer.events.CRASH, event => (crashed = event.payload.error))
  await consumer.connect()
  try {
    await consumer.subscribe({ topic: spec.topic, fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        records.push(toRecord(partition, message))
      },
    })
    await waitFor('all records', () => crashed || records.length >= spec.messages.length)
    if (crashed) throw crashed
    if (records.length < spec.messages.length) {
      throw new Error(
        `consumed ${records.length} of ${spec.messages.length} records in ${WAIT_MS} ms; ` +
          (joined ? `joined group as ${joined.memberId} (leader ${joined.isLeader}), assigned ${JSON.stringify(joined.memberAssignment)}` : 'never joined the group (no GROUP_JOIN event)') +
          `; last kafkajs errors/warnings: ${JSON.stringify(recentErrors)}`
      )
    }
    await sleep(500) // a duplicate delivered right after the last record would show up here
  } finally {
    await consumer.disconnect()
  }
  return records
}

async function main() {
  const [bootstrap, specPath, mode] = process.argv.slice(2)
  if (!bootstrap || !specPath || !['assign', 'group'].includes(mode)) {
    throw new Error('usage: node roundtrip.js <bootstrap> <spec.json> <assign|group>')
  }
  const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'))
  registerCodecs(CompressionCodecs, CompressionTypes)
  const kafka = new Kafka({
    clientId: 'strom-compat-kafkajs',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    logCreator: stderrLogCreator,
    retry: { retries: 5, initialRetryTime: 100 },
    connectionTimeout: 5000,
    requestTimeout: 30000,
  })
  const admin = kafka.admin()
  await step('connect (ApiVersions, Metadata)', () => admin.connect())

  const created = await step('CreateTopics', async () => {
    await admin.createTopics({ topics: [{ topic: spec.topic, numPartitions: spec.partitions, replicationFactor: 1 }], waitForLeaders: true, timeout: WAIT_MS })
    let count = -1
    await waitFor('partitions', async () => {
      const metadata = await admin.fetchTopicMetadata({ topics: [spec.topic] })
      count = metadata.topics[0].partitions.length
      return count >= spec.partitions
    })
    return count
  })

  const notes = []
  await step(`Produce (compression ${spec.compression})`, async () => {
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false })
    await producer.connect()
    try {
      const answer = await producer.send({
        topic: spec.topic,
        acks: -1,
        timeout: WAIT_MS,
        compression: COMPRESSION[spec.compression],
        messages: spec.messages.map(m => ({
          key: unb64(m.key),
          value: unb64(m.value),
          headers: headersToKafkajs(m.headers),
          timestamp: String(m.timestamp),
        })),
      })
      for (const r of answer) notes.push(`produce answered partition ${r.partition}: baseOffset ${r.baseOffset} errorCode ${r.errorCode}`)
    } finally {
      await producer.disconnect()
    }
  })

  const consumed = await step(
    mode === 'assign' ? 'Fetch (assigned partitions, from beginning, no group)' : 'consumer group subscribe + Fetch (fromBeginning)',
    () => (mode === 'assign' ? consumeAssigned(kafka, spec) : consumeWithGroup(kafka, spec))
  )

  const offsetsForTimes = await step('ListOffsets by timestamp (fetchTopicOffsetsByTimestamp)', async () => {
    const out = []
    for (const timestamp of spec.timestamp_queries) {
      const answer = await admin.fetchTopicOffsetsByTimestamp(spec.topic, timestamp)
      for (const { partition, offset } of answer) out.push([timestamp, partition, Number(offset) < 0 ? null : Number(offset)])
    }
    return out
  })

  const gone = await step('DeleteTopics', async () => {
    await admin.deleteTopics({ topics: [spec.topic], timeout: WAIT_MS })
    return await waitFor('topic gone', async () => !(await admin.listTopics()).includes(spec.topic))
  })
  await admin.disconnect()

  return { created_partitions: created, consumed, delivered: null, offsets_for_times: offsetsForTimes, topic_gone_after_delete: gone, notes }
}

main().then(
  result => {
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
    process.exit(0)
  },
  error => {
    const detail = { step: currentStep, type: error && error.name, message: String(error && error.message), retriable: error && error.retriable, cause: error && error.cause ? String(error.cause.message || error.cause) : undefined }
    process.stdout.write(`RESULT ${JSON.stringify({ error: detail })}\n`)
    process.stderr.write(`${error && error.stack}\n`)
    process.exit(1)
  }
)
