//! Printers shared by the verbs: column layout (Go's tabwriter as kubectl sets it
//! up), server-side `Table` rendering, YAML/JSON as upstream writes them, and
//! JSONPath templates.

pub mod gotemplate;
pub mod json;
pub mod jsonpath;
pub mod table;
pub mod yaml;

/// Lays out rows of cells as kubectl's tabwriter does (`minwidth 6, padding 3`):
/// every cell but the last of a line is padded to its column's width.
pub fn tabwrite(rows: &[Vec<String>]) -> String {
    TabWriter::default().write(rows)
}

/// A tabwriter that remembers its column widths between writes (upstream's
/// `SetRememberedWidths`), so rows printed later (`get -w`) stay aligned.
#[derive(Debug, Clone, Default)]
pub struct TabWriter {
    widths: Vec<usize>,
}

impl TabWriter {
    pub fn write(&mut self, rows: &[Vec<String>]) -> String {
        layout(rows, &mut self.widths)
    }
}

fn layout(rows: &[Vec<String>], widths: &mut Vec<usize>) -> String {
    const MIN_WIDTH: usize = 6;
    const PADDING: usize = 3;
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                break;
            }
            let w = (cell.chars().count() + PADDING).max(MIN_WIDTH);
            if i >= widths.len() {
                widths.push(w);
            } else if widths[i] < w {
                widths[i] = w;
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.push_str(&" ".repeat(pad));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_padded_by_three_with_min_width_six() {
        let rows = vec![
            vec!["NAME".to_string(), "READY".into(), "AGE".into()],
            vec!["web".to_string(), "0/1".into(), "5m".into()],
            vec!["a-longer-name".to_string(), "1/1".into(), "3d".into()],
        ];
        assert_eq!(
            tabwrite(&rows),
            "NAME            READY   AGE\nweb             0/1     5m\na-longer-name   1/1     3d\n"
        );
    }
}
