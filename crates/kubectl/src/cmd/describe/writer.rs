//! Upstream describe's output machinery: a `PrefixWriter` (indent levels of two
//! spaces) feeding Go's `text/tabwriter` (minwidth 0, padding 2, spaces), whose
//! columns are aligned per block of consecutive lines, not over the whole text.

/// Indent levels of upstream's `describe.PrefixWriter`.
pub const LEVEL_0: usize = 0;
pub const LEVEL_1: usize = 1;
pub const LEVEL_2: usize = 2;
pub const LEVEL_3: usize = 3;

/// Collects describe text (with tabs between cells) before alignment.
#[derive(Debug, Default)]
pub struct PrefixWriter {
    buf: String,
    /// Text already flushed (aligned on its own, as upstream's `Flush`).
    flushed: String,
}

impl PrefixWriter {
    pub fn new() -> PrefixWriter {
        PrefixWriter::default()
    }

    /// `Write(level, text)`: two spaces per level, then the text as is.
    pub fn write(&mut self, level: usize, text: &str) {
        for _ in 0..level {
            self.buf.push_str("  ");
        }
        self.buf.push_str(text);
    }

    /// `WriteLine(a...)`: the parts joined by spaces and a newline.
    pub fn line(&mut self, text: &str) {
        self.buf.push_str(text);
        self.buf.push('\n');
    }

    /// The raw text (tabs kept), as `rollout history --revision` prints it.
    pub fn raw(&self) -> &str {
        &self.buf
    }

    /// `Flush()`: what follows is aligned separately from what came before.
    pub fn flush(&mut self) {
        let text = tabwrite(&self.buf, 0, 2);
        self.flushed.push_str(&text);
        self.buf.clear();
    }

    /// The text aligned as upstream's tabwriter aligns it.
    pub fn aligned(&self) -> String {
        format!("{}{}", self.flushed, tabwrite(&self.buf, 0, 2))
    }
}

/// Go's `text/tabwriter` with padchar ' ' and no flags: each line is split into
/// tab-terminated cells; a column is a run of consecutive lines that have a cell
/// in it, and its width is the widest cell of that run plus `padding`.
pub fn tabwrite(text: &str, minwidth: usize, padding: usize) -> String {
    if text.is_empty() {
        return String::new();
    }
    let ends_with_newline = text.ends_with('\n');
    let body = text.strip_suffix('\n').unwrap_or(text);
    let lines: Vec<Vec<&str>> = body.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut out = String::new();
    let mut widths = Vec::new();
    format(
        &lines,
        0,
        lines.len(),
        &mut widths,
        minwidth,
        padding,
        &mut out,
    );
    if !ends_with_newline && out.ends_with('\n') {
        out.pop();
    }
    out
}

fn format(
    lines: &[Vec<&str>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    minwidth: usize,
    padding: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut width = minwidth;
        while this < line1 {
            let line = &lines[this];
            if column + 1 >= line.len() {
                break;
            }
            width = width.max(line[column].chars().count() + padding);
            this += 1;
        }
        widths.push(width);
        format(lines, line0, this, widths, minwidth, padding, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, line1, widths, out);
}

fn write_lines(
    lines: &[Vec<&str>],
    line0: usize,
    line1: usize,
    widths: &[usize],
    out: &mut String,
) {
    for line in &lines[line0..line1] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < line.len() {
                // a tab-terminated cell
                if let Some(w) = widths.get(j) {
                    let pad = w.saturating_sub(cell.chars().count());
                    out.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_per_block() {
        let text =
            "Name:\tweb\nNamespace:\tdefault\n\nType\tReason\n----\t------\nNormal\tCreated\n";
        assert_eq!(
            tabwrite(text, 0, 2),
            "Name:       web\nNamespace:  default\n\nType    Reason\n----    ------\nNormal  Created\n"
        );
    }

    #[test]
    fn nested_columns() {
        let text = "a\tb\tc\naa\tbbbb\tc\nx\n";
        assert_eq!(tabwrite(text, 0, 2), "a   b     c\naa  bbbb  c\nx\n");
    }

    #[test]
    fn prefix_writer_indents() {
        let mut w = PrefixWriter::new();
        w.write(LEVEL_1, "Image:\tbusybox\n");
        w.write(LEVEL_0, "Volumes:\t<none>\n");
        assert_eq!(w.raw(), "  Image:\tbusybox\nVolumes:\t<none>\n");
        assert_eq!(w.aligned(), "  Image:  busybox\nVolumes:  <none>\n");
    }
}
