//! `-o go-template=...` (and `template`, `go-template-file`, `templatefile`):
//! Go text/template over the object as JSON, through the `gtmpl` crate.

use gtmpl::{Context, Template};
use serde_json::Value;

/// A parsed go-template with its source (for error messages).
#[derive(Clone)]
pub struct GoTemplate {
    source: String,
    template: std::sync::Arc<Template>,
}

impl std::fmt::Debug for GoTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("GoTemplate").field(&self.source).finish()
    }
}

impl GoTemplate {
    /// Parses `source`; the error is the parser's message.
    pub fn parse(source: &str) -> Result<GoTemplate, String> {
        let mut template = Template::default();
        template.parse(source).map_err(|e| e.to_string())?;
        Ok(GoTemplate {
            source: source.to_string(),
            template: std::sync::Arc::new(template),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the template over `data`; the error is the executor's message.
    pub fn execute(&self, data: &Value) -> Result<String, String> {
        self.template
            .render(&Context::from(to_gtmpl(data)))
            .map_err(|e| e.to_string())
    }
}

/// JSON as Go's `json.Unmarshal` into `interface{}` gives it to the template:
/// objects are maps (a missing key is `<no value>`), numbers are numbers.
fn to_gtmpl(value: &Value) -> gtmpl::Value {
    match value {
        Value::Null => gtmpl::Value::Nil,
        Value::Bool(b) => gtmpl::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => gtmpl::Value::from(i),
            (_, Some(u), _) => gtmpl::Value::from(u),
            (_, _, Some(f)) => gtmpl::Value::from(f),
            _ => gtmpl::Value::Nil,
        },
        Value::String(s) => gtmpl::Value::String(s.clone()),
        Value::Array(items) => gtmpl::Value::Array(items.iter().map(to_gtmpl).collect()),
        Value::Object(map) => {
            gtmpl::Value::Map(map.iter().map(|(k, v)| (k.clone(), to_gtmpl(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(source: &str, data: &Value) -> String {
        GoTemplate::parse(source)
            .and_then(|t| t.execute(data))
            .unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn fields_range_and_functions() {
        let list = json!({"kind": "List", "items": [
            {"metadata": {"name": "a", "labels": {"app": "web"}}, "spec": {"replicas": 3, "containers": [{"name": "c"}]}},
            {"metadata": {"name": "b"}, "spec": {"containers": []}}
        ]});
        assert_eq!(render("{{.kind}}", &list), "List");
        assert_eq!(
            render(
                "{{range .items}}{{.metadata.name}} {{len .spec.containers}};{{end}}",
                &list
            ),
            "a 1;b 0;"
        );
        assert_eq!(
            render("{{index .items 0 \"metadata\" \"labels\" \"app\"}}", &list),
            "web"
        );
        assert_eq!(
            render("{{range .items}}{{printf \"%s-%v\" .metadata.name (len .spec.containers)}},{{end}}", &list),
            "a-1,b-0,"
        );
        assert_eq!(
            render("{{(index .items 0).spec.replicas}} {{.missing}}", &list),
            "3 <no value>"
        );
        assert!(GoTemplate::parse("{{.items").is_err());
    }
}
