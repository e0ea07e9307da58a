//! A provider's published API description, compiled into one validator per body.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

/// What a check of one body found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The body matches the operation's schema.
    Valid,
    /// The description gives no schema for this body (an answer without content, say).
    NoSchema,
    /// The body breaks the contract, or could not be checked (no such operation, a schema
    /// that does not compile): the reasons, each naming the operation.
    Violations(Vec<String>),
}

/// One operation of the description.
#[derive(Debug)]
struct Operation {
    method: String,
    template: String,
    segments: Vec<Option<String>>,
    request: Option<Value>,
    responses: Vec<(String, Option<Value>)>,
}

/// A provider's published API description (OpenAPI 3.0 or Swagger 2.0, JSON), repaired
/// ([`Contract::repair`]) and ready to check request and answer bodies against.
pub struct Contract {
    name: String,
    root: Value,
    base_path: String,
    operations: Vec<Operation>,
    compiled: Mutex<HashMap<String, Result<Arc<jsonschema::Validator>, String>>>,
}

impl std::fmt::Debug for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contract")
            .field("name", &self.name)
            .field("operations", &self.operations.len())
            .finish()
    }
}

impl Contract {
    /// Reads, repairs and indexes the description at `path`.
    ///
    /// # Panics
    /// When the file cannot be read or is not a JSON API description: a test cannot run
    /// without its contract.
    pub fn load(path: &Path) -> Contract {
        let text = std::fs::read(path)
            .unwrap_or_else(|e| panic!("read the API description {}: {e}", path.display()));
        let doc: Value = serde_json::from_slice(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Contract::from_value(&name, doc)
    }

    /// Repairs and indexes the description `doc`, called `name` in messages.
    pub fn from_value(name: &str, mut doc: Value) -> Contract {
        Contract::repair(&mut doc);
        let base_path = match doc.get("basePath").and_then(Value::as_str) {
            Some(b) => b.trim_end_matches('/').to_owned(),
            None => doc
                .pointer("/servers/0/url")
                .and_then(Value::as_str)
                .and_then(|u| u.split_once("://").map(|(_, rest)| rest))
                .and_then(|rest| rest.find('/').map(|i| rest[i..].to_owned()))
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_owned(),
        };
        let mut operations = vec![];
        for (template, item) in doc
            .get("paths")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let shared: Vec<Value> = item
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (method, op) in item.as_object().into_iter().flatten() {
                if !["get", "put", "post", "delete", "patch", "head", "options"]
                    .contains(&method.as_str())
                {
                    continue;
                }
                let segments = template
                    .trim_matches('/')
                    .split('/')
                    .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                    .collect();
                operations.push(Operation {
                    method: method.clone(),
                    template: template.clone(),
                    segments,
                    request: request_schema(&doc, op, &shared),
                    responses: response_schemas(&doc, op),
                });
            }
        }
        let mut root = Map::new();
        for key in ["components", "definitions"] {
            if let Some(v) = doc.get(key) {
                root.insert(key.to_owned(), v.clone());
            }
        }
        Contract {
            name: name.to_owned(),
            root: Value::Object(root),
            base_path,
            operations,
            compiled: Mutex::new(HashMap::new()),
        }
    }

    /// The documented, mechanical repairs (see the crate's README): `oneOf` becomes `anyOf`,
    /// an empty `oneOf`/`anyOf`/`allOf` goes, `nullable`/`x-nullable` add `null` to the type,
    /// duplicate `enum` values go.
    pub fn repair(value: &mut Value) {
        match value {
            Value::Object(map) => {
                if let Some(branches) = map.remove("oneOf") {
                    map.insert("anyOf".to_owned(), branches);
                }
                // An empty composition (`oneOf: []`) is not a schema; it constrains nothing.
                for key in ["anyOf", "allOf"] {
                    if map
                        .get(key)
                        .and_then(Value::as_array)
                        .is_some_and(Vec::is_empty)
                    {
                        map.remove(key);
                    }
                }
                let nullable = [map.remove("nullable"), map.remove("x-nullable")]
                    .into_iter()
                    .flatten()
                    .any(|v| v == Value::Bool(true));
                if nullable {
                    match map.get_mut("type") {
                        Some(Value::String(t)) => {
                            let t = std::mem::take(t);
                            map.insert("type".to_owned(), json!([t, "null"]));
                        }
                        Some(Value::Array(types)) if !types.contains(&json!("null")) => {
                            types.push(json!("null"));
                        }
                        _ => {}
                    }
                    if let Some(Value::Array(values)) = map.get_mut("enum")
                        && !values.contains(&Value::Null)
                    {
                        values.push(Value::Null);
                    }
                    // A `$ref` or composition that is nullable: either it, or null.
                    if !map.contains_key("type") && !map.is_empty() {
                        let inner = Value::Object(std::mem::take(map));
                        map.insert("anyOf".to_owned(), json!([inner, { "type": "null" }]));
                    }
                }
                if let Some(Value::Array(values)) = map.get_mut("enum") {
                    let mut seen: Vec<Value> = vec![];
                    values.retain(|v| {
                        let fresh = !seen.contains(v);
                        if fresh {
                            seen.push(v.clone());
                        }
                        fresh
                    });
                }
                for v in map.values_mut() {
                    Contract::repair(v);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(Contract::repair),
            _ => {}
        }
    }

    /// The operation `method path` (a path as sent, query included, base path included),
    /// preferring literal segments over parameters (`/v9/projects/x/env` over
    /// `/v9/projects/{id}/{x}`).
    fn operation(&self, method: &str, path: &str) -> Option<&Operation> {
        let path = path.split('?').next().unwrap_or_default();
        // The path under the base path, and as sent: a description may write a path with
        // its base path in it once more (Netlify's `getSiteEnvVars`).
        let under_base = path.strip_prefix(&self.base_path).unwrap_or(path);
        let method = method.to_ascii_lowercase();
        [under_base, path]
            .into_iter()
            .flat_map(|path| {
                let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
                let method = method.clone();
                self.operations.iter().filter(move |op| {
                    op.method == method
                        && op.segments.len() == parts.len()
                        && op
                            .segments
                            .iter()
                            .zip(&parts)
                            .all(|(s, p)| s.as_deref().is_none_or(|lit| lit == *p))
                })
            })
            .max_by_key(|op| op.segments.iter().filter(|s| s.is_some()).count())
    }

    /// Checks the JSON body a client sent with `method path`.
    pub fn check_request(&self, method: &str, path: &str, body: &Value) -> Verdict {
        let Some(op) = self.operation(method, path) else {
            return self.unknown(method, path);
        };
        match &op.request {
            None => Verdict::NoSchema,
            Some(schema) => self.check(op, "request", schema, body),
        }
    }

    /// Checks the JSON body answered with `status` to `method path`.
    pub fn check_response(&self, method: &str, path: &str, status: u16, body: &Value) -> Verdict {
        let Some(op) = self.operation(method, path) else {
            return self.unknown(method, path);
        };
        let code = status.to_string();
        let class = format!("{}XX", status / 100);
        let found = ["exact", "class", "default"].iter().find_map(|which| {
            op.responses.iter().find(|(k, _)| match *which {
                "exact" => *k == code,
                "class" => k.eq_ignore_ascii_case(&class),
                _ => k == "default",
            })
        });
        match found {
            Some((_, Some(schema))) => self.check(op, &format!("answer {status}"), schema, body),
            Some((_, None)) => Verdict::NoSchema,
            // Descriptions seldom list every error a platform can answer (a 404 of a read,
            // a 429): an unlisted error has no schema to check; an unlisted success does.
            None if status >= 400 => Verdict::NoSchema,
            None => Verdict::Violations(vec![format!(
                "{}: {} {} answered {status}, which the description does not list for it",
                self.name,
                op.method.to_uppercase(),
                op.template
            )]),
        }
    }

    fn unknown(&self, method: &str, path: &str) -> Verdict {
        Verdict::Violations(vec![format!(
            "{}: no operation {method} {path} in the description",
            self.name
        )])
    }

    fn check(&self, op: &Operation, what: &str, schema: &Value, body: &Value) -> Verdict {
        let key = format!("{} {} {what}", op.method, op.template);
        let validator = {
            let mut compiled = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
            compiled
                .entry(key.clone())
                .or_insert_with(|| self.compile(schema))
                .clone()
        };
        let where_ = format!(
            "{}: {} {} ({what})",
            self.name,
            op.method.to_uppercase(),
            op.template
        );
        match validator {
            Err(e) => Verdict::Violations(vec![format!(
                "{where_}: its schema could not be compiled, so the body would go unchecked: {e}"
            )]),
            Ok(v) => {
                let errors: Vec<String> = v
                    .iter_errors(body)
                    .take(5)
                    .map(|e| format!("{where_}: at `{}`: {e}", e.instance_path()))
                    .collect();
                if errors.is_empty() {
                    Verdict::Valid
                } else {
                    Verdict::Violations(errors)
                }
            }
        }
    }

    fn compile(&self, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        let mut root = self.root.clone();
        if let Value::Object(map) = &mut root {
            map.insert("allOf".to_owned(), json!([schema]));
        }
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(false)
            .build(&root)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }
}

/// Follows one local `$ref` (`#/components/requestBodies/X`) when `value` is one.
fn deref<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(r) if r.starts_with("#/") => doc.pointer(&r[1..]).unwrap_or(value),
        _ => value,
    }
}

/// The JSON schema of a media-type map (`content`), if it has a JSON entry.
fn json_schema_of(content: Option<&Value>) -> Option<Value> {
    let content = content?.as_object()?;
    content
        .iter()
        .find(|(media, _)| media.contains("json"))
        .and_then(|(_, m)| m.get("schema"))
        .cloned()
}

fn request_schema(doc: &Value, op: &Value, shared: &[Value]) -> Option<Value> {
    if let Some(body) = op.get("requestBody") {
        return json_schema_of(deref(doc, body).get("content"));
    }
    // Swagger 2.0: the `in: body` parameter.
    op.get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(shared)
        .map(|p| deref(doc, p))
        .find(|p| p.get("in").and_then(Value::as_str) == Some("body"))
        .and_then(|p| p.get("schema").cloned())
}

fn response_schemas(doc: &Value, op: &Value) -> Vec<(String, Option<Value>)> {
    op.get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(status, r)| {
            let r = deref(doc, r);
            let schema = match r.get("content") {
                Some(content) => json_schema_of(Some(content)),
                None => r.get("schema").cloned(),
            };
            (status.clone(), schema)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Contract {
        Contract::from_value(
            "tiny.json",
            json!({
                "openapi": "3.0.0",
                "servers": [{ "url": "https://api.example.com/v1" }],
                "paths": {
                    "/things/{id}": {
                        "patch": {
                            "requestBody": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Thing" } } } },
                            "responses": { "200": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Thing" } } } }, "204": { "description": "none" } }
                        }
                    },
                    "/things/special": { "patch": { "responses": { "200": { "description": "none" } } } }
                },
                "components": { "schemas": {
                    "Thing": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": { "type": "string" },
                            "note": { "type": "string", "nullable": true },
                            "kind": { "type": "string", "enum": ["a", "b", "a"] },
                            "shape": { "oneOf": [ { "type": "object" }, { "type": "object", "properties": { "r": { "type": "number" } } } ] },
                            "empty": { "oneOf": [] }
                        }
                    }
                } }
            }),
        )
    }

    #[test]
    fn a_body_breaking_its_schema_is_reported_with_the_operation_and_the_place() {
        let c = tiny();
        let v = c.check_request("PATCH", "/v1/things/7", &json!({ "name": 3 }));
        let Verdict::Violations(v) = v else {
            panic!("not caught: {v:?}")
        };
        assert!(
            v[0].contains("PATCH /things/{id}") && v[0].contains("/name"),
            "{v:?}"
        );
        assert_eq!(
            c.check_request("PATCH", "/v1/things/7?x=1", &json!({ "name": "n" })),
            Verdict::Valid
        );
    }

    #[test]
    fn the_repairs_accept_null_where_nullable_overlapping_branches_and_duplicate_enums() {
        let c = tiny();
        let body =
            json!({ "name": "n", "note": null, "kind": "a", "shape": { "r": 1 }, "empty": 1 });
        assert_eq!(
            c.check_request("PATCH", "/v1/things/7", &body),
            Verdict::Valid
        );
        // Nullable does not mean anything goes.
        let bad = json!({ "name": "n", "note": 5 });
        assert!(matches!(
            c.check_request("PATCH", "/v1/things/7", &bad),
            Verdict::Violations(_)
        ));
    }

    #[test]
    fn unknown_operations_and_unlisted_statuses_are_violations_and_bodiless_answers_have_no_schema()
    {
        let c = tiny();
        assert!(matches!(
            c.check_request("POST", "/v1/things/7", &json!({})),
            Verdict::Violations(_)
        ));
        assert!(matches!(
            c.check_response("PATCH", "/v1/things/7", 202, &json!({})),
            Verdict::Violations(_)
        ));
        assert_eq!(
            c.check_response("PATCH", "/v1/things/7", 404, &json!({})),
            Verdict::NoSchema
        );
        assert_eq!(
            c.check_response("PATCH", "/v1/things/7", 204, &json!({})),
            Verdict::NoSchema
        );
        // The literal path wins over the parameter.
        assert_eq!(
            c.check_response("PATCH", "/v1/things/special", 200, &json!(1)),
            Verdict::NoSchema
        );
    }

    #[test]
    fn a_schema_that_cannot_be_compiled_fails_closed() {
        let c = Contract::from_value(
            "broken.json",
            json!({
                "openapi": "3.0.0",
                "paths": { "/x": { "post": {
                    "requestBody": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Missing" } } } },
                    "responses": {}
                } } }
            }),
        );
        let Verdict::Violations(v) = c.check_request("POST", "/x", &json!({})) else {
            panic!("an uncompilable schema passed")
        };
        assert!(v[0].contains("could not be compiled"), "{v:?}");
    }
}
