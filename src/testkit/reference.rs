//! Reference data and helpers both generators share: the vocabularies they name things with
//! (brands, people, companies, vehicle makes and engines), the VIN alphabet, EAN-13 barcodes,
//! and a day, an hour and a minute in milliseconds.
//!
//! Each generator has its own [`Vocabulary`]: the legacy store's is international on purpose
//! (accents, CJK, emoji: text adoption must copy byte for byte), the demo's is a plain shop's.
//! They are two lists, not one merged list, because a generator picks an entry by an index
//! drawn from its seeded stream: a list's length and order are part of what every seed
//! generates, and merging them would change every store a seed has generated so far.

/// Milliseconds in a day.
pub(super) const DAY_MS: i64 = 86_400_000;
/// Milliseconds in an hour.
pub(super) const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a minute.
pub(super) const MINUTE_MS: i64 = 60_000;

/// A vehicle make: its name, its world manufacturer identifier (a VIN's first three
/// characters) and its models.
pub(super) type Make = (&'static str, &'static str, &'static [&'static str]);

/// The words a generator names things with.
pub(super) struct Vocabulary {
    /// Brands of parts.
    pub(super) brands: &'static [&'static str],
    /// First names: the display form and an ASCII form for e-mail addresses.
    pub(super) first_names: &'static [(&'static str, &'static str)],
    /// Last names: the display form and an ASCII form for e-mail addresses.
    pub(super) last_names: &'static [(&'static str, &'static str)],
    /// Companies that are customers.
    pub(super) companies: &'static [&'static str],
    /// Vehicle makes with their models.
    pub(super) makes: &'static [Make],
    /// Engines, as a fitment or a customer's vehicle names them.
    pub(super) engines: &'static [&'static str],
}

/// The legacy store's vocabulary: an international shop's, in many scripts.
pub(super) const LEGACY: Vocabulary = Vocabulary {
    brands: &[
        "Bosch",
        "Mann-Filter",
        "Brembo",
        "Febi Bilstein",
        "Müller Teile",
        "Ñandú Repuestos",
        "東京パーツ",
        "Valeo",
        "NGK",
        "Castrol",
        "Liqui Moly",
        "Gates",
        "Monroe",
        "Osram",
    ],
    first_names: &[
        ("Ana", "ana"),
        ("José", "jose"),
        ("Jürgen", "juergen"),
        ("Zoë", "zoe"),
        ("François", "francois"),
        ("Łukasz", "lukasz"),
        ("Søren", "soren"),
        ("Chloé", "chloe"),
        ("Mohammed", "mohammed"),
        ("Emma", "emma"),
        ("Liam", "liam"),
        ("Olivia", "olivia"),
        ("Noah", "noah"),
        ("太郎", "taro"),
        ("花子", "hanako"),
        ("Ñuño", "nuno"),
        ("Aarav", "aarav"),
        ("Fatima", "fatima"),
        ("Mia", "mia"),
        ("Lucas", "lucas"),
    ],
    last_names: &[
        ("Díaz", "diaz"),
        ("Müller", "mueller"),
        ("Schröder", "schroeder"),
        ("García", "garcia"),
        ("Núñez", "nunez"),
        ("Smith", "smith"),
        ("Johnson", "johnson"),
        ("Brown", "brown"),
        ("O'Connor", "oconnor"),
        ("van der Berg", "vanderberg"),
        ("Kowalski", "kowalski"),
        ("山田", "yamada"),
        ("佐藤", "sato"),
        ("Ødegaard", "odegaard"),
        ("Nguyễn", "nguyen"),
        ("Rossi", "rossi"),
        ("Dubois", "dubois"),
        ("Wilson", "wilson"),
        ("Fischer", "fischer"),
        ("Martínez", "martinez"),
    ],
    companies: &[
        "Ñandú Repuestos",
        "東京オートサービス",
        "Müller & Söhne KG",
        "Fleet Solutions Ltd",
        "Joe's Garage",
        "Taxi Zentrale Nord",
        "Green Valley Farms",
        "Städtische Werke",
    ],
    makes: &[
        ("Toyota", "JT2", &["Corolla", "Hilux", "Yaris", "RAV4"]),
        ("Volkswagen", "WVW", &["Golf", "Passat", "Polo"]),
        ("Ford", "1FT", &["F-150", "Focus", "Transit"]),
        ("Škoda", "TMB", &["Octavia", "Fabia"]),
        ("Citroën", "VF7", &["C3", "Berlingo"]),
        ("BMW", "WBA", &["3er", "X5"]),
        ("Honda", "JHM", &["Civic", "Accord"]),
        ("Chevrolet", "1GC", &["Silverado", "Malibu"]),
        ("Nissan", "JN1", &["Navara", "Micra"]),
        ("Mercedes-Benz", "WDB", &["Sprinter", "C 200"]),
    ],
    engines: &[
        "1.6 16V",
        "2.0 TDI",
        "1.5 VTEC",
        "5.0 V8",
        "2.4 D-4D",
        "1.2 PureTech",
        "3.0 i6",
        "Elektro",
    ],
};

/// The demo's vocabulary: a plain shop's.
pub(super) const DEMO: Vocabulary = Vocabulary {
    brands: &[
        "Bosch",
        "Mann-Filter",
        "Brembo",
        "Febi",
        "Valeo",
        "NGK",
        "Castrol",
        "Gates",
        "Monroe",
        "Osram",
        "Denso",
        "ACDelco",
        "Motorcraft",
        "Mahle",
    ],
    first_names: &[
        ("Ana", "ana"),
        ("José", "jose"),
        ("Jürgen", "juergen"),
        ("Zoë", "zoe"),
        ("François", "francois"),
        ("Emma", "emma"),
        ("Liam", "liam"),
        ("Olivia", "olivia"),
        ("Noah", "noah"),
        ("Aarav", "aarav"),
        ("Fatima", "fatima"),
        ("Mia", "mia"),
        ("Lucas", "lucas"),
        ("Grace", "grace"),
        ("Mateo", "mateo"),
        ("Hana", "hana"),
    ],
    last_names: &[
        ("Díaz", "diaz"),
        ("Müller", "mueller"),
        ("García", "garcia"),
        ("Smith", "smith"),
        ("Johnson", "johnson"),
        ("Brown", "brown"),
        ("O'Connor", "oconnor"),
        ("Kowalski", "kowalski"),
        ("Nguyen", "nguyen"),
        ("Rossi", "rossi"),
        ("Dubois", "dubois"),
        ("Wilson", "wilson"),
        ("Fischer", "fischer"),
        ("Martínez", "martinez"),
        ("Yamada", "yamada"),
        ("Okafor", "okafor"),
    ],
    companies: &[
        "Joe's Garage",
        "Fleet Solutions Ltd",
        "City Cabs",
        "Green Valley Farms",
        "Rapid Couriers",
        "Northside Motors",
    ],
    makes: &[
        ("Toyota", "JT2", &["Corolla", "Hilux", "RAV4"]),
        ("Volkswagen", "WVW", &["Golf", "Passat", "Polo"]),
        ("Ford", "1FT", &["F-150", "Focus", "Transit"]),
        ("Honda", "JHM", &["Civic", "Accord"]),
        ("Chevrolet", "1GC", &["Silverado", "Malibu"]),
        ("Nissan", "JN1", &["Navara", "Micra"]),
        ("BMW", "WBA", &["3 Series", "X5"]),
    ],
    engines: &[
        "1.6 16V", "2.0 TDI", "1.5 VTEC", "5.0 V8", "2.4 D-4D", "3.0 i6",
    ],
};

/// VIN characters (no I, O or Q).
pub(super) const VIN_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPRSTUVWXYZ";

/// A valid EAN-13 for a 12-digit number (the last 12 digits of `n`).
pub(super) fn ean13(n: u64) -> String {
    let digits = format!("{:012}", n % 1_000_000_000_000);
    let sum: u32 = digits
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    format!("{digits}{}", (10 - sum % 10) % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ean13_check_digits_are_right() {
        // 400638133393 is a well-known EAN prefix with check digit 1.
        assert_eq!(ean13(400_638_133_393), "4006381333931");
    }
}
