//! Each method's schemas placed into one OpenRPC document: their definitions moved to
//! `components.schemas` under names that cannot clash, in JSON Schema draft 7.
//!
//! Every method's schemas come from a generator of their own (or by hand),
//! so two of them may each define a different `Point`, or a `Procedure`
//! beside the one `system.describe` defines: a name is shared only by
//! definitions that are the same, and another gets a fresh name
//! (`Point2`). OpenRPC 1.3 asks for draft 7 schemas, while schemars writes
//! 2020-12 (and `MethodInfo` keeps that form, which the XML-RPC reader
//! follows); the few keywords that differ are rewritten here, for
//! schemas given by hand as much as for generated ones.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Where a reference into the document's components points.
const COMPONENTS: &str = "#/components/schemas/";

/// The definitions of every method's schemas: OpenRPC's `components.schemas`.
#[derive(Default)]
pub(super) struct Components {
    schemas: Map<String, Value>,
}

impl Components {
    /// The schemas, by name.
    pub(super) fn schemas(&self) -> &Map<String, Value> {
        &self.schemas
    }

    /// The definition a `#/components/schemas/…` reference points to.
    pub(super) fn resolve<'a>(&'a self, schema: &'a Value) -> Option<&'a Value> {
        let target = schema.get("$ref")?.as_str()?;
        self.schemas.get(target.strip_prefix(COMPONENTS)?)
    }

    /// `schema`, a root schema, made fit to sit inside the document: its
    /// definitions move here and every reference points here. A root that
    /// refers to itself (a recursive type, `"$ref": "#"`, which in the
    /// document would mean the whole document) moves here too, named by
    /// its title or else by `fallback`, and a reference to it takes its place.
    pub(super) fn hoist(&mut self, schema: &Value, fallback: &str) -> Value {
        let mut root = schema.clone();
        let mut defs = Vec::new();
        if let Some(object) = root.as_object_mut() {
            object.remove("$schema");
            for key in ["$defs", "definitions"] {
                if let Some(Value::Object(found)) = object.remove(key) {
                    defs.extend(found);
                }
            }
        }
        // NB: schemars writes `"$ref": "#"` for the root type wherever it
        // is met, in its own definitions too (`Dir` holds `Entry`, which
        // holds a `Dir`).
        if refers_to_root(&root) || defs.iter().any(|(_, def)| refers_to_root(def)) {
            let base = title(&root).unwrap_or(fallback);
            let name = std::iter::once(base.to_owned())
                .chain((2..).map(|n| format!("{base}{n}")))
                .find(|name| defs.iter().all(|(taken, _)| taken != name))
                .unwrap_or_else(|| base.to_owned());
            let mut own = std::mem::replace(&mut root, Value::Null);
            // NB: a `$ref` to the root becomes one to the definition by
            // the name it is given below, like any other reference.
            point_root_at(&mut own, &name);
            for (_, def) in &mut defs {
                point_root_at(def, &name);
            }
            defs.push((name.clone(), own));
            root = serde_json::json!({ "$ref": format!("#/$defs/{name}") });
        }
        let renames = self.names_for(&defs);
        for (name, mut def) in defs {
            place(&mut def, &renames);
            let name = renames.get(&name).cloned().unwrap_or(name);
            self.schemas.entry(name).or_insert(def);
        }
        place(&mut root, &renames);
        root
    }

    /// The names that `defs` must take instead of their own: those of a
    /// definition that differs from the one already here under that name.
    ///
    /// NB: a fixed point, since one rename can make another: a definition
    /// that refers to a renamed one differs from its namesake here too,
    /// even where the two read the same before. Only once the renames are
    /// settled does a renamed definition take the name an identical one got
    /// before (the second `Point2`): compared any earlier, it could match
    /// one whose references point elsewhere.
    fn names_for(&self, defs: &[(String, Value)]) -> HashMap<String, String> {
        let mut renames: HashMap<String, String> = HashMap::new();
        loop {
            let mut changed = false;
            for (name, def) in defs {
                if renames.contains_key(name) {
                    continue;
                }
                let Some(existing) = self.schemas.get(name) else {
                    continue;
                };
                if &placed(def, &renames) != existing {
                    let fresh = (2..)
                        .map(|n| format!("{name}{n}"))
                        .find(|candidate| {
                            !self.schemas.contains_key(candidate)
                                && !defs.iter().any(|(other, _)| other == candidate)
                                && !renames.values().any(|taken| taken == candidate)
                        })
                        .unwrap_or_else(|| name.clone());
                    renames.insert(name.clone(), fresh);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // NB: each step turns a fresh name into one already here, so this
        // ends; and a definition here cannot refer to a fresh name, so no
        // step undoes what an earlier one matched.
        loop {
            let mut changed = false;
            for (name, def) in defs {
                let Some(target) = renames.get(name) else {
                    continue;
                };
                if self.schemas.contains_key(target) {
                    continue;
                }
                let placed = placed(def, &renames);
                let same = self.schemas.iter().find(|(other, there)| {
                    other
                        .strip_prefix(name.as_str())
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                        && **there == placed
                });
                if let Some((same, _)) = same {
                    renames.insert(name.clone(), same.clone());
                    changed = true;
                }
            }
            if !changed {
                return renames;
            }
        }
    }
}

/// Makes `schema` fit to stand here: its references point here, with
/// `renames` applied, and it is written in draft 7.
fn place(schema: &mut Value, renames: &HashMap<String, String>) {
    repoint(schema, renames);
    to_draft7(schema);
}

/// `def` as it would stand here.
fn placed(def: &Value, renames: &HashMap<String, String>) -> Value {
    let mut placed = def.clone();
    place(&mut placed, renames);
    placed
}

/// A schema's `title`.
fn title(schema: &Value) -> Option<&str> {
    schema.get("title").and_then(Value::as_str)
}

/// Whether a reference in `value` points at the root of its schema.
fn refers_to_root(value: &Value) -> bool {
    match value {
        Value::Object(object) => {
            object.get("$ref").and_then(Value::as_str) == Some("#")
                || object.values().any(refers_to_root)
        }
        Value::Array(items) => items.iter().any(refers_to_root),
        _ => false,
    }
}

/// Rewrites references to the root as references to definition `name`.
fn point_root_at(value: &mut Value, name: &str) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(target)) = object.get_mut("$ref") {
                if target == "#" {
                    *target = format!("#/$defs/{name}");
                }
            }
            object.values_mut().for_each(|v| point_root_at(v, name));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| point_root_at(v, name)),
        _ => {}
    }
}

/// Points `#/$defs/X` and `#/definitions/X` references at
/// `#/components/schemas/X`, or at X's new name.
fn repoint(value: &mut Value, renames: &HashMap<String, String>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(target)) = object.get_mut("$ref") {
                for prefix in ["#/$defs/", "#/definitions/"] {
                    if let Some(name) = target.strip_prefix(prefix) {
                        let name = renames.get(name).map_or(name, String::as_str);
                        *target = format!("{COMPONENTS}{name}");
                        break;
                    }
                }
            }
            object.values_mut().for_each(|v| repoint(v, renames));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| repoint(v, renames)),
        _ => {}
    }
}

/// Rewrites the 2020-12 keywords that draft 7 spells otherwise or lacks:
/// `prefixItems` (a tuple) becomes an `items` array, with a list's `items`
/// as `additionalItems`; `unevaluatedProperties` becomes
/// `additionalProperties`; and a `$ref` with siblings, which draft 7
/// ignores, moves into an `allOf`.
fn to_draft7(value: &mut Value) {
    match value {
        Value::Object(object) => {
            object.values_mut().for_each(to_draft7);
            if let Some(prefix) = object.remove("prefixItems") {
                if let Some(rest) = object.insert("items".into(), prefix) {
                    object.insert("additionalItems".into(), rest);
                }
            }
            if let Some(rest) = object.remove("unevaluatedProperties") {
                to_additional_properties(object, rest);
            }
            if object.len() > 1 {
                if let Some(target) = object.remove("$ref") {
                    let all_of = object
                        .entry("allOf")
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(all_of) = all_of {
                        all_of.push(serde_json::json!({ "$ref": target }));
                    }
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(to_draft7),
        _ => {}
    }
}

/// Draft 7's `additionalProperties` in place of `unevaluated` (2020-12's
/// `unevaluatedProperties`), which `object` has just lost.
///
/// `additionalProperties` sees only the object's own `properties`, where
/// `unevaluatedProperties` also sees those its `allOf`, `anyOf`, `oneOf`
/// and `if`/`then`/`else` name (schemars writes it for a struct that
/// flattens an enum and denies unknown fields). Those names join
/// `properties`, each as `true`, so that a member they allow is not
/// refused. Where they cannot all be known (a reference among them,
/// patterns, or their own additional properties), the limit is dropped:
/// a schema that admits too much misleads less than one that refuses
/// what the method takes.
fn to_additional_properties(object: &mut Map<String, Value>, unevaluated: Value) {
    let mut names = Vec::new();
    let known = object.get("$ref").is_none()
        && APPLICATORS.iter().all(|key| {
            object
                .get(*key)
                .is_none_or(|sub| applicator_names(sub, &mut names))
        });
    if !known {
        return;
    }
    if !names.is_empty() {
        let properties = object
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(properties) = properties {
            for name in names {
                properties.entry(name).or_insert(Value::Bool(true));
            }
        }
    }
    object.entry("additionalProperties").or_insert(unevaluated);
}

/// The keywords whose subschemas `unevaluatedProperties` looks into.
const APPLICATORS: [&str; 6] = ["allOf", "anyOf", "oneOf", "if", "then", "else"];

/// Adds to `names` the members that `value` (a subschema, or a list of them
/// under an applicator) names, and says whether they are all there is.
fn applicator_names(value: &Value, names: &mut Vec<String>) -> bool {
    match value {
        Value::Array(subschemas) => subschemas.iter().all(|sub| applicator_names(sub, names)),
        Value::Bool(_) => true,
        Value::Object(schema) => {
            // NB: `additionalProperties: false` limits the subschema to
            // its own members; any other value lets it take them all.
            if schema.contains_key("$ref")
                || schema.contains_key("patternProperties")
                || schema
                    .get("additionalProperties")
                    .is_some_and(|v| v != &Value::Bool(false))
            {
                return false;
            }
            if let Some(Value::Object(properties)) = schema.get("properties") {
                names.extend(properties.keys().cloned());
            }
            APPLICATORS.iter().all(|key| {
                schema
                    .get(*key)
                    .is_none_or(|sub| applicator_names(sub, names))
            })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_different_type_under_a_taken_name_gets_a_fresh_one() {
        let mut components = Components::default();
        let a = json!({"$ref": "#/$defs/Point", "$defs": {"Point": {"properties": {"x": {}}}}});
        let b = json!({"$ref": "#/$defs/Point", "$defs": {"Point": {"properties": {"lat": {}}}}});
        assert_eq!(
            components.hoist(&a, "a"),
            json!({"$ref": "#/components/schemas/Point"})
        );
        assert_eq!(
            components.hoist(&b, "b"),
            json!({"$ref": "#/components/schemas/Point2"})
        );
        // The same type again shares its name, a renamed one too.
        assert_eq!(
            components.hoist(&a, "c"),
            json!({"$ref": "#/components/schemas/Point"})
        );
        assert_eq!(
            components.hoist(&b, "d"),
            json!({"$ref": "#/components/schemas/Point2"})
        );
        assert_eq!(
            components.schemas()["Point2"]["properties"],
            json!({"lat": {}})
        );
        assert_eq!(components.schemas().len(), 2);
    }

    #[test]
    fn a_rename_renames_what_refers_to_it() {
        let mut components = Components::default();
        let line = |point: Value| {
            json!({"$ref": "#/$defs/Line", "$defs": {
                "Line": {"properties": {"from": {"$ref": "#/$defs/Point"}}},
                "Point": point,
            }})
        };
        components.hoist(&line(json!({"properties": {"x": {}}})), "a");
        // `Line` reads the same, but its `Point` is another type.
        let root = components.hoist(&line(json!({"properties": {"lat": {}}})), "b");
        assert_eq!(root, json!({"$ref": "#/components/schemas/Line2"}));
        assert_eq!(
            components.schemas()["Line2"]["properties"]["from"],
            json!({"$ref": "#/components/schemas/Point2"})
        );
    }

    #[test]
    fn a_recursive_root_moves_into_the_components() {
        let mut components = Components::default();
        let node = json!({
            "title": "Node",
            "type": "object",
            "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}
        });
        let root = components.hoist(&node, "tree");
        assert_eq!(root, json!({"$ref": "#/components/schemas/Node"}));
        assert_eq!(
            components.schemas()["Node"]["properties"]["children"]["items"],
            json!({"$ref": "#/components/schemas/Node"})
        );
        assert_eq!(
            components.resolve(&root),
            Some(&components.schemas()["Node"])
        );
    }

    #[test]
    fn a_type_takes_an_earlier_name_only_if_its_references_match_too() {
        let mut components = Components::default();
        let item = |extra: bool, tag: &str| {
            let mut properties = json!({"tag": {"$ref": "#/$defs/Tag"}});
            if extra {
                properties["extra"] = json!({});
            }
            json!({"$ref": "#/$defs/Item", "$defs": {
                "Item": {"properties": properties},
                "Tag": {"const": tag},
            }})
        };
        components.hoist(&item(false, "X"), "a");
        assert_eq!(
            components.hoist(&item(true, "X"), "b"),
            json!({"$ref": "#/components/schemas/Item2"})
        );
        // Reads as `Item2` until its `Tag` turns out to be another type.
        assert_eq!(
            components.hoist(&item(true, "Y"), "c"),
            json!({"$ref": "#/components/schemas/Item3"})
        );
        assert_eq!(
            components.schemas()["Item3"]["properties"]["tag"],
            json!({"$ref": "#/components/schemas/Tag2"})
        );
        assert_eq!(components.schemas()["Tag2"], json!({"const": "Y"}));
    }

    #[test]
    fn a_definition_that_refers_to_the_root_refers_to_its_component() {
        let mut components = Components::default();
        // `struct Dir { entries: Vec<Entry> }`, `enum Entry { File(String), Dir(Dir) }`.
        let dir = json!({
            "title": "Dir",
            "type": "object",
            "properties": {"entries": {"type": "array", "items": {"$ref": "#/$defs/Entry"}}},
            "$defs": {"Entry": {"oneOf": [
                {"type": "object", "properties": {"File": {"type": "string"}}},
                {"type": "object", "properties": {"Dir": {"$ref": "#"}}}
            ]}}
        });
        let root = components.hoist(&dir, "list");
        assert_eq!(root, json!({"$ref": "#/components/schemas/Dir"}));
        assert_eq!(
            components.schemas()["Entry"]["oneOf"][1]["properties"]["Dir"],
            json!({"$ref": "#/components/schemas/Dir"})
        );
        assert_eq!(
            components.schemas()["Dir"]["properties"]["entries"]["items"],
            json!({"$ref": "#/components/schemas/Entry"})
        );
    }

    #[test]
    fn unevaluated_properties_keep_the_members_of_the_alternatives() {
        let mut components = Components::default();
        // A struct that denies unknown fields and flattens a tagged enum.
        let shaped = json!({
            "type": "object",
            "properties": {"id": {"type": "integer"}},
            "oneOf": [
                {"properties": {"kind": {"const": "Circle"}, "r": {"type": "number"}}},
                {"properties": {"kind": {"const": "Square"}, "side": {"type": "number"}}}
            ],
            "unevaluatedProperties": false
        });
        let placed = components.hoist(&shaped, "shape");
        assert_eq!(placed["additionalProperties"], json!(false));
        assert!(placed.get("unevaluatedProperties").is_none());
        assert_eq!(
            placed["properties"],
            json!({"id": {"type": "integer"}, "kind": true, "r": true, "side": true})
        );
        // Members behind a reference cannot be listed: no limit then.
        let referred = json!({
            "properties": {"id": {}},
            "allOf": [{"$ref": "#/$defs/Shape"}],
            "unevaluatedProperties": false,
            "$defs": {"Shape": {"properties": {"r": {}}}}
        });
        let placed = components.hoist(&referred, "referred");
        assert!(placed.get("additionalProperties").is_none(), "{placed}");
        assert!(placed.get("unevaluatedProperties").is_none(), "{placed}");
    }

    #[test]
    fn schemas_are_written_in_draft_7() {
        let mut components = Components::default();
        let tuple = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "array",
            "prefixItems": [{"type": "string"}, {"$ref": "#/$defs/N", "description": "n"}],
            "minItems": 2,
            "$defs": {"N": {"type": "integer"}}
        });
        assert_eq!(
            components.hoist(&tuple, "t"),
            json!({
                "type": "array",
                "items": [
                    {"type": "string"},
                    {"description": "n", "allOf": [{"$ref": "#/components/schemas/N"}]}
                ],
                "minItems": 2
            })
        );
        let open_tuple = json!({"prefixItems": [{}], "items": {"type": "null"}});
        assert_eq!(
            components.hoist(&open_tuple, "u"),
            json!({"items": [{}], "additionalItems": {"type": "null"}})
        );
    }
}
