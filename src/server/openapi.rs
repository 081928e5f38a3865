//! The OpenAPI document: its header and the device-token scheme. The paths come from the
//! handlers' `#[utoipa::path]` descriptions, the schemas from `ToSchema` on the wire types
//! themselves (derived under the `server` feature next to each type; by hand only for [`Hlc`],
//! whose JSON is its text), so the document cannot drift from what the server does.
//!
//! [`Hlc`]: crate::Hlc

use std::sync::OnceLock;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::OpenApi;

use super::app::routes;

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

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;
    use utoipa::PartialSchema;

    use super::*;
    use crate::tenant::settings::{Plan, PlanLimits, TenantSettings};

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
    fn derived_schemas_match_what_serde_writes() {
        let mut settings = TenantSettings::new("Caps");
        settings.domain = Some(crate::tenant::settings::Domain::Custom(
            "pos.caps.example".into(),
        ));
        settings.tax_rates.push(crate::tenant::settings::TaxRate {
            name: "State".into(),
            rate_ppm: 60_000,
        });
        settings.features.insert("loyalty".into(), true);
        // Written only when set (settings without one keep their old JSON).
        settings.time_zone = Some("Europe/Berlin".into());
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
            "/v1/tenants/{tenant}/snapshot",
            "/health",
            "/metrics",
            "/v1/openapi.json",
        ] {
            assert!(paths.contains_key(path), "{path}");
        }
        assert!(doc["components"]["schemas"]["Operation"].is_object());
        assert!(doc["components"]["securitySchemes"]["device_token"].is_object());
    }

    /// Every field the settings serialize must be in their schema (a new business rule was once
    /// missing from the hand-written one), nested objects included. The schema is derived now,
    /// but from attributes the derive reads as it understands them (serde's among them).
    #[test]
    fn the_settings_schema_names_every_field_the_settings_carry() {
        fn check(
            doc: &serde_json::Value,
            value: &serde_json::Value,
            schema: &serde_json::Value,
            at: &str,
        ) {
            // A part with a schema of its own (the rules, a tax rate): described there.
            if let Some(name) = schema["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                return check(doc, value, &doc["components"]["schemas"][name], at);
            }
            if let Some(items) = value.as_array() {
                for item in items {
                    check(doc, item, &schema["items"], &format!("{at}[]"));
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
                check(doc, field, described, &format!("{at}.{name}"));
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
        check(&doc, &settings, schema, "TenantSettings");
    }
}
