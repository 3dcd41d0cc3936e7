//! A writer of small, flat parquet tables: one row group, one plain, uncompressed data page
//! per column, every column nullable (as pyarrow writes a table built from Python lists).
//!
//! Why our own: the one table cargo v6 writes is the vantage6 5.x node's session state (five
//! columns, a row per step of a run); the `parquet` crate (arrow-rs) would add dozens of
//! crates and their build time to every install for a few hundred bytes. The format is
//! <https://github.com/apache/parquet-format> (`parquet.thrift`, thrift's compact protocol);
//! what this writes is read back by pyarrow and pandas in the 5.x tests (`tests/v5.rs`).

/// A column of a table.
pub struct Column<'a> {
    /// The column's name in the schema.
    pub name: &'a str,
    /// Its values, one per row.
    pub values: Values<'a>,
}

/// The values of one column: the types the session state needs.
pub enum Values<'a> {
    /// UTF-8 strings (parquet `BYTE_ARRAY` with the `STRING` logical type).
    Utf8(Vec<&'a str>),
    /// Instants in microseconds since the Unix epoch, in UTC (`INT64`, `TIMESTAMP(MICROS,
    /// true)`: pandas reads it as `datetime64[us, UTC]`).
    TimestampMicros(Vec<i64>),
}

impl Values<'_> {
    fn len(&self) -> usize {
        match self {
            Values::Utf8(v) => v.len(),
            Values::TimestampMicros(v) => v.len(),
        }
    }

    /// The physical type, and the converted type older readers go by.
    fn types(&self) -> (i64, i64) {
        match self {
            Values::Utf8(_) => (TYPE_BYTE_ARRAY, CONVERTED_UTF8),
            Values::TimestampMicros(_) => (TYPE_INT64, CONVERTED_TIMESTAMP_MICROS),
        }
    }
}

// Thrift compact protocol type ids.
const I32: u8 = 5;
const I64: u8 = 6;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const STRUCT: u8 = 12;
const TRUE: u8 = 1;

// parquet.thrift enum values.
const TYPE_INT64: i64 = 2;
const TYPE_BYTE_ARRAY: i64 = 6;
const OPTIONAL: i64 = 1;
const CONVERTED_UTF8: i64 = 0;
const CONVERTED_TIMESTAMP_MICROS: i64 = 10;
const ENCODING_PLAIN: i64 = 0;
const ENCODING_RLE: i64 = 3;
const UNCOMPRESSED: i64 = 0;
const DATA_PAGE: i64 = 0;

const MAGIC: &[u8] = b"PAR1";

/// The table as a parquet file, or `None` when its columns differ in length (or a value
/// is over 4 GiB, which parquet's plain encoding cannot hold).
pub fn write(columns: &[Column]) -> Option<Vec<u8>> {
    let rows = columns.first().map_or(0, |c| c.values.len());
    if columns.iter().any(|c| c.values.len() != rows) {
        return None;
    }
    let rows_i64 = i64::try_from(rows).ok()?;
    let mut file = MAGIC.to_vec();
    let mut chunks = Vec::new();
    for column in columns {
        let offset = i64::try_from(file.len()).ok()?;
        let data = page_data(&column.values, rows)?;
        let mut header = Compact::default();
        header.struct_begin();
        header.i32_field(1, DATA_PAGE);
        header.i32_field(2, i64::try_from(data.len()).ok()?);
        header.i32_field(3, i64::try_from(data.len()).ok()?);
        header.field(5, STRUCT);
        header.struct_begin();
        header.i32_field(1, rows_i64);
        header.i32_field(2, ENCODING_PLAIN);
        header.i32_field(3, ENCODING_RLE);
        header.i32_field(4, ENCODING_RLE);
        header.struct_end();
        header.struct_end();
        let size = i64::try_from(header.bytes.len() + data.len()).ok()?;
        file.extend_from_slice(&header.bytes);
        file.extend_from_slice(&data);
        chunks.push((column, offset, size));
    }

    let mut meta = Compact::default();
    meta.struct_begin();
    meta.i32_field(1, 1); // version
    meta.list_field(2, STRUCT, columns.len() + 1);
    meta.struct_begin(); // the root of the schema
    meta.binary_field(4, b"schema");
    meta.i32_field(5, i64::try_from(columns.len()).ok()?);
    meta.struct_end();
    for column in columns {
        let (physical, converted) = column.values.types();
        meta.struct_begin();
        meta.i32_field(1, physical);
        meta.i32_field(3, OPTIONAL);
        meta.binary_field(4, column.name.as_bytes());
        meta.i32_field(6, converted);
        meta.field(10, STRUCT); // LogicalType, a union
        meta.struct_begin();
        match column.values {
            Values::Utf8(_) => {
                meta.field(1, STRUCT); // STRING
                meta.struct_begin();
                meta.struct_end();
            }
            Values::TimestampMicros(_) => {
                meta.field(8, STRUCT); // TIMESTAMP
                meta.struct_begin();
                meta.bool_true_field(1); // isAdjustedToUTC
                meta.field(2, STRUCT); // unit, a union
                meta.struct_begin();
                meta.field(2, STRUCT); // MICROS
                meta.struct_begin();
                meta.struct_end();
                meta.struct_end();
                meta.struct_end();
            }
        }
        meta.struct_end();
        meta.struct_end();
    }
    meta.i64_field(3, rows_i64);
    meta.list_field(4, STRUCT, 1);
    meta.struct_begin(); // the one row group
    meta.list_field(1, STRUCT, columns.len());
    let mut total = 0;
    for (column, offset, size) in &chunks {
        total += size;
        let (physical, _) = column.values.types();
        meta.struct_begin(); // ColumnChunk
        meta.i64_field(2, *offset);
        meta.field(3, STRUCT); // ColumnMetaData
        meta.struct_begin();
        meta.i32_field(1, physical);
        meta.list_field(2, I32, 2);
        meta.varint_zigzag(ENCODING_PLAIN);
        meta.varint_zigzag(ENCODING_RLE);
        meta.list_field(3, BINARY, 1);
        meta.binary(column.name.as_bytes());
        meta.i32_field(4, UNCOMPRESSED);
        meta.i64_field(5, rows_i64);
        meta.i64_field(6, *size);
        meta.i64_field(7, *size);
        meta.i64_field(9, *offset);
        meta.struct_end();
        meta.struct_end();
    }
    meta.i64_field(2, total);
    meta.i64_field(3, rows_i64);
    meta.struct_end();
    meta.binary_field(6, b"cargo-v6");
    meta.struct_end();

    file.extend_from_slice(&meta.bytes);
    file.extend_from_slice(&u32::try_from(meta.bytes.len()).ok()?.to_le_bytes());
    file.extend_from_slice(MAGIC);
    Some(file)
}

/// A data page's body: the definition levels (every value present), then the values.
fn page_data(values: &Values, rows: usize) -> Option<Vec<u8>> {
    // One RLE run of `rows` ones, bit width 1; prefixed by its length (data page v1).
    let mut levels = Vec::new();
    varint(&mut levels, u64::try_from(rows).ok()? << 1);
    levels.push(1);
    let mut data = u32::try_from(levels.len()).ok()?.to_le_bytes().to_vec();
    data.extend_from_slice(&levels);
    match values {
        Values::Utf8(strings) => {
            for s in strings {
                data.extend_from_slice(&u32::try_from(s.len()).ok()?.to_le_bytes());
                data.extend_from_slice(s.as_bytes());
            }
        }
        Values::TimestampMicros(instants) => {
            for t in instants {
                data.extend_from_slice(&t.to_le_bytes());
            }
        }
    }
    Some(data)
}

/// Thrift's compact protocol, the part parquet's metadata needs.
#[derive(Default)]
struct Compact {
    bytes: Vec<u8>,
    /// The last field id of each open struct (field ids are written as deltas).
    last_ids: Vec<i16>,
}

impl Compact {
    fn struct_begin(&mut self) {
        self.last_ids.push(0);
    }

    fn struct_end(&mut self) {
        self.bytes.push(0);
        self.last_ids.pop();
    }

    fn field(&mut self, id: i16, kind: u8) {
        let last = self.last_ids.last().copied().unwrap_or(0);
        let delta = id - last;
        if (1..=15).contains(&delta) {
            self.bytes
                .push((u8::try_from(delta).unwrap_or(0) << 4) | kind);
        } else {
            self.bytes.push(kind);
            self.varint_zigzag(i64::from(id));
        }
        if let Some(last) = self.last_ids.last_mut() {
            *last = id;
        }
    }

    fn i32_field(&mut self, id: i16, value: i64) {
        self.field(id, I32);
        self.varint_zigzag(value);
    }

    fn i64_field(&mut self, id: i16, value: i64) {
        self.field(id, I64);
        self.varint_zigzag(value);
    }

    fn bool_true_field(&mut self, id: i16) {
        self.field(id, TRUE);
    }

    fn binary_field(&mut self, id: i16, value: &[u8]) {
        self.field(id, BINARY);
        self.binary(value);
    }

    fn list_field(&mut self, id: i16, element: u8, len: usize) {
        self.field(id, LIST);
        if len < 15 {
            self.bytes
                .push((u8::try_from(len).unwrap_or(0) << 4) | element);
        } else {
            self.bytes.push(0xf0 | element);
            varint(&mut self.bytes, len as u64);
        }
    }

    fn binary(&mut self, value: &[u8]) {
        varint(&mut self.bytes, value.len() as u64);
        self.bytes.extend_from_slice(value);
    }

    fn varint_zigzag(&mut self, value: i64) {
        varint(&mut self.bytes, ((value << 1) ^ (value >> 63)) as u64);
    }
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Vec<u8> {
        write(&[
            Column {
                name: "action",
                values: Values::Utf8(vec!["", "data_extraction"]),
            },
            Column {
                name: "timestamp",
                values: Values::TimestampMicros(vec![981_173_106_070_809, -1]),
            },
        ])
        .unwrap()
    }

    #[test]
    fn a_file_starts_and_ends_with_the_magic_and_its_footer_length() {
        let file = table();
        assert_eq!(&file[..4], MAGIC);
        assert_eq!(&file[file.len() - 4..], MAGIC);
        let footer = u32::from_le_bytes(file[file.len() - 8..file.len() - 4].try_into().unwrap());
        // The footer begins after the last column's page: its first field is `version` = 1.
        let start = file.len() - 8 - footer as usize;
        assert_eq!(&file[start..start + 2], &[0x15, 0x02]);
    }

    #[test]
    fn values_are_written_plain_after_their_definition_levels() {
        let file = table();
        let strings = b"\x00\x00\x00\x00\x0f\x00\x00\x00data_extraction";
        assert!(file.windows(strings.len()).any(|w| w == strings));
        let micros = 981_173_106_070_809_i64.to_le_bytes();
        assert!(file.windows(8).any(|w| w == micros));
        // Two rows present: levels `[2, 0, 0, 0]` (length) then run header 4 (= 2 << 1), 1.
        assert!(file.windows(6).any(|w| w == [2, 0, 0, 0, 4, 1]));
    }

    #[test]
    fn columns_of_different_lengths_are_refused() {
        let uneven = write(&[
            Column {
                name: "a",
                values: Values::Utf8(vec!["x"]),
            },
            Column {
                name: "b",
                values: Values::Utf8(vec![]),
            },
        ]);
        assert!(uneven.is_none());
    }

    #[test]
    fn varints_and_zigzag_follow_thrift() {
        let mut c = Compact::default();
        c.varint_zigzag(-1);
        c.varint_zigzag(1);
        c.varint_zigzag(300);
        assert_eq!(c.bytes, [0x01, 0x02, 0xd8, 0x04]);
    }
}
