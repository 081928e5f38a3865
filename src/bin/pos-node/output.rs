//! Printing helpers shared by the subcommands.

use std::io::Write;

use crate::CliError;

/// Pretty JSON on stdout, newline-terminated.
pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = writeln!(out);
    Ok(())
}

/// A plain text table with a header row, columns padded to their widest cell.
pub(crate) fn print_table(header: &[String], rows: &[Vec<String>]) {
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
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line(header));
    let _ = writeln!(
        out,
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  ")
    );
    for row in rows {
        let _ = writeln!(out, "{}", line(row));
    }
}
