//! Aligned tables for people, JSON helpers for scripts.

use std::io::Write;

use base64::Engine;
use serde_json::{json, Value};

/// A table printed with columns padded to their widest cell, two spaces apart.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(cells.len(), self.headers.len(), "one cell per column");
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let last = row.len() - 1;
            for (index, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if index < last {
                    let pad = widths[index] - cell.chars().count() + 2;
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }

    pub fn print(&self) {
        print!("{}", self.render());
    }
}

pub fn print_json(value: &Value) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, value)?;
    stdout.write_all(b"\n")?;
    Ok(())
}

/// Bytes as a JSON string when they are UTF-8, else base64. The flag says which.
pub fn bytes_json(bytes: Option<&[u8]>) -> (Value, bool) {
    match bytes {
        None => (Value::Null, false),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => (json!(text), false),
            Err(_) => (
                json!(base64::engine::general_purpose::STANDARD.encode(bytes)),
                true,
            ),
        },
    }
}

pub fn join_ids(ids: &[i32]) -> String {
    ids.iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_cells_of_varied_width_when_rendered_should_align_columns() {
        let mut table = Table::new(&["NAME", "PARTITIONS"]);
        table.row(vec!["a-long-topic".into(), "3".into()]);
        table.row(vec!["t".into(), "12".into()]);
        assert_eq!(
            table.render(),
            "NAME          PARTITIONS\na-long-topic  3\nt             12\n"
        );
    }

    #[test]
    fn given_non_utf8_bytes_when_json_encoded_should_use_base64_and_flag_it() {
        assert_eq!(bytes_json(Some(b"hi")), (json!("hi"), false));
        assert_eq!(bytes_json(Some(&[0xff, 0x00])), (json!("/wA="), true));
        assert_eq!(bytes_json(None), (Value::Null, false));
    }
}
