//! Replacing secret values with `[MASKED]` in streamed output, across chunk boundaries.

pub struct Masker {
    secrets: Vec<Vec<u8>>,
    carry: Vec<u8>,
}

impl Masker {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let _ = secrets;
        todo!("helper B")
    }

    /// Feed a chunk; returns the bytes that are safe to print now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let _ = (&self.secrets, &self.carry, chunk);
        todo!("helper B")
    }

    /// Flush what is held back at the end of the stream.
    pub fn finish(&mut self) -> Vec<u8> {
        todo!("helper B")
    }

    /// Mask a whole string at once.
    pub fn mask_str(&self, s: &str) -> String {
        let _ = s;
        todo!("helper B")
    }
}
