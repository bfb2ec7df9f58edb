//! Reading the fuzz input: a byte cursor that reads zeros past the end, and
//! little-endian integers at an offset of a buffer, zero where the buffer is short.

/// Reads the fuzz input front to back; past the end every byte reads as zero.
pub(super) struct Input<'a> {
    pub(super) data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    pub(super) fn new(data: &'a [u8]) -> Input<'a> {
        Input { data, pos: 0 }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub(super) fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        b
    }

    pub(super) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }

    pub(super) fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.u8();
        }
        u64::from_le_bytes(b)
    }
}

pub(super) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut out = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        out.copy_from_slice(s);
    }
    u64::from_le_bytes(out)
}

pub(super) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut out = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        out.copy_from_slice(s);
    }
    u32::from_le_bytes(out)
}
