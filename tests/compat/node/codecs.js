'use strict'
// Compression codecs for kafkajs, which ships only gzip. Pure JavaScript / WebAssembly on
// purpose: the native plugins (kafkajs-lz4, @kafkajs/zstd) need node-gyp builds that npm 11
// does not run without approval, and no binary may be downloaded from outside the registry.
//   snappy: kafkajs-snappy (snappyjs; reads xerial-framed and raw snappy)
//   lz4:    lz4js, LZ4 frame format (what Kafka's magic-2 batches use)
//   zstd:   zstd-codec (Emscripten build of the reference zstd, compiled into the package)

const SnappyCodec = require('kafkajs-snappy')
const lz4 = require('lz4js')
const { ZstdCodec } = require('zstd-codec')

let zstdBinding = null
function zstd() {
  if (zstdBinding) return Promise.resolve(zstdBinding)
  return new Promise(resolve =>
    ZstdCodec.run(binding => resolve((zstdBinding = { simple: new binding.Simple(), streaming: new binding.Streaming() })))
  )
}

const Lz4Codec = () => ({
  async compress(encoder) {
    return Buffer.from(lz4.compress(encoder.buffer))
  },
  async decompress(buffer) {
    return Buffer.from(lz4.decompress(buffer))
  },
})

const ZstdCodecForKafkajs = () => ({
  async compress(encoder) {
    return Buffer.from((await zstd()).simple.compress(encoder.buffer, 3))
  },
  async decompress(buffer) {
    // Simple needs the content size in the frame header; streaming producers (Java) omit it.
    const codec = await zstd()
    const out = codec.simple.decompress(buffer) || codec.streaming.decompress(buffer)
    if (!out) throw new Error('zstd: could not decompress batch')
    return Buffer.from(out)
  },
})

function registerCodecs(CompressionCodecs, CompressionTypes) {
  CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
  CompressionCodecs[CompressionTypes.LZ4] = Lz4Codec
  CompressionCodecs[CompressionTypes.ZSTD] = ZstdCodecForKafkajs
}

module.exports = { registerCodecs }
