//! Printing helpers shared by the subcommands.
//!
//! A reader that goes away (`pos-node ... | head`) is not an error: output ends quietly and the
//! command's exit code stays what its work decided. Writes go through `writeln!`, never
//! `println!`, which panics on a closed pipe.

use std::io::{self, Write};

use crate::CliError;

/// Pretty JSON on stdout, newline-terminated.
pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    quiet_on_close(write_json(&mut io::stdout().lock(), value))
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

/// Whether a write failed because the reader went away.
fn is_closed(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

/// A write's outcome for the command: a closed pipe ends the output quietly; any other failure
/// is an error.
pub(crate) fn quiet_on_close(result: io::Result<()>) -> Result<(), CliError> {
    match result {
        Err(e) if !is_closed(&e) => Err(CliError::Output(e)),
        _ => Ok(()),
    }
}

/// A line on stderr, prefixed by the program name; a closed stderr is ignored (there is
/// nowhere left to say anything).
pub(crate) fn warn(text: &str) {
    let _ = writeln!(io::stderr().lock(), "pos-node: {text}");
}

/// A plain text table with a header row, columns padded to their widest cell.
pub(crate) fn print_table(header: &[String], rows: &[Vec<String>]) {
    let _ = write_table(&mut io::stdout().lock(), header, rows);
}

/// [`print_table`] on any writer.
pub(crate) fn write_table(
    out: &mut impl Write,
    header: &[String],
    rows: &[Vec<String>],
) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
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
