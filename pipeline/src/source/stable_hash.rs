//! A hash that every process and run agrees on, for routing records to workers (cluster
//! workers must send one vehicle's records to the same place).

/// FNV-1a, 64 bits, over `bytes`.
pub fn fnv1a<'a>(bytes: impl IntoIterator<Item = &'a u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h: u64, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Which worker keeps a vehicle's state in operators exchanged by vehicle.
pub fn vehicle_route(company: &str, vehicle: &str) -> u64 {
    fnv1a(
        company
            .as_bytes()
            .iter()
            .chain(&[0xff])
            .chain(vehicle.as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published FNV-1a test vectors: the hash must never change, or a restarted cluster
    /// would route vehicles elsewhere than its older processes.
    #[test]
    fn matches_the_published_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
