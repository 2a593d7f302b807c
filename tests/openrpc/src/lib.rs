//! Validates OpenRPC documents against the OpenRPC meta-schema as published on npm.
//!
//! The meta-schema is `@open-rpc/meta-schema`; the schemas inside a
//! document are checked against the JSON Schema meta-schema it refers to,
//! `@json-schema-tools/meta-schema`. Both come from this directory's
//! `package-lock.json`: run `npm ci` here first (CI's script does). They are
//! read with Node.js, since the OpenRPC package ships its meta-schema as a
//! JavaScript module only.

use std::fmt;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use jsonschema::{Draft, Validator};
use serde_json::Value;

/// Where the JSON Schema meta-schema says it lives; the OpenRPC
/// meta-schema refers to it there.
const JSON_SCHEMA_META: &str = "https://meta.json-schema.tools";

/// Why a document could not be checked, or what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// The meta-schemas could not be loaded; says how to install them.
    NotInstalled(String),
    /// The document breaks the meta-schema: one line per error, with where.
    Errors(Vec<String>),
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::NotInstalled(why) => f.write_str(why),
            Invalid::Errors(errors) => {
                writeln!(f, "the document breaks the OpenRPC meta-schema:")?;
                for error in errors {
                    writeln!(f, "  {error}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Invalid {}

/// Checks `document` against the OpenRPC meta-schema.
///
/// # Errors
/// [`Invalid::Errors`] with every violation, or
/// [`Invalid::NotInstalled`] when `npm ci` has not been run in this
/// directory (or Node.js is missing).
pub fn validate(document: &Value) -> Result<(), Invalid> {
    static VALIDATOR: OnceLock<Result<Validator, Invalid>> = OnceLock::new();
    let validator = VALIDATOR.get_or_init(load).as_ref().map_err(Clone::clone)?;
    if validator.is_valid(document) {
        return Ok(());
    }
    // Each failed keyword down to the leaves: under a `oneOf` (a method
    // object or a reference) the top-level error alone names no culprit.
    let evaluation = validator.evaluate(document);
    let errors = evaluation
        .iter_errors()
        .map(|e| {
            format!(
                "at {:?} ({}): {}",
                e.instance_location.as_str(),
                e.schema_location,
                e.error
            )
        })
        .collect();
    Err(Invalid::Errors(errors))
}

/// The OpenRPC meta-schema, compiled, with the JSON Schema one it refers to.
fn load() -> Result<Validator, Invalid> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let how = format!(
        "install the OpenRPC meta-schema first: `npm ci` in {} (needs Node.js and npm)",
        dir.display()
    );
    let script = "process.stdout.write(JSON.stringify([\
        require('@open-rpc/meta-schema').openrpcDocument,\
        require('@json-schema-tools/meta-schema').jsonSchema]))";
    let output = Command::new("node")
        .args(["-e", script])
        .current_dir(dir)
        .output()
        .map_err(|err| Invalid::NotInstalled(format!("cannot run node ({err}): {how}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().find(|l| l.contains("Error")).unwrap_or("");
        return Err(Invalid::NotInstalled(format!("{first}: {how}")));
    }
    let (mut openrpc, mut json_schema): (Value, Value) = serde_json::from_slice(&output.stdout)
        .map_err(|err| Invalid::NotInstalled(format!("unreadable meta-schemas ({err}): {how}")))?;
    // Both name themselves as their own meta-schema, which no validator
    // knows; they are draft 7 schemas.
    for schema in [&mut openrpc, &mut json_schema] {
        if let Some(object) = schema.as_object_mut() {
            object.remove("$schema");
        }
    }
    let broken = |err: &dyn fmt::Display| {
        Invalid::NotInstalled(format!("the meta-schema does not compile: {err}"))
    };
    let registry = jsonschema::Registry::new()
        .add(JSON_SCHEMA_META, Draft::Draft7.create_resource(json_schema))
        .map_err(|e| broken(&e))?
        .prepare()
        .map_err(|e| broken(&e))?;
    jsonschema::options()
        .with_draft(Draft::Draft7)
        .with_registry(&registry)
        .offline()
        .build(&openrpc)
        .map_err(|e| broken(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({
            "openrpc": "1.3.2",
            "info": {"title": "t", "version": "1"},
            "methods": [{
                "name": "add",
                "params": [{"name": "a", "required": true, "schema": {"type": "integer"}}],
                "result": {"name": "sum", "schema": true},
                "paramStructure": "either",
                "errors": [{"code": -32050, "message": "overflow"}],
                "x-notification": true
            }]
        })
    }

    #[test]
    fn a_valid_document_passes() {
        validate(&minimal()).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn broken_documents_fail() {
        let mut no_methods = minimal();
        no_methods.as_object_mut().map(|d| d.remove("methods"));
        let mut bad_structure = minimal();
        bad_structure["methods"][0]["paramStructure"] = json!("sideways");
        let mut unknown_member = minimal();
        unknown_member["methods"][0]["notification"] = json!(true);
        let mut bad_schema = minimal();
        bad_schema["methods"][0]["params"][0]["schema"] = json!({"type": 7});
        let mut bad_error = minimal();
        bad_error["methods"][0]["errors"][0]["code"] = json!("x");
        let cases = [
            (no_methods, "\"methods\" is a required property"),
            (bad_structure, "\"sideways\" is not one of"),
            (unknown_member, "'notification' was unexpected"),
            (bad_schema, "7 is not of type \"string\""),
            (bad_error, "\"x\" is not of type \"integer\""),
        ];
        for (broken, culprit) in cases {
            match validate(&broken) {
                Err(Invalid::Errors(errors)) => assert!(
                    errors.iter().any(|e| e.contains(culprit)),
                    "{culprit} not in {errors:#?}"
                ),
                other => panic!("{broken} gave {other:?}"),
            }
        }
    }
}
