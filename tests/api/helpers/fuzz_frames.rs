//! Hostile client frames for the fuzz test, from a seeded PRNG so that any failure replays: random binary,
//! JSON of every wrong shape, text that is not UTF-8, fragments out of order, odd close codes, oversize and
//! fragmented control frames, reserved opcodes and bits, unmasked frames, giant length headers. Each frame
//! says how the server must take it ([`Verdict`]), from RFC 6455 and the README's protocol section, so the
//! test can tell a well-defined end from a crash or a wrong close. The text payloads are `fuzz_json`'s.

use super::fuzz_json::{deep_json, random_json_message, random_text, valid_message};

/// splitmix64: tiny, fast, and the same sequence everywhere for a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True `percent`% of the time.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64 - 1) as usize]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// Between `lo` and `hi` random bytes.
    pub fn bytes_in(&mut self, lo: u64, hi: u64) -> Vec<u8> {
        let n = self.range(lo, hi) as usize;
        self.bytes(n)
    }
}

/// How the server must take a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The session goes on (at most an `error` event).
    Stays,
    /// The server closes with this code (`None`: a close frame without a code, the echo of an empty close).
    Closes(Option<u16>),
    /// The client drops the TCP connection after it (mid-frame): there is nothing to read.
    Dropped,
}

/// One frame (or a broken piece of one) and what must follow it.
#[derive(Debug, Clone)]
pub struct Shot {
    pub kind: &'static str,
    pub bytes: Vec<u8>,
    /// Written in pieces this small (a frame dribbled across reads), or all at once when `None`.
    pub dribble: Option<usize>,
    pub verdict: Verdict,
}

/// A client frame as it goes on the wire: FIN, RSV bits, opcode, masked with a random key unless `mask` is
/// false, the payload length in its shortest form.
pub fn frame(rng: &mut Rng, fin: bool, rsv: u8, opcode: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    let mut f = vec![(if fin { 0x80 } else { 0 }) | (rsv & 0x07) << 4 | (opcode & 0x0F)];
    let m = if mask { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => f.push(m | n as u8),
        n @ 126..=0xFFFF => {
            f.push(m | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(m | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if mask {
        let key = rng.bytes(4);
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

/// The frame sizes of the server under test.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `PARLEY_MAX_TEXT_FRAME_BYTES`
    pub text: usize,
    /// What the codec reads at all (4 × the larger frame limit): beyond it, 1009.
    pub codec: usize,
}

/// Makes the frames of one connection, tracking whether a fragmented message is open (which decides what is
/// legal next).
#[derive(Debug)]
pub struct Generator {
    pub limits: Limits,
    in_fragment: bool,
}

impl Generator {
    pub fn new(limits: Limits) -> Generator {
        Generator { limits, in_fragment: false }
    }

    /// True while a fragmented message is started and not finished.
    pub fn in_fragment(&self) -> bool {
        self.in_fragment
    }

    /// The next frame; `fatal_percent` is how often it is one that ends the connection.
    pub fn next(&mut self, rng: &mut Rng, fatal_percent: u64) -> Shot {
        let mut shot = if rng.chance(fatal_percent) { self.fatal(rng) } else { self.benign(rng) };
        if shot.dribble.is_none() && rng.chance(3) {
            shot.dribble = Some(rng.range(1, 7) as usize);
        }
        shot
    }

    fn shot(kind: &'static str, bytes: Vec<u8>, verdict: Verdict) -> Shot {
        Shot { kind, bytes, dribble: None, verdict }
    }

    /// A frame the session survives.
    fn benign(&mut self, rng: &mut Rng) -> Shot {
        use Verdict::Stays;
        if self.in_fragment {
            // Only continuations and control frames are legal until the message ends.
            return match rng.range(0, 5) {
                0 => {
                    self.in_fragment = false;
                    let payload = rng.bytes_in(0, 300);
                    Self::shot("last fragment", frame(rng, true, 0, 0x0, &payload, true), Stays)
                }
                1 | 2 => {
                    let payload = rng.bytes_in(0, 2000);
                    Self::shot("middle fragment", frame(rng, false, 0, 0x0, &payload, true), Stays)
                }
                3 => {
                    let payload = rng.bytes_in(0, 125);
                    Self::shot("ping inside a fragmented message", frame(rng, true, 0, 0x9, &payload, true), Stays)
                }
                _ => {
                    let payload = rng.bytes_in(0, 125);
                    Self::shot("pong inside a fragmented message", frame(rng, true, 0, 0xA, &payload, true), Stays)
                }
            };
        }
        match rng.range(0, 99) {
            0..=17 => {
                let n = if rng.chance(2) { rng.range(65_537, 80_000) } else { rng.range(0, 2_000) };
                let payload = rng.bytes(n as usize);
                Self::shot("random binary", frame(rng, true, 0, 0x2, &payload, true), Stays)
            }
            18..=47 => {
                let json = random_json_message(rng);
                Self::shot("random JSON", frame(rng, true, 0, 0x1, json.as_bytes(), true), Stays)
            }
            48..=53 => {
                let depth = rng.range(1_000, 10_000) as usize;
                let json = deep_json(rng, depth);
                Self::shot("deeply nested JSON", frame(rng, true, 0, 0x1, json.as_bytes(), true), Stays)
            }
            54..=61 => {
                let text = random_text(rng, 0, 400);
                Self::shot("random UTF-8 text", frame(rng, true, 0, 0x1, text.as_bytes(), true), Stays)
            }
            62..=63 => {
                let n = rng.range(self.limits.text as u64 + 1, self.limits.text as u64 + 20_000) as usize;
                let text = format!(r#"{{"type":"text","text":"{}"}}"#, "x".repeat(n));
                Self::shot("text over the limit", frame(rng, true, 0, 0x1, text.as_bytes(), true), Stays)
            }
            64..=71 => {
                let json = valid_message(rng);
                Self::shot("valid message", frame(rng, true, 0, 0x1, json.as_bytes(), true), Stays)
            }
            72..=77 => {
                let payload = rng.bytes_in(0, 125);
                Self::shot("ping", frame(rng, true, 0, 0x9, &payload, true), Stays)
            }
            78..=81 => {
                let n = *rng.pick(&[0usize, 1, 7, 8, 9, 125]);
                let payload = rng.bytes(n);
                Self::shot("unsolicited pong", frame(rng, true, 0, 0xA, &payload, true), Stays)
            }
            82..=89 => {
                self.in_fragment = true;
                let (opcode, payload) = if rng.chance(50) {
                    // Text fragments that are not UTF-8 either: the first fragment is not checked alone.
                    (0x1, if rng.chance(50) { random_json_message(rng).into_bytes() } else { rng.bytes(50) })
                } else {
                    (0x2, rng.bytes_in(0, 2000))
                };
                Self::shot("first fragment", frame(rng, false, 0, opcode, &payload, true), Stays)
            }
            _ => {
                // A frame in a non-minimal length form, an empty frame: legal, odd.
                let payload = valid_message(rng).into_bytes();
                let mut f = vec![0x81, 0x80 | 127];
                f.extend_from_slice(&(payload.len() as u64).to_be_bytes());
                f.extend_from_slice(&[0, 0, 0, 0]);
                f.extend_from_slice(&payload);
                if rng.chance(50) { Self::shot("non-minimal length", f, Stays) } else { self.empty(rng) }
            }
        }
    }

    fn empty(&mut self, rng: &mut Rng) -> Shot {
        let opcode = *rng.pick(&[0x1u8, 0x2, 0x9, 0xA]);
        Self::shot("empty frame", frame(rng, true, 0, opcode, &[], true), Verdict::Stays)
    }

    /// A frame that ends the connection, with the close code the server must send.
    fn fatal(&mut self, rng: &mut Rng) -> Shot {
        let protocol = Verdict::Closes(Some(1002));
        let shot = match rng.range(0, 13) {
            0 if !self.in_fragment => {
                let mut text = random_json_message(rng).into_bytes();
                let at = rng.range(0, text.len() as u64) as usize;
                text.insert(at, *rng.pick(&[0xFFu8, 0xC0, 0xED, 0x80, 0xF8]));
                Self::shot("text that is not UTF-8", frame(rng, true, 0, 0x1, &text, true), Verdict::Closes(Some(1007)))
            }
            0 | 1 => {
                let opcode = *rng.pick(&[0x3u8, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF]);
                let payload = rng.bytes_in(0, 200);
                Self::shot("reserved opcode", frame(rng, true, 0, opcode, &payload, true), protocol)
            }
            2 => {
                let opcode = *rng.pick(&[0x1u8, 0x2, 0x9]);
                let rsv = rng.range(1, 7) as u8;
                Self::shot("reserved bits", frame(rng, true, rsv, opcode, b"{\"type\":\"ping\"}", true), protocol)
            }
            3 => {
                let opcode = *rng.pick(&[0x1u8, 0x2, 0x9, 0x8]);
                Self::shot("unmasked frame", frame(rng, true, 0, opcode, b"{\"type\":\"ping\"}", false), protocol)
            }
            4 if !self.in_fragment => {
                let payload = rng.bytes_in(0, 100);
                let fin = rng.chance(50);
                Self::shot("continuation without a start", frame(rng, fin, 0, 0x0, &payload, true), protocol)
            }
            4 => {
                let opcode = *rng.pick(&[0x1u8, 0x2]);
                let payload = rng.bytes_in(0, 100);
                Self::shot("new message inside a fragmented one", frame(rng, true, 0, opcode, &payload, true), protocol)
            }
            5 => {
                let opcode = *rng.pick(&[0x8u8, 0x9, 0xA]);
                let payload = rng.bytes_in(126, 5_000);
                Self::shot("oversize control frame", frame(rng, true, 0, opcode, &payload, true), protocol)
            }
            6 => {
                let payload = rng.bytes_in(0, 20);
                Self::shot("fragmented ping", frame(rng, false, 0, 0x9, &payload, true), protocol)
            }
            7 => self.close(rng),
            8 => {
                let mut h = vec![*rng.pick(&[0x82u8, 0x81, 0x02, 0x80]), 0x80 | 127];
                let len = rng.range(self.limits.codec as u64 + 1, u64::MAX);
                h.extend_from_slice(&len.to_be_bytes());
                h.extend_from_slice(&rng.bytes(4));
                h.extend_from_slice(&rng.bytes_in(0, 64));
                Self::shot("giant length header", h, Verdict::Closes(Some(1009)))
            }
            9 => {
                // A whole frame just over what the codec reads: refused at its header all the same.
                let n = rng.range(self.limits.codec as u64 + 1, self.limits.codec as u64 + 1000);
                let mut h = vec![0x82, 0x80 | 127];
                h.extend_from_slice(&n.to_be_bytes());
                h.extend_from_slice(&[0, 0, 0, 0]);
                h.resize(h.len() + 1024, 0x41);
                Self::shot("frame over the codec limit", h, Verdict::Closes(Some(1009)))
            }
            10 | 11 => {
                // The connection drops mid-frame: half a header, or a payload cut short.
                let payload = valid_message(rng).into_bytes();
                let f = frame(rng, true, 0, 0x1, &payload, true);
                let cut = rng.range(1, f.len() as u64 - 1) as usize;
                Self::shot("connection dropped mid-frame", f[..cut].to_vec(), Verdict::Dropped)
            }
            _ => self.close(rng),
        };
        self.in_fragment = false;
        shot
    }

    /// A close frame: a valid one is echoed, anything else is a protocol error.
    fn close(&mut self, rng: &mut Rng) -> Shot {
        match rng.range(0, 5) {
            0 => Self::shot("empty close", frame(rng, true, 0, 0x8, &[], true), Verdict::Closes(None)),
            1 => {
                let b = rng.bytes(1);
                Self::shot("one-byte close", frame(rng, true, 0, 0x8, &b, true), Verdict::Closes(Some(1002)))
            }
            2 => {
                let code = *rng.pick(&[0u16, 1, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]);
                let mut p = code.to_be_bytes().to_vec();
                p.extend_from_slice(random_text(rng, 0, 30).as_bytes());
                p.truncate(125);
                Self::shot("invalid close code", frame(rng, true, 0, 0x8, &p, true), Verdict::Closes(Some(1002)))
            }
            3 => {
                let code = *rng.pick(&[1000u16, 1001, 3000, 4999]);
                let mut p = code.to_be_bytes().to_vec();
                p.extend_from_slice(b"bye \xFF\xFE");
                Self::shot("close reason not UTF-8", frame(rng, true, 0, 0x8, &p, true), Verdict::Closes(Some(1002)))
            }
            _ => {
                let code =
                    *rng.pick(&[1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1014, 3000, 4000, 4999]);
                let code = if rng.chance(30) { rng.range(3000, 4999) as u16 } else { code };
                let mut p = code.to_be_bytes().to_vec();
                let mut reason = random_text(rng, 0, 40);
                while reason.len() > 123 {
                    reason.pop();
                }
                p.extend_from_slice(reason.as_bytes());
                Self::shot("valid close", frame(rng, true, 0, 0x8, &p, true), Verdict::Closes(Some(code)))
            }
        }
    }
}
