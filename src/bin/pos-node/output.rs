//! Printing helpers shared by the subcommands.
//!
//! A reader that goes away (`pos-node ... | head`) is not an error: output ends quietly and the
//! command's exit code stays what its work decided; any other failed write (a full disk) is
//! exit 2 (see `common/output.rs`). Writes go through `writeln!` on a locked stdout and end
//! with a flush, never `println!`, which panics on a closed pipe.

use std::io::{self, Write};

#[path = "../common/output.rs"]
mod common;

pub(crate) use common::printable;

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

/// A plain text table with a header row, columns padded to their widest cell.
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
