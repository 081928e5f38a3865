//! Printing helpers shared by the subcommands.
//!
//! A reader that goes away (`pos-node ... | head`) is not an error: output ends quietly and the
//! command's exit code stays what its work decided; any other failed write (a full disk) is
//! exit 2 (see `common/output.rs`). Writes go through `writeln!` on a locked stdout and end
//! with a flush, never `println!`, which panics on a closed pipe.

use std::io::{self, Write};

#[path = "../common/output.rs"]
mod common;

pub(crate) use common::{parse_args, printable};

use crate::CliError;

/// Runs `write` on the locked stdout and flushes it; a closed pipe ends the output quietly,
/// any other failure is [`CliError::Output`].
pub(crate) fn print(
    write: impl FnOnce(&mut io::StdoutLock<'static>) -> io::Result<()>,
) -> Result<(), CliError> {
    common::print(write).map_err(CliError::Output)
}

/// Pretty JSON on stdout, newline-terminated.
pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    print(|out| write_json(out, value))
}

/// Pretty JSON and a newline on `out`.
pub(crate) fn write_json(out: &mut impl Write, value: &impl serde::Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

/// Compact JSON on one line on `out` (for streams of events, one object a line).
pub(crate) fn write_json_line(
    out: &mut impl Write,
    value: &impl serde::Serialize,
) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)?;
    out.flush()
}

/// A write's outcome for the command: a closed pipe ends the output quietly; any other failure
/// is an error.
pub(crate) fn quiet_on_close(result: io::Result<()>) -> Result<(), CliError> {
    common::quiet_on_close(result).map_err(CliError::Output)
}

/// A line on stderr, prefixed by the program name; a closed stderr is ignored (there is
/// nowhere left to say anything).
pub(crate) fn warn(text: &str) {
    let _ = writeln!(io::stderr().lock(), "pos-node: {text}");
}

/// A plain text table with a header row, columns padded to their widest cell. Every cell is
/// made [`printable`] first: cells hold what tenants typed (product names, notes, query
/// results), and a control character in one must not act on the terminal.
pub(crate) fn write_table(
    out: &mut impl Write,
    header: &[String],
    rows: &[Vec<String>],
) -> io::Result<()> {
    let safe = |cells: &[String]| -> Vec<String> {
        cells.iter().map(|c| printable(c).into_owned()).collect()
    };
    let header = safe(header);
    let rows: Vec<Vec<String>> = rows.iter().map(|r| safe(r)).collect();
    let (header, rows) = (&header[..], &rows[..]);
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        // Padded by hand: `format!`'s width takes at most 65,535, and a cell can be wider.
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| {
                let pad = w.saturating_sub(c.chars().count());
                let mut cell = String::with_capacity(c.len() + pad);
                cell.push_str(c);
                cell.extend(std::iter::repeat_n(' ', pad));
                cell
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(header))?;
    writeln!(
        out,
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  ")
    )?;
    for row in rows {
        writeln!(out, "{}", line(row))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_wider_than_format_widths_allow_is_printed_padded() {
        let wide = "x".repeat(70_000);
        let rows = vec![vec![wide.clone(), "b".into()], vec!["a".into(), "c".into()]];
        let mut out = Vec::new();
        write_table(&mut out, &["k".into(), "v".into()], &rows).expect("written");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], format!("{wide}  b"));
        assert_eq!(lines[3], format!("a{}  c", " ".repeat(69_999)));
    }

    #[test]
    fn a_cell_with_control_characters_is_printed_escaped() {
        let rows = vec![vec!["Oil\u{1b}[2J\u{7}".to_owned()]];
        let mut out = Vec::new();
        write_table(&mut out, &["name".into()], &rows).expect("written");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        assert!(text.contains("Oil\\u{1b}[2J\\u{7}"), "{text:?}");
    }
}
