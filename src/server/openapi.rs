//! The OpenAPI document: its header, the device-token scheme, and the schemas of the crate's
//! own types that live outside the server.

use std::borrow::Cow;
use std::sync::OnceLock;

use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{OpenApi, PartialSchema, ToSchema};

use super::app::routes;
use crate::hlc::Hlc;
use crate::ids::{RowId, TenantId};
use crate::tenant::settings::{Plan, PlanLimits, TenantSettings};

/// The API's description; the paths and schemas come from the handlers and the wire types.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "pos-central",
        description = "The central sync server of pos-tenancy: takes each tenant's operations \
                       from its nodes and serves them back in one order."
    ),
    modifiers(&DeviceTokenScheme),
    tags(
        (name = "sync", description = "Pushing and pulling a tenant's operations"),
        (name = "tenant", description = "What nodes pull to configure themselves"),
        (name = "operator", description = "Health, metrics and this document; no token")
    )
)]
pub(super) struct ApiDoc;

struct DeviceTokenScheme;

impl utoipa::Modify for DeviceTokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".into());
        http.description = Some(
            "A device token from `pos-central token issue` (HS256; claims tenant, device, exp)"
                .into(),
        );
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("device_token", SecurityScheme::Http(http));
    }
}
/// The OpenAPI 3 document of the API, as `GET /v1/openapi.json` serves it.
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| routes().split_for_parts().1)
}
// OpenAPI schemas of the crate's own types that live outside this module. Their JSON forms
// are hand-written (Display/FromStr text, serde derives in modules that do not depend on
// utoipa); the tests below compare each description with what serde actually writes.

fn string_schema(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

impl PartialSchema for RowId {
    fn schema() -> RefOr<Schema> {
        string_schema("A UUID (v7 for rows and operations made on a node), lowercase, hyphenated")
            .format(Some(SchemaFormat::Custom("uuid".into())))
            .into()
    }
}
impl ToSchema for RowId {}

impl PartialSchema for TenantId {
    fn schema() -> RefOr<Schema> {
        string_schema("A tenant's slug: 1 to 64 of a-z, 0-9 and '-'")
            .pattern(Some("^[a-z0-9-]{1,64}$"))
            .examples(["caps-automotive"])
            .into()
    }
}
impl ToSchema for TenantId {}

impl PartialSchema for Hlc {
    fn schema() -> RefOr<Schema> {
        string_schema(
            "A hybrid logical clock stamp: 16 digits of milliseconds since the Unix epoch, \
             '.', a 6-digit counter, '@', the node's id; text order is clock order",
        )
        .pattern(Some(r"^[0-9]{16}\.[0-9]{6}@[0-9a-f-]{36}$"))
        .examples(["0001732433333123.000001@01937a5e-7f4e-7c2a-9a4b-1f2e3d4c5b6a"])
        .into()
    }
}
impl ToSchema for Hlc {}

impl PartialSchema for Plan {
    fn schema() -> RefOr<Schema> {
        string_schema("A commercial plan, which sets default limits")
            .enum_values(Some(Plan::ALL.iter().map(Plan::as_str)))
            .into()
    }
}
impl ToSchema for Plan {}

fn integer_schema(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .description(Some(description))
}

impl PartialSchema for PlanLimits {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some("What the tenant's plan allows"))
            .property("max_users", integer_schema("Most staff accounts"))
            .property(
                "max_api_calls_month",
                integer_schema("Most calls to this API per calendar month (UTC)"),
            )
            .required("max_users")
            .required("max_api_calls_month")
            .into()
    }
}
impl ToSchema for PlanLimits {}

impl PartialSchema for TenantSettings {
    fn schema() -> RefOr<Schema> {
        let domain = ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                Type::Object,
                Type::Null,
            ]))
            .description(Some(
                "Where the tenant's web back office is reached, if anywhere",
            ))
            .property(
                "kind",
                string_schema("subdomain (one DNS label) or custom (a DNS name)")
                    .enum_values(Some(["subdomain", "custom"])),
            )
            .property("name", string_schema("The DNS label or name"))
            .required("kind")
            .required("name");
        let tax_rate = ObjectBuilder::new()
            .property("name", string_schema("Shown on receipts"))
            .property(
                "rate_ppm",
                integer_schema("Parts per million, 0 to 1,000,000").maximum(Some(1_000_000)),
            )
            .required("name")
            .required("rate_ppm");
        let flag = |text: &'static str| {
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .description(Some(text))
        };
        let rules = ObjectBuilder::new()
            .description(Some(
                "Business rules of the POS flows; every field has a default",
            ))
            .property(
                "allow_negative_stock",
                flag("Sell past zero stock (default false)"),
            )
            .property(
                "allow_gift_card_overdraw",
                flag("Redeem more than a gift card holds (default false)"),
            )
            .property(
                "allow_credit_over_limit",
                flag("Charge store credit past the limit (default false)"),
            )
            .property(
                "loyalty_points_per_unit",
                integer_schema("Points per whole currency unit of net sales, 0 = off (default 1)"),
            )
            .property(
                "loyalty_point_value_minor",
                integer_schema(
                    "Minor units one point is worth when redeemed, at least 1 (default 1)",
                )
                .minimum(Some(1)),
            )
            .property(
                "layaway_min_deposit_ppm",
                integer_schema("Smallest layaway deposit, ppm of its total (default 100000)")
                    .maximum(Some(1_000_000)),
            )
            .property(
                "layaway_cancellation_fee_ppm",
                integer_schema("Share of a cancelled layaway's payments kept, ppm (default 0)")
                    .maximum(Some(1_000_000)),
            )
            .property(
                "tax_labour",
                flag("Tax labour lines of work orders (default false)"),
            )
            .property(
                "allow_refund_to_any_tender",
                flag("Refund by any tender, not only the sale's own (default false)"),
            );
        ObjectBuilder::new()
            .description(Some(
                "White-label and business settings, validated on the server",
            ))
            .property("brand_name", string_schema("1 to 100 characters"))
            .property("domain", domain)
            .property(
                "currency",
                string_schema("ISO 4217 code").pattern(Some("^[A-Z]{3}$")),
            )
            .property("locale", string_schema("Language tag such as en-US"))
            .property(
                "tax_rates",
                ArrayBuilder::new()
                    .items(tax_rate)
                    .description(Some("Taxes applied at checkout")),
            )
            .property(
                "receipt_header",
                string_schema("Printed above each receipt, at most 1000 characters"),
            )
            .property(
                "receipt_footer",
                string_schema("Printed below each receipt, at most 1000 characters"),
            )
            .property(
                "features",
                ObjectBuilder::new()
                    .description(Some("Feature flags switched on or off"))
                    .additional_properties(Some(AdditionalProperties::RefOr(
                        ObjectBuilder::new().schema_type(Type::Boolean).into(),
                    ))),
            )
            .property("rules", rules)
            .required("brand_name")
            .required("currency")
            .required("locale")
            .into()
    }
}
impl ToSchema for TenantSettings {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("TenantSettings")
    }
}
#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;

    fn schema_keys<T: PartialSchema>() -> Vec<String> {
        let RefOr::T(Schema::Object(o)) = T::schema() else {
            panic!("an object schema")
        };
        let mut keys: Vec<String> = o.properties.keys().cloned().collect();
        keys.sort();
        keys
    }

    fn json_keys(v: &impl Serialize) -> Vec<String> {
        let serde_json::Value::Object(map) = serde_json::to_value(v).expect("json") else {
            panic!("an object")
        };
        map.keys().cloned().collect()
    }

    #[test]
    fn hand_written_schemas_match_what_serde_writes() {
        let mut settings = TenantSettings::new("Caps");
        settings.domain = Some(crate::tenant::settings::Domain::Custom(
            "pos.caps.example".into(),
        ));
        settings.tax_rates.push(crate::tenant::settings::TaxRate {
            name: "State".into(),
            rate_ppm: 60_000,
        });
        settings.features.insert("loyalty".into(), true);
        assert_eq!(schema_keys::<TenantSettings>(), json_keys(&settings));
        let domain = serde_json::to_value(&settings.domain).expect("json");
        assert_eq!(domain["kind"], "custom");
        assert!(domain["name"].is_string());
        assert_eq!(schema_keys::<PlanLimits>(), json_keys(&Plan::Pro.limits()));
        let plans: Vec<String> = Plan::ALL
            .iter()
            .map(|p| {
                serde_json::to_value(p)
                    .expect("json")
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        assert_eq!(plans, ["free", "pro", "enterprise"]);
    }

    #[test]
    fn the_document_describes_every_route_of_the_router() {
        let doc = serde_json::to_value(openapi()).expect("json");
        assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3."));
        let paths = doc["paths"].as_object().expect("paths");
        for path in [
            "/v1/tenants/{tenant}/operations",
            "/v1/tenants/{tenant}/config",
            "/health",
            "/metrics",
            "/v1/openapi.json",
        ] {
            assert!(paths.contains_key(path), "{path}");
        }
        assert!(doc["components"]["schemas"]["Operation"].is_object());
        assert!(doc["components"]["securitySchemes"]["device_token"].is_object());
    }

    /// The settings schema is written by hand; every field the settings serialize must be in it
    /// (a new business rule was once missing), nested objects included.
    #[test]
    fn the_settings_schema_names_every_field_the_settings_carry() {
        fn check(value: &serde_json::Value, schema: &serde_json::Value, at: &str) {
            if let Some(items) = value.as_array() {
                for item in items {
                    check(item, &schema["items"], &format!("{at}[]"));
                }
                return;
            }
            let Some(fields) = value.as_object() else {
                return;
            };
            // A map (feature flags): its keys are data, not fields.
            if schema["additionalProperties"].is_object() {
                return;
            }
            let properties = schema["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("{at}: no properties in {schema}"));
            for (name, field) in fields {
                let described = properties
                    .get(name)
                    .unwrap_or_else(|| panic!("{at}.{name} is not in the schema"));
                check(field, described, &format!("{at}.{name}"));
            }
        }
        let doc = serde_json::to_value(openapi()).expect("json");
        let schema = &doc["components"]["schemas"]["TenantSettings"];
        let mut settings = crate::TenantSettings::new("Caps");
        settings.tax_rates.push(crate::TaxRate {
            name: "Sales tax".into(),
            rate_ppm: 88_750,
        });
        let settings = serde_json::to_value(settings).expect("json");
        check(&settings, schema, "TenantSettings");
    }
}
