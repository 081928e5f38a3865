//! `pos-node receipt`: a sale's receipt on stdout, as text for a thermal printer, ESC/POS bytes
//! (`> /dev/usb/lp0`) or HTML; with `--json`, what the receipt shows as a JSON object.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use pos_tenancy::pos::Pos;
use pos_tenancy::receipt::{PaperWidth, ReceiptFormat};
use pos_tenancy::{RowId, TenantId};

use crate::output::{print, print_json};
use crate::{open_existing, CliError, Outcome};

/// The receipt's format.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    /// UTF-8 text, lines at most `--width` columns.
    Text,
    /// ESC/POS printer bytes (binary).
    Escpos,
    /// A self-contained HTML document.
    Html,
}

/// Columns of a thermal printer's line.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Width {
    /// 58 mm paper.
    #[value(name = "32")]
    Cols32,
    /// 80 mm paper on many printers.
    #[value(name = "42")]
    Cols42,
    /// 80 mm paper.
    #[value(name = "48")]
    Cols48,
}

#[derive(Args)]
pub(crate) struct ReceiptArgs {
    /// The database file.
    #[arg(long)]
    db: PathBuf,
    /// The tenant the sale belongs to.
    #[arg(long)]
    tenant: TenantId,
    /// The sale's id (a refund's or void's too).
    #[arg(long)]
    sale: RowId,
    /// The format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Columns of the printer's line for text and ESC/POS: 32, 42 or 48.
    #[arg(long, value_enum, default_value = "42")]
    width: Width,
    /// Print what the receipt shows as JSON instead of the receipt.
    #[arg(long, conflicts_with = "format")]
    json: bool,
}

pub(crate) fn run(args: ReceiptArgs) -> Result<Outcome, CliError> {
    let store = open_existing(&args.db)?;
    let tenant = store.tenant(&args.tenant)?;
    if args.json {
        print_json(&tenant.receipt_document(args.sale)?)?;
        return Ok(Outcome::Ok);
    }
    let width = match args.width {
        Width::Cols32 => PaperWidth::Cols32,
        Width::Cols42 => PaperWidth::Cols42,
        Width::Cols48 => PaperWidth::Cols48,
    };
    let format = match args.format {
        Format::Text => ReceiptFormat::Text(width),
        Format::Escpos => ReceiptFormat::EscPos(width),
        Format::Html => ReceiptFormat::Html,
    };
    let bytes = tenant.receipt(args.sale, &format)?;
    print(|out| out.write_all(&bytes))?;
    Ok(Outcome::Ok)
}
