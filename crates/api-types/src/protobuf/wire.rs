//! The protobuf wire format: splitting a message into (field number, value) pairs.

use std::collections::BTreeMap;

use super::DecodeError;

/// One encoded field value, borrowed from the message buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// The fields of one message grouped by field number, each in wire order.
pub(super) type Fields<'a> = BTreeMap<u32, Vec<WireValue<'a>>>;

/// Splits `buf` into its fields. Unknown fields are kept (the caller ignores them); groups,
/// which Kubernetes never uses, are rejected.
pub(super) fn parse(buf: &[u8]) -> Result<Fields<'_>, DecodeError> {
    let mut fields = Fields::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = read_varint(buf, &mut pos)?;
        let number = u32::try_from(key >> 3).map_err(|_| DecodeError::BadFieldNumber)?;
        if number == 0 {
            return Err(DecodeError::BadFieldNumber);
        }
        let value = match key & 7 {
            0 => WireValue::Varint(read_varint(buf, &mut pos)?),
            1 => WireValue::Fixed64(u64::from_le_bytes(take_array(buf, &mut pos)?)),
            2 => {
                let len = usize::try_from(read_varint(buf, &mut pos)?)
                    .map_err(|_| DecodeError::Truncated)?;
                let end = pos
                    .checked_add(len)
                    .filter(|&end| end <= buf.len())
                    .ok_or(DecodeError::Truncated)?;
                let bytes = &buf[pos..end];
                pos = end;
                WireValue::Bytes(bytes)
            }
            5 => WireValue::Fixed32(u32::from_le_bytes(take_array(buf, &mut pos)?)),
            wire_type => {
                return Err(DecodeError::BadWireType {
                    field: number,
                    wire_type,
                });
            }
        };
        fields.entry(number).or_default().push(value);
    }
    Ok(fields)
}

pub(super) fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos).ok_or(DecodeError::Truncated)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintOverflow)
}

fn take_array<const N: usize>(buf: &[u8], pos: &mut usize) -> Result<[u8; N], DecodeError> {
    let end = pos
        .checked_add(N)
        .filter(|&end| end <= buf.len())
        .ok_or(DecodeError::Truncated)?;
    let mut out = [0u8; N];
    out.copy_from_slice(&buf[*pos..end]);
    *pos = end;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_wire_type_and_groups_repeated_fields() {
        // 1: varint 300, 2: "hi", 2: "", 3: fixed64 1, 4: fixed32 2
        let buf = [
            0x08, 0xac, 0x02, 0x12, 0x02, b'h', b'i', 0x12, 0x00, 0x19, 1, 0, 0, 0, 0, 0, 0, 0,
            0x25, 2, 0, 0, 0,
        ];
        let fields = parse(&buf).expect("valid");
        assert_eq!(fields[&1], vec![WireValue::Varint(300)]);
        assert_eq!(
            fields[&2],
            vec![WireValue::Bytes(b"hi"), WireValue::Bytes(b"")]
        );
        assert_eq!(fields[&3], vec![WireValue::Fixed64(1)]);
        assert_eq!(fields[&4], vec![WireValue::Fixed32(2)]);
    }

    #[test]
    fn rejects_truncated_and_malformed_input() {
        assert!(matches!(
            parse(&[0x12, 0x05, b'a']),
            Err(DecodeError::Truncated)
        ));
        assert!(matches!(parse(&[0x08]), Err(DecodeError::Truncated)));
        assert!(matches!(
            parse(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::VarintOverflow)
        ));
        assert!(matches!(
            parse(&[0x0b]),
            Err(DecodeError::BadWireType {
                field: 1,
                wire_type: 3
            })
        ));
        assert!(matches!(
            parse(&[0x00, 0x00]),
            Err(DecodeError::BadFieldNumber)
        ));
    }
}
