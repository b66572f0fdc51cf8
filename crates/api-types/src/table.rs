//! Server-side `meta.k8s.io/v1` Table printing, as upstream's
//! `pkg/printers/internalversion/printers.go`: per-kind column definitions (name,
//! type, format, description, priority) and cells computed from the object. The
//! apiserver answers `Accept: ...;as=Table;v=v1;g=meta.k8s.io` with [`to_table`].
//!
//! Upstream's storage `TableConvertor` always generates the wide form (every column,
//! priority 1 included); kubectl hides priority-1 columns unless `-o wide`. Kinds
//! without a printer get upstream's `DefaultTableConvertor` (`Name`, `Created At`).
//!
//! Cells follow upstream's Go values, including its quirks: some columns declared
//! `string` carry integers (Secret `Data`, Event `Count`) and CronJob `Suspend` is a
//! `boolean` column carrying `True`/`False`/`<unset>` strings.

mod cluster;
mod corev1;
mod events;
mod pod;
mod scaling;
mod storage;
mod util;
mod workloads;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use once_cell::sync::Lazy;
use serde_json::{json, Value};

use crate::registry::ResourceInfo;

/// What each row's `object` holds (`?includeObject=`), as upstream's `IncludeObjectPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No `object` in the rows.
    None,
    /// A `meta.k8s.io/v1` `PartialObjectMetadata` carrying the object's metadata.
    #[default]
    Metadata,
    /// The full object.
    Object,
}

impl IncludeObject {
    /// Parses `?includeObject=None|Metadata|Object`; anything else means the default, `Metadata`.
    pub fn from_query(v: Option<&str>) -> IncludeObject {
        match v {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// One `TableColumnDefinition`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Column {
    pub name: &'static str,
    pub ty: &'static str,
    pub format: &'static str,
    pub description: String,
    pub priority: i32,
}

impl Column {
    pub(crate) fn new(
        name: &'static str,
        ty: &'static str,
        description: impl Into<String>,
    ) -> Column {
        Column {
            name,
            ty,
            format: "",
            description: description.into(),
            priority: 0,
        }
    }

    /// Shown only by `kubectl get -o wide`.
    pub(crate) fn wide(mut self) -> Column {
        self.priority = 1;
        self
    }

    /// The `Name` column every printer starts with.
    pub(crate) fn name() -> Column {
        Column {
            format: "name",
            ..Column::new("Name", "string", util::doc::<ObjectMeta>("name"))
        }
    }

    /// The `Age` column (`creationTimestamp`).
    pub(crate) fn age() -> Column {
        Column::new(
            "Age",
            "string",
            util::doc::<ObjectMeta>("creationTimestamp"),
        )
    }

    pub(crate) fn containers() -> Column {
        Column::new(
            "Containers",
            "string",
            "Names of each container in the template.",
        )
        .wide()
    }

    pub(crate) fn images() -> Column {
        Column::new(
            "Images",
            "string",
            "Images referenced by each container in the template.",
        )
        .wide()
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.ty,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// Builds a printer's column list once (descriptions come from the API schema).
macro_rules! columns {
    ($($col:expr),* $(,)?) => {{
        static COLUMNS: once_cell::sync::Lazy<Vec<$crate::table::Column>> =
            once_cell::sync::Lazy::new(|| vec![$($col),*]);
        COLUMNS.as_slice()
    }};
}
pub(crate) use columns;

/// One printed row: cells and, for pods, upstream's row conditions.
pub(crate) struct Row {
    pub cells: Vec<Value>,
    pub conditions: Option<Value>,
}

impl From<Vec<Value>> for Row {
    fn from(cells: Vec<Value>) -> Row {
        Row {
            cells,
            conditions: None,
        }
    }
}

/// Returns a printer's column definitions.
pub(crate) type ColumnsFn = fn() -> &'static [Column];
/// Prints one object as of `now`.
pub(crate) type RowFn = fn(&Value, DateTime<Utc>) -> Row;

/// A kind's printer: its columns and its row function.
#[derive(Clone, Copy)]
pub(crate) struct Printer {
    pub columns: ColumnsFn,
    pub row: RowFn,
}

fn printer_for(info: &ResourceInfo) -> Option<Printer> {
    corev1::printer(info.group, info.kind)
        .or_else(|| pod::printer(info.group, info.kind))
        .or_else(|| workloads::printer(info.group, info.kind))
        .or_else(|| cluster::printer(info.group, info.kind))
        .or_else(|| events::printer(info.group, info.kind))
        .or_else(|| storage::printer(info.group, info.kind))
        .or_else(|| scaling::printer(info.group, info.kind))
}

/// upstream `rest.DefaultTableConvertor` columns.
fn default_columns() -> &'static [Column] {
    static COLUMNS: Lazy<Vec<Column>> = Lazy::new(|| {
        vec![
            Column::name(),
            Column::new(
                "Created At",
                "date",
                util::doc::<ObjectMeta>("creationTimestamp"),
            ),
        ]
    });
    COLUMNS.as_slice()
}

/// upstream `rest.DefaultTableConvertor` cells: name and the creation time in RFC 3339 UTC.
fn default_row(obj: &Value, _now: DateTime<Utc>) -> Row {
    let created = util::parse_time(util::opt_s(obj, &["metadata", "creationTimestamp"]))
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        // Go formats the zero time for an unset timestamp.
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![Value::from(util::name(obj)), Value::from(created)].into()
}

fn row_object(obj: &Value, include: IncludeObject) -> Option<Value> {
    match include {
        IncludeObject::None => None,
        IncludeObject::Object => Some(obj.clone()),
        IncludeObject::Metadata => Some(json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        })),
    }
}

/// Renders `items` of resource `info` as a `meta.k8s.io/v1` Table. The caller fills
/// `metadata.resourceVersion` / `metadata.continue`.
pub fn to_table(
    info: &ResourceInfo,
    items: &[Value],
    now: DateTime<Utc>,
    include_object: IncludeObject,
) -> Value {
    let printer = printer_for(info).unwrap_or(Printer {
        columns: default_columns,
        row: default_row,
    });
    let columns: Vec<Value> = (printer.columns)().iter().map(Column::to_json).collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let row = (printer.row)(item, now);
            let mut out = serde_json::Map::new();
            out.insert("cells".into(), Value::Array(row.cells));
            if let Some(conditions) = row.conditions {
                out.insert("conditions".into(), conditions);
            }
            if let Some(object) = row_object(item, include_object) {
                out.insert("object".into(), object);
            }
            Value::Object(out)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// upstream `duration.HumanDuration`: a succinct duration with ~2-3 significant figures.
pub fn human_duration(d: chrono::Duration) -> String {
    // Up to 2 s in the future counts as "now" (clock skew between machines).
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d.num_minutes();
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d.num_hours();
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{h}h", hours / 24);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{dy}d", hours / 24 / 365);
    }
    format!("{}y", hours / 24 / 365)
}

/// upstream `translateTimestampSince`: the age of an RFC 3339 timestamp, `<unknown>`
/// when it is missing (or unparsable).
pub fn translate_timestamp_since(ts: Option<&str>, now: DateTime<Utc>) -> String {
    match util::parse_time(ts) {
        Some(t) => human_duration(now.signed_duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    pub(crate) fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 6, 1, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    /// RFC 3339 string `secs` seconds before [`now`].
    pub(crate) fn ago(secs: i64) -> String {
        (now() - Duration::seconds(secs))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    /// `metadata` of an object `name` in `default`, created `age_secs` before [`now`].
    pub(crate) fn meta_aged(name: &str, age_secs: i64) -> Value {
        json!({"name": name, "namespace": "default", "creationTimestamp": ago(age_secs)})
    }

    pub(crate) fn info(group: &str, kind: &str) -> &'static ResourceInfo {
        crate::registry::RESOURCES
            .iter()
            .find(|r| r.group == group && r.kind == kind)
            .expect("resource is registered")
    }

    /// Column names with their priorities.
    pub(crate) fn column_names(table: &Value) -> Vec<(String, i64)> {
        table["columnDefinitions"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().expect("name").to_string(),
                    c["priority"].as_i64().expect("priority"),
                )
            })
            .collect()
    }

    /// Column names, priority-1 ones suffixed `(1)`.
    pub(crate) fn labeled_column_names(table: &Value) -> Vec<String> {
        column_names(table)
            .into_iter()
            .map(|(n, p)| if p == 1 { format!("{n}(1)") } else { n })
            .collect()
    }

    pub(crate) fn cells(table: &Value, row: usize) -> Vec<Value> {
        table["rows"][row]["cells"]
            .as_array()
            .expect("cells")
            .clone()
    }

    /// Prints one object of `group`/`kind` and returns its cells.
    pub(crate) fn print_one(group: &str, kind: &str, obj: Value) -> (Value, Vec<Value>) {
        let table = to_table(info(group, kind), &[obj], now(), IncludeObject::None);
        let cells = cells(&table, 0);
        assert_eq!(
            cells.len(),
            table["columnDefinitions"].as_array().map_or(0, Vec::len),
            "one cell per column"
        );
        (table, cells)
    }

    #[test]
    fn human_duration_matches_upstream() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (310, "5m10s"),
            (600, "10m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 4 * 60, "3h4m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (3 * 86400 + 5 * 3600, "3d5h"),
            (8 * 86400, "8d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (735 * 86400, "2y5d"),
            (8 * 365 * 86400 + 3 * 86400, "8y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::seconds(secs)), want, "{secs}s");
        }
    }

    #[test]
    fn translate_timestamp_since_handles_missing() {
        assert_eq!(translate_timestamp_since(None, now()), "<unknown>");
        assert_eq!(translate_timestamp_since(Some(""), now()), "<unknown>");
        assert_eq!(translate_timestamp_since(Some(&ago(310)), now()), "5m10s");
        assert_eq!(
            translate_timestamp_since(Some("2024-06-01T11:59:55.123456Z"), now()),
            "4s"
        );
    }

    #[test]
    fn include_object_parsing() {
        assert_eq!(IncludeObject::from_query(None), IncludeObject::Metadata);
        assert_eq!(IncludeObject::from_query(Some("None")), IncludeObject::None);
        assert_eq!(
            IncludeObject::from_query(Some("Object")),
            IncludeObject::Object
        );
        assert_eq!(
            IncludeObject::from_query(Some("Metadata")),
            IncludeObject::Metadata
        );
    }

    #[test]
    fn table_envelope_and_row_objects() {
        let obj = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm", "namespace": "default", "creationTimestamp": ago(60)},
            "data": {"a": "1"}
        });
        let info = info("", "ConfigMap");
        let t = to_table(
            info,
            std::slice::from_ref(&obj),
            now(),
            IncludeObject::Metadata,
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"], json!({}));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "cm");
        assert!(t["rows"][0]["object"].get("data").is_none());
        assert!(t["rows"][0].get("conditions").is_none());

        let t = to_table(
            info,
            std::slice::from_ref(&obj),
            now(),
            IncludeObject::Object,
        );
        assert_eq!(t["rows"][0]["object"], obj);
        let t = to_table(info, std::slice::from_ref(&obj), now(), IncludeObject::None);
        assert!(t["rows"][0].get("object").is_none());

        let name_col = &t["columnDefinitions"][0];
        assert_eq!(name_col["name"], "Name");
        assert_eq!(name_col["type"], "string");
        assert_eq!(name_col["format"], "name");
        assert_eq!(name_col["priority"], 0);
        assert!(name_col["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("Name must be unique within a namespace.")));
        let age_col = &t["columnDefinitions"][2];
        assert_eq!(age_col["format"], "");
        assert!(age_col["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("CreationTimestamp is a timestamp")));
    }

    #[test]
    fn default_convertor_for_kinds_without_printer() {
        for (group, kind) in [
            ("rbac.authorization.k8s.io", "Role"),
            ("rbac.authorization.k8s.io", "ClusterRole"),
            ("", "LimitRange"),
        ] {
            let obj =
                json!({"metadata": {"name": "x", "creationTimestamp": "2024-01-02T03:04:05Z"}});
            let (t, cells) = print_one(group, kind, obj);
            assert_eq!(
                column_names(&t),
                vec![("Name".to_string(), 0), ("Created At".to_string(), 0)]
            );
            assert_eq!(t["columnDefinitions"][1]["type"], "date");
            assert_eq!(cells, vec![json!("x"), json!("2024-01-02T03:04:05Z")]);
        }
    }

    #[test]
    fn empty_list_still_has_columns() {
        let t = to_table(info("", "Pod"), &[], now(), IncludeObject::Metadata);
        assert_eq!(t["rows"], json!([]));
        assert_eq!(column_names(&t).len(), 9);
    }
}
