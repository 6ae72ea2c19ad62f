//! A minimal protobuf writer for the one message PJRT needs from us: `xla.CompileOptionsProto`.
//!
//! Field numbers (checked against openxla/xla `xla/pjrt/proto/compile_options.proto`):
//!
//! ```text
//! CompileOptionsProto          executable_build_options = 3 (message), env_option_overrides = 7 (map<string, OptionOverrideProto>)
//! ExecutableBuildOptionsProto  device_ordinal = 1 (int64), num_replicas = 4 (int64), num_partitions = 5 (int64)
//! OptionOverrideProto          oneof { string_field = 1, bool_field = 2, int_field = 3 (int64), double_field = 4 }
//! ```
//!
//! A `map<K, V>` field is encoded as a repeated message field whose entries have `key = 1` and `value = 2`.

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn varint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.buf.push(byte);
                return;
            }
            self.buf.push(byte | 0x80);
        }
    }

    fn tag(&mut self, field: u32, wire_type: u32) {
        self.varint(u64::from(field << 3 | wire_type));
    }

    /// `int64` (negative values take ten bytes, as protobuf specifies).
    pub(crate) fn int64(&mut self, field: u32, v: i64) {
        self.tag(field, VARINT);
        self.varint(v as u64);
    }

    pub(crate) fn bool(&mut self, field: u32, v: bool) {
        self.tag(field, VARINT);
        self.varint(u64::from(v));
    }

    pub(crate) fn double(&mut self, field: u32, v: f64) {
        self.tag(field, FIXED64);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn bytes(&mut self, field: u32, v: &[u8]) {
        self.tag(field, LEN);
        self.varint(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    pub(crate) fn string(&mut self, field: u32, v: &str) {
        self.bytes(field, v.as_bytes());
    }

    /// An embedded message, written by `f` into a fresh writer.
    pub(crate) fn message(&mut self, field: u32, f: impl FnOnce(&mut Writer)) {
        let mut inner = Writer::default();
        f(&mut inner);
        self.bytes(field, &inner.buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        let mut w = Writer::default();
        w.int64(1, 1);
        w.int64(1, 300);
        w.int64(1, -1);
        assert_eq!(
            w.into_bytes(),
            [0x08, 0x01, 0x08, 0xac, 0x02, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }

    #[test]
    fn nested_and_strings() {
        let mut w = Writer::default();
        w.message(3, |m| {
            m.string(1, "ab");
            m.bool(2, true);
            m.double(4, 1.0);
        });
        assert_eq!(
            w.into_bytes(),
            [0x1a, 0x0f, 0x0a, 0x02, b'a', b'b', 0x10, 0x01, 0x21, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]
        );
    }
}
