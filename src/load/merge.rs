//! GitLab's deep merge for `include` and `extends`: mappings merge key by key
//! (recursively), everything else — lists included — is replaced by the overriding value.

use crate::load::yaml::{Mapping, Value};

/// Merge `over` into `base`; `over` wins. Keys new to `base` are appended in `over`'s order.
pub fn deep_merge(base: &mut Mapping, over: Mapping) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Mapping(b)), Value::Mapping(o)) => deep_merge(b, o),
            (Some(slot), v) => *slot = v,
            (None, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_merge_lists_replace() {
        let mut a: Mapping =
            serde_yaml::from_str("v: {A: 1, B: 1}\nscript: [a, b]\nimage: x").unwrap();
        let b: Mapping = serde_yaml::from_str("v: {B: 2, C: 2}\nscript: [c]").unwrap();
        deep_merge(&mut a, b);
        let want: Mapping =
            serde_yaml::from_str("v: {A: 1, B: 2, C: 2}\nscript: [c]\nimage: x").unwrap();
        assert_eq!(a, want);
    }
}
