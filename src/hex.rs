//! Lower-case hex of bytes: digests in names, paths and records.

pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_digits_per_byte() {
        assert_eq!(super::encode(&[0, 0x0f, 0xab]), "000fab");
        assert_eq!(super::encode(&[]), "");
    }
}
