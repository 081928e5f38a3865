//! What `pos-node` and `pos-central` share about their output (each includes this file with
//! `#[path]`): the rule for a stdout that fails, and text made safe for a terminal.
//!
//! A reader that goes away (`pos-node ... | head`) is not an error: output ends quietly and the
//! exit code stays what the command's work decided, work committed included. Any other failed
//! write (a full disk) is an error, exit 2. Rust ignores SIGPIPE, so a closed pipe shows up as a
//! write that fails with `BrokenPipe`; `println!` would panic on it, so nothing here uses it.

use std::borrow::Cow;
use std::io::{self, Write};

/// Runs `write` on the locked stdout and flushes it. A closed pipe is `Ok` (the output ends
/// there); any other failure is returned. The flush matters: what is still buffered at exit is
/// flushed with its error ignored, so a full disk would otherwise go unnoticed.
pub(crate) fn print(
    write: impl FnOnce(&mut io::StdoutLock<'static>) -> io::Result<()>,
) -> io::Result<()> {
    let mut out = io::stdout().lock();
    quiet_on_close(write(&mut out).and_then(|()| out.flush()))
}

/// The command line, or the exit code to end with: clap's own `parse` exits 0 after help it
/// could not write (`--help > /dev/full`). Help and version go to stdout and exit 0, a closed
/// pipe included; a usage error goes to stderr and exits 2; help that could not be written
/// exits 2 with the reason on stderr.
pub(crate) fn parse_args<C: clap::Parser>(program: &str) -> Result<C, std::process::ExitCode> {
    match C::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            match quiet_on_close(e.print()) {
                Ok(()) => Err(std::process::ExitCode::from(code)),
                Err(write) => {
                    let _ = writeln!(
                        io::stderr().lock(),
                        "{program}: error: cannot write the output: {write}"
                    );
                    Err(std::process::ExitCode::from(2))
                }
            }
        }
    }
}

/// A write's outcome with a closed pipe counted as done.
pub(crate) fn quiet_on_close(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// `text` with the characters that would act on a terminal instead of being shown (control
/// characters such as ESC and BEL, and the bidirectional overrides that reorder a line)
/// written as Rust escapes (`\u{1b}`, `\n`). Names and brand texts are whatever a tenant
/// typed; JSON output needs none of this, serde escapes them.
pub(crate) fn printable(text: &str) -> Cow<'_, str> {
    let acts = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(acts) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if acts(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}
