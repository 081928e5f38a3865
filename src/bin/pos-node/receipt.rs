//! `pos-node receipt`: a receipt on stdout, as text for a thermal printer, ESC/POS bytes
//! (`> /dev/usb/lp0`) or HTML; with `--json`, what the receipt shows as a JSON object. One of
//! `--sale`, `--layaway [--payment]`, `--work-order` or `--gift-card [--balance]` says which.

use std::io::Write;
use std::path::PathBuf;

use clap::{ArgGroup, Args, ValueEnum};
use pos_tenancy::pos::Pos;
use pos_tenancy::receipt::{PaperWidth, ReceiptFormat, ReceiptOf};
use pos_tenancy::{RowId, TenantId, Timestamp};

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
#[command(group(
    ArgGroup::new("what")
        .required(true)
        .args(["sale", "layaway", "work_order", "gift_card"])
))]
pub(crate) struct ReceiptArgs {
    /// The database file.
    #[arg(long)]
    db: PathBuf,
    /// The tenant the receipt's rows belong to.
    #[arg(long)]
    tenant: TenantId,
    /// A sale's id (a refund's or void's too).
    #[arg(long)]
    sale: Option<RowId>,
    /// A layaway's id: its completion receipt, or with --payment one payment's.
    #[arg(long)]
    layaway: Option<RowId>,
    /// The id of one of the layaway's payments (its deposit or a later one).
    #[arg(long, requires = "layaway")]
    payment: Option<RowId>,
    /// A completed work order's id: its invoice.
    #[arg(long)]
    work_order: Option<RowId>,
    /// A gift card's id: the receipt of the sale that sold it, or with --balance its balance.
    #[arg(long)]
    gift_card: Option<RowId>,
    /// With --gift-card: a slip of the card's balance now, under today's brand.
    #[arg(long, requires = "gift_card")]
    balance: bool,
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

/// What the arguments ask to print (clap makes sure exactly one selector is given).
fn what(args: &ReceiptArgs) -> Result<ReceiptOf, CliError> {
    Ok(
        match (args.sale, args.layaway, args.work_order, args.gift_card) {
            (Some(sale), None, None, None) => ReceiptOf::Sale(sale),
            (None, Some(layaway), None, None) => match args.payment {
                Some(payment) => ReceiptOf::LayawayPayment { layaway, payment },
                None => ReceiptOf::LayawayCompletion(layaway),
            },
            (None, None, Some(work_order), None) => ReceiptOf::WorkOrder(work_order),
            (None, None, None, Some(card)) if args.balance => ReceiptOf::GiftCardBalance {
                card,
                at: Timestamp::now(),
            },
            (None, None, None, Some(card)) => ReceiptOf::GiftCardSale(card),
            _ => {
                return Err(CliError::Usage(
                    "give one of --sale, --layaway, --work-order or --gift-card".to_owned(),
                ))
            }
        },
    )
}

pub(crate) fn run(args: ReceiptArgs) -> Result<Outcome, CliError> {
    let what = what(&args)?;
    let store = open_existing(&args.db)?;
    let tenant = store.tenant(&args.tenant)?;
    // An id that is not there is named with its kind and tenant: the usual mistake is an id
    // of another tenant or of another kind of row.
    let not_found = |e: pos_tenancy::Error| match e {
        pos_tenancy::Error::NotFound { table, id } => CliError::Usage(format!(
            "tenant {} has no {table} row {id}; nothing was printed",
            args.tenant
        )),
        e => e.into(),
    };
    if args.json {
        print_json(&tenant.receipt_document_of(&what).map_err(not_found)?)?;
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
    let bytes = tenant.receipt_of(&what, &format).map_err(not_found)?;
    print(|out| out.write_all(&bytes))?;
    Ok(Outcome::Ok)
}
