// MPEG audio Layer III framing: parley forwards the provider's MP3 bytes in chunks that are not aligned to
// MPEG frames, while a WebCodecs AudioDecoder wants one whole frame per chunk. `Mp3Framer` buffers bytes and
// hands out whole frames, skipping ID3v2 tags, Xing/Info/VBRI header frames (they decode to silence) and
// bytes that are not a frame (resynchronising on the next valid header).

const MPEG1_KBPS = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const MPEG2_KBPS = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
const MPEG1_RATES = [44100, 48000, 32000];

/**
 * Reads a Layer III frame header at `off`.
 * @returns {{sampleRate:number, channels:number, samples:number, length:number, mpeg1:boolean}|null}
 */
export function parseHeader(b, off = 0) {
  if (off + 4 > b.length) return null;
  const b1 = b[off + 1];
  const b2 = b[off + 2];
  if (b[off] !== 0xff || (b1 & 0xe0) !== 0xe0 || ((b1 >> 1) & 0x03) !== 0x01) return null;
  const version = (b1 >> 3) & 0x03; // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
  if (version === 1) return null;
  const brIndex = b2 >> 4;
  const srIndex = (b2 >> 2) & 0x03;
  if (brIndex === 0 || brIndex === 15 || srIndex === 3) return null;
  const mpeg1 = version === 3;
  const kbps = mpeg1 ? MPEG1_KBPS[brIndex] : MPEG2_KBPS[brIndex];
  const sampleRate = MPEG1_RATES[srIndex] / (mpeg1 ? 1 : version === 2 ? 2 : 4);
  const padding = (b2 >> 1) & 0x01;
  const length = Math.floor(((mpeg1 ? 144 : 72) * kbps * 1000) / sampleRate) + padding;
  const channels = b[off + 3] >> 6 === 3 ? 1 : 2;
  return { sampleRate, channels, samples: mpeg1 ? 1152 : 576, length, mpeg1 };
}

/** True for a Xing/Info or VBRI header frame: metadata that decodes to a frame of silence. */
function isInfoFrame(b, off, h) {
  if (h.length < 40) return false;
  const sideInfo = h.mpeg1 ? (h.channels === 1 ? 17 : 32) : h.channels === 1 ? 9 : 17;
  const at = off + 4 + sideInfo;
  const tag = String.fromCharCode(b[at], b[at + 1], b[at + 2], b[at + 3]);
  const vbri = String.fromCharCode(b[off + 36], b[off + 37], b[off + 38], b[off + 39]);
  return tag === "Xing" || tag === "Info" || vbri === "VBRI";
}

export class Mp3Framer {
  constructor() {
    this.pending = new Uint8Array(0);
    /** Bytes skipped because they were not part of a frame (tags, garbage). */
    this.skippedBytes = 0;
    this.synced = false;
  }

  /**
   * Adds bytes; returns the whole frames now available, each `{header, data}` (`data` is a copy).
   * @param {Uint8Array} bytes
   */
  push(bytes) {
    const joined = new Uint8Array(this.pending.length + bytes.length);
    joined.set(this.pending);
    joined.set(bytes, this.pending.length);
    const frames = [];
    let off = 0;
    while (off + 4 <= joined.length) {
      if (joined[off] === 0x49 && joined[off + 1] === 0x44 && joined[off + 2] === 0x33) {
        // ID3v2: "ID3", version (2), flags, then a 28-bit synchsafe size (header 10 bytes, footer 10 more).
        if (off + 10 > joined.length) break;
        const size =
          ((joined[off + 6] & 0x7f) << 21) | ((joined[off + 7] & 0x7f) << 14) | ((joined[off + 8] & 0x7f) << 7) |
          (joined[off + 9] & 0x7f);
        const total = 10 + size + (joined[off + 5] & 0x10 ? 10 : 0);
        if (off + total > joined.length) break;
        this.skippedBytes += total;
        off += total;
        continue;
      }
      const h = parseHeader(joined, off);
      if (!h) {
        this.synced = false;
        this.skippedBytes++;
        off++;
        continue;
      }
      if (off + h.length > joined.length) break;
      // Out of sync, a lone 0xFFE pattern inside data could pass for a header: trust it only if the next
      // frame starts right after it (or the stream has no more bytes yet to tell).
      if (!this.synced && off + h.length + 4 <= joined.length && !parseHeader(joined, off + h.length)) {
        this.skippedBytes++;
        off++;
        continue;
      }
      this.synced = true;
      if (!isInfoFrame(joined, off, h)) frames.push({ header: h, data: joined.slice(off, off + h.length) });
      off += h.length;
    }
    this.pending = joined.slice(off);
    return frames;
  }
}
