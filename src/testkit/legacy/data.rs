//! The legacy store's fixed reference data: its categories and their products, customer
//! notes, work descriptions, promotions, commission rules and stock adjustment reasons. The
//! names of brands, people, companies and vehicles are in the test kit's shared vocabulary.

pub(super) struct Category {
    pub(super) name: &'static str,
    pub(super) parent: Option<usize>,
    pub(super) sku_prefix: &'static str,
    /// Product names, and whether the product is sold by the litre.
    pub(super) items: &'static [(&'static str, bool)],
}

pub(super) const SERVICE_CATEGORY: usize = 7;
pub(super) const BRAKES: usize = 1;

pub(super) const CATEGORIES: &[Category] = &[
    Category {
        name: "Engine",
        parent: None,
        sku_prefix: "ENG",
        items: &[
            ("Water pump", false),
            ("Thermostat", false),
            ("Gasket set", false),
        ],
    },
    Category {
        name: "Brakes",
        parent: None,
        sku_prefix: "BRK",
        items: &[("Brake caliper", false), ("Brake fluid DOT 4", true)],
    },
    Category {
        name: "Suspension & Steering",
        parent: None,
        sku_prefix: "SUS",
        items: &[("Control arm", false), ("Tie rod end", false)],
    },
    Category {
        name: "Electrical",
        parent: None,
        sku_prefix: "ELE",
        items: &[("Alternator", false), ("Starter motor", false)],
    },
    Category {
        name: "Filters",
        parent: None,
        sku_prefix: "FIL",
        items: &[("Fuel filter", false)],
    },
    Category {
        name: "Fluids & Chemicals",
        parent: None,
        sku_prefix: "FLU",
        items: &[("Coolant G12", true), ("Windscreen washer fluid", true)],
    },
    Category {
        name: "Accessories",
        parent: None,
        sku_prefix: "ACC",
        items: &[
            ("Floor mat set", false),
            ("Warning triangle", false),
            ("Phone holder", false),
        ],
    },
    Category {
        name: "Service & Labour",
        parent: None,
        sku_prefix: "SVC",
        items: &[
            ("Labour (per hour)", false),
            ("Oil change service", false),
            ("Brake inspection", false),
            ("Wheel alignment", false),
            ("Diagnose / Fehlerauslese", false),
            ("Tyre fitting", false),
        ],
    },
    Category {
        name: "Oil Filters",
        parent: Some(4),
        sku_prefix: "OFL",
        items: &[("Oil filter", false), ("Ölfilter Premium", false)],
    },
    Category {
        name: "Air Filters",
        parent: Some(4),
        sku_prefix: "AFL",
        items: &[("Air filter", false), ("Cabin air filter", false)],
    },
    Category {
        name: "Brake Pads",
        parent: Some(BRAKES),
        sku_prefix: "BPD",
        items: &[
            ("Brake pad set front", false),
            ("Brake pad set rear", false),
        ],
    },
    Category {
        name: "Brake Discs",
        parent: Some(BRAKES),
        sku_prefix: "BDS",
        items: &[("Brake disc vented", false), ("Brake disc solid", false)],
    },
    Category {
        name: "Batteries",
        parent: Some(3),
        sku_prefix: "BAT",
        items: &[("Battery 12V 60Ah", false), ("Battery 12V 74Ah AGM", false)],
    },
    Category {
        name: "Lighting",
        parent: Some(3),
        sku_prefix: "LGT",
        items: &[
            ("Headlight bulb H7", false),
            ("Tail light bulb P21W", false),
            ("LED bulb H4", false),
        ],
    },
    Category {
        name: "Motoröl & Schmierstoffe",
        parent: Some(5),
        sku_prefix: "OIL",
        items: &[
            ("Engine oil 5W-30", true),
            ("Engine oil 10W-40", true),
            ("Getriebeöl 75W-90", true),
        ],
    },
    Category {
        name: "Wiper Blades",
        parent: Some(6),
        sku_prefix: "WIP",
        items: &[("Wiper blade 22\"", false), ("Wiper blade set", false)],
    },
    Category {
        name: "Zündkerzen",
        parent: Some(0),
        sku_prefix: "ZND",
        items: &[("Spark plug iridium", false), ("Zündkerze Standard", false)],
    },
    Category {
        name: "タイヤ用品",
        parent: Some(6),
        sku_prefix: "TYR",
        items: &[("Tyre valve set", false), ("タイヤ修理キット", false)],
    },
    Category {
        name: "Belts & Hoses",
        parent: Some(0),
        sku_prefix: "BLT",
        items: &[
            ("Timing belt kit", false),
            ("Serpentine belt", false),
            ("Radiator hose", false),
        ],
    },
    Category {
        name: "Shocks & Struts",
        parent: Some(2),
        sku_prefix: "SHK",
        items: &[("Shock absorber front", false), ("Strut mount", false)],
    },
];

pub(super) const CUSTOMER_NOTES: &[&str] = &[
    "Prefers OEM parts",
    "Bitte vorher anrufen",
    "Fleet account – invoice monthly",
    "VIP 🚗",
    "Paga siempre en efectivo",
];

pub(super) const WORK_DESCRIPTIONS: &[&str] = &[
    "Brake service front axle",
    "Oil and filter change",
    "Inspektion nach Herstellervorgabe",
    "Replace timing belt",
    "Check engine light – diagnose",
    "Cambio de amortiguadores",
    "Battery replacement",
];

pub(super) struct PromotionDef {
    pub(super) code: Option<&'static str>,
    pub(super) name: &'static str,
    pub(super) percent: bool,
    /// Parts per million off, or minor units off.
    pub(super) value: i64,
    pub(super) category: Option<usize>,
    pub(super) active: bool,
}

/// The store's standing promotions; larger stores add flash sales after these.
pub(super) const PROMOTIONS: &[PromotionDef] = &[
    PromotionDef {
        code: Some("SPRING10"),
        name: "Brake sale 10 %",
        percent: true,
        value: 100_000,
        category: Some(BRAKES),
        active: true,
    },
    PromotionDef {
        code: None,
        name: "Ölwechsel-Aktion",
        percent: false,
        value: 500,
        category: Some(14),
        active: true,
    },
    PromotionDef {
        code: Some("WELCOME5"),
        name: "Welcome – $5 off",
        percent: false,
        value: 500,
        category: None,
        active: true,
    },
    PromotionDef {
        code: None,
        name: "Winter tyres −15 %",
        percent: true,
        value: 150_000,
        category: Some(17),
        active: true,
    },
    PromotionDef {
        code: Some("WIPERS20"),
        name: "Wipers 20 % off",
        percent: true,
        value: 200_000,
        category: Some(15),
        active: true,
    },
    PromotionDef {
        code: Some("OLD2019"),
        name: "Clearance 2019",
        percent: true,
        value: 300_000,
        category: None,
        active: false,
    },
];

pub(super) struct CommissionRuleDef {
    pub(super) name: &'static str,
    /// Index into the staff list.
    pub(super) user: Option<usize>,
    pub(super) category: Option<usize>,
    pub(super) rate_ppm: i64,
    pub(super) active: bool,
}

/// Index 0 is the standard rule, 1 the brakes bonus, 2 the senior's own rule.
pub(super) const COMMISSION_RULES: &[CommissionRuleDef] = &[
    CommissionRuleDef {
        name: "Standard 2 %",
        user: None,
        category: None,
        rate_ppm: 20_000,
        active: true,
    },
    CommissionRuleDef {
        name: "Brakes bonus 3 %",
        user: None,
        category: Some(BRAKES),
        rate_ppm: 30_000,
        active: true,
    },
    CommissionRuleDef {
        name: "Senior – Jürgen Müller",
        user: Some(1),
        category: None,
        rate_ppm: 25_000,
        active: true,
    },
    CommissionRuleDef {
        name: "Old flat rate 1 %",
        user: None,
        category: None,
        rate_ppm: 10_000,
        active: false,
    },
];

pub(super) const ADJUST_REASONS: &[&str] = &[
    "damaged in store",
    "Schwund / Inventurdifferenz",
    "found during stocktake",
    "supplier short delivery",
];
