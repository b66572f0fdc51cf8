//! The `paths` of the OpenAPI documents: one path item per resource URL with upstream's
//! operation ids, `x-kubernetes-action`, `x-kubernetes-group-version-kind` and query
//! parameters. Rendered as Swagger 2.0 or OpenAPI 3.0 from one description.

use serde_json::{json, Map, Value};

use super::definitions::{Definitions, DELETE_OPTIONS, PATCH, STATUS};
use crate::registry::{ResourceInfo, Subresource};

/// Which document flavour to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spec {
    V2,
    V3,
}

impl Spec {
    pub fn ref_prefix(self) -> &'static str {
        match self {
            Spec::V2 => "#/definitions/",
            Spec::V3 => "#/components/schemas/",
        }
    }

    fn schema_ref(self, name: &str) -> Value {
        json!({ "$ref": format!("{}{name}", self.ref_prefix()) })
    }
}

/// The PATCH content types the apiserver accepts.
pub(crate) const PATCH_CONTENT_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

const RESPONSE_CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

#[derive(Debug, Clone, Copy)]
enum ParamType {
    String,
    Integer,
    Boolean,
}

impl ParamType {
    fn name(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Boolean => "boolean",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct QueryParam {
    name: &'static str,
    ty: ParamType,
    description: &'static str,
}

const fn q(name: &'static str, ty: ParamType, description: &'static str) -> QueryParam {
    QueryParam {
        name,
        ty,
        description,
    }
}

const PRETTY: QueryParam = q(
    "pretty",
    ParamType::String,
    "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
);
const DRY_RUN: QueryParam = q(
    "dryRun",
    ParamType::String,
    "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
);
const FIELD_MANAGER: QueryParam = q(
    "fieldManager",
    ParamType::String,
    "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
);
const FIELD_VALIDATION: QueryParam = q(
    "fieldValidation",
    ParamType::String,
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
);
const FORCE: QueryParam = q(
    "force",
    ParamType::Boolean,
    "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
);
const WRITE_PARAMS: &[QueryParam] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION];
const PATCH_PARAMS: &[QueryParam] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE];
const LIST_PARAMS: &[QueryParam] = &[
    q("allowWatchBookmarks", ParamType::Boolean, "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion."),
    q("continue", ParamType::String, "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue)."),
    q("fieldSelector", ParamType::String, "A selector to restrict the list of returned objects by their fields. Defaults to everything."),
    q("labelSelector", ParamType::String, "A selector to restrict the list of returned objects by their labels. Defaults to everything."),
    q("limit", ParamType::Integer, "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results."),
    q("resourceVersion", ParamType::String, "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset"),
    q("resourceVersionMatch", ParamType::String, "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset"),
    q("sendInitialEvents", ParamType::Boolean, "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection."),
    q("timeoutSeconds", ParamType::Integer, "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity."),
    q("watch", ParamType::Boolean, "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion."),
];
const DELETE_PARAMS: &[QueryParam] = &[
    DRY_RUN,
    q("gracePeriodSeconds", ParamType::Integer, "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately."),
    q("ignoreStoreReadErrorWithClusterBreakingPotential", ParamType::Boolean, "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error."),
    q("orphanDependents", ParamType::Boolean, "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list. Either this field or PropagationPolicy may be set, but not both."),
    q("propagationPolicy", ParamType::String, "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground."),
];
const LOG_PARAMS: &[QueryParam] = &[
    q("container", ParamType::String, "The container for which to stream logs. Defaults to only container if there is one container in the pod."),
    q("follow", ParamType::Boolean, "Follow the log stream of the pod. Defaults to false."),
    q("limitBytes", ParamType::Integer, "If set, the number of bytes to read from the server before terminating the log output."),
    q("previous", ParamType::Boolean, "Return previous terminated container logs. Defaults to false."),
    q("sinceSeconds", ParamType::Integer, "A relative time in seconds before the current time from which to show logs."),
    q("tailLines", ParamType::Integer, "If set, the number of lines from the end of the logs to show."),
    q("timestamps", ParamType::Boolean, "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line of log output. Defaults to false."),
];

fn render_param(spec: Spec, p: &QueryParam) -> Value {
    let mut obj = Map::new();
    obj.insert("name".into(), p.name.into());
    obj.insert("in".into(), "query".into());
    obj.insert("description".into(), p.description.into());
    let ty = p.ty.name();
    match spec {
        Spec::V2 => {
            obj.insert("type".into(), ty.into());
            obj.insert("uniqueItems".into(), true.into());
        }
        Spec::V3 => {
            obj.insert("schema".into(), json!({"type": ty, "uniqueItems": true}));
        }
    }
    Value::Object(obj)
}

fn path_param(spec: Spec, name: &str, description: String) -> Value {
    match spec {
        Spec::V2 => json!({
            "name": name, "in": "path", "description": description, "required": true,
            "type": "string", "uniqueItems": true,
        }),
        Spec::V3 => json!({
            "name": name, "in": "path", "description": description, "required": true,
            "schema": {"type": "string", "uniqueItems": true},
        }),
    }
}

/// What an operation's request body is.
#[derive(Debug, Clone)]
enum Body {
    None,
    Schema(String),
    Patch,
}

/// One operation before rendering.
#[derive(Debug, Clone)]
struct Op {
    method: &'static str,
    action: &'static str,
    id: String,
    description: String,
    gvk: (String, String, String),
    params: Vec<QueryParam>,
    body: Body,
    /// (status code, response schema name or `None` for a plain string body).
    responses: Vec<(&'static str, Option<String>)>,
}

fn response_text(code: &str) -> &'static str {
    match code {
        "201" => "Created",
        "202" => "Accepted",
        _ => "OK",
    }
}

impl Op {
    fn render(&self, spec: Spec, tag: &str) -> Value {
        let mut op = Map::new();
        op.insert("tags".into(), json!([tag]));
        op.insert("description".into(), self.description.clone().into());
        if spec == Spec::V2 {
            let consumes: Vec<&str> = match self.body {
                Body::Patch => PATCH_CONTENT_TYPES.to_vec(),
                _ => vec!["*/*"],
            };
            op.insert("consumes".into(), json!(consumes));
            let produces: &[&str] = match self.responses.first() {
                Some((_, None)) => &["text/plain", "application/json", "application/yaml"],
                _ => RESPONSE_CONTENT_TYPES,
            };
            op.insert("produces".into(), json!(produces));
            op.insert("schemes".into(), json!(["https"]));
        }
        op.insert("operationId".into(), self.id.clone().into());
        let mut params: Vec<Value> = Vec::new();
        if spec == Spec::V2 {
            match &self.body {
                Body::None => {}
                Body::Schema(name) => params.push(json!({
                    "name": "body", "in": "body", "required": true, "schema": spec.schema_ref(name),
                })),
                Body::Patch => params.push(json!({
                    "name": "body", "in": "body", "required": true, "schema": spec.schema_ref(PATCH),
                })),
            }
        }
        params.extend(self.params.iter().map(|p| render_param(spec, p)));
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        if spec == Spec::V3 {
            let content = |types: &[&str], name: &str| -> Value {
                let mut m = Map::new();
                for t in types {
                    m.insert((*t).into(), json!({"schema": spec.schema_ref(name)}));
                }
                Value::Object(m)
            };
            match &self.body {
                Body::None => {}
                Body::Schema(name) => {
                    op.insert(
                        "requestBody".into(),
                        json!({"content": content(&["*/*"], name), "required": true}),
                    );
                }
                Body::Patch => {
                    op.insert(
                        "requestBody".into(),
                        json!({"content": content(PATCH_CONTENT_TYPES, PATCH), "required": true}),
                    );
                }
            }
        }
        let mut responses = Map::new();
        for (code, schema) in &self.responses {
            let description = response_text(code);
            let rendered = match (spec, schema) {
                (Spec::V2, Some(name)) => {
                    json!({"description": description, "schema": spec.schema_ref(name)})
                }
                (Spec::V2, None) => {
                    json!({"description": description, "schema": {"type": "string"}})
                }
                (Spec::V3, Some(name)) => {
                    let mut m = Map::new();
                    for t in RESPONSE_CONTENT_TYPES {
                        m.insert((*t).into(), json!({"schema": spec.schema_ref(name)}));
                    }
                    json!({"description": description, "content": m})
                }
                (Spec::V3, None) => json!({
                    "description": description,
                    "content": {"*/*": {"schema": {"type": "string"}}},
                }),
            };
            responses.insert((*code).into(), rendered);
        }
        responses.insert("401".into(), json!({"description": "Unauthorized"}));
        op.insert("responses".into(), Value::Object(responses));
        op.insert("x-kubernetes-action".into(), self.action.into());
        let (g, v, k) = &self.gvk;
        op.insert(
            "x-kubernetes-group-version-kind".into(),
            json!({"group": g, "kind": k, "version": v}),
        );
        Value::Object(op)
    }
}

/// `rbac.authorization.k8s.io` → `RbacAuthorization`, `` → `Core`.
fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    group
        .trim_end_matches(".k8s.io")
        .split('.')
        .map(capitalize)
        .collect()
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// The tag upstream puts on a group-version's operations: `core_v1`, `rbacAuthorization_v1`.
fn tag(group: &str, version: &str) -> String {
    let camel = group_camel(group);
    let mut chars = camel.chars();
    let lower = match chars.next() {
        Some(c) => c.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    };
    format!("{lower}_{version}")
}

/// The URL prefix of a group-version: `/api/v1`, `/apis/apps/v1`.
pub(crate) fn gv_prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// Collects path items of the resources of one document.
pub(crate) struct PathsBuilder<'a> {
    spec: Spec,
    defs: &'a Definitions,
    paths: Map<String, Value>,
    /// Definition names the operations reference (roots of the schema closure).
    pub referenced: Vec<String>,
}

impl<'a> PathsBuilder<'a> {
    pub fn new(spec: Spec, defs: &'a Definitions) -> Self {
        PathsBuilder {
            spec,
            defs,
            paths: Map::new(),
            referenced: Vec::new(),
        }
    }

    pub fn finish(self) -> (Map<String, Value>, Vec<String>) {
        (self.paths, self.referenced)
    }

    fn schema_name(&self, group: &str, version: &str, kind: &str) -> String {
        self.defs
            .kind_schema(group, version, kind)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{group}.{version}.{kind}"))
    }

    fn add_path(&mut self, path: String, path_params: &[(&str, String)], ops: Vec<Op>, tag: &str) {
        if ops.is_empty() {
            return;
        }
        let mut item = Map::new();
        for op in &ops {
            for (_, schema) in &op.responses {
                if let Some(s) = schema {
                    self.referenced.push(s.clone());
                }
            }
            if let Body::Schema(s) = &op.body {
                self.referenced.push(s.clone());
            }
            item.insert(op.method.into(), op.render(self.spec, tag));
        }
        let mut params: Vec<Value> = path_params
            .iter()
            .map(|(name, desc)| path_param(self.spec, name, desc.clone()))
            .collect();
        params.push(render_param(self.spec, &PRETTY));
        item.insert("parameters".into(), Value::Array(params));
        self.paths.insert(path, Value::Object(item));
    }

    /// Adds every path of one registry resource.
    pub fn add_resource(&mut self, r: &ResourceInfo) {
        let tag = tag(r.group, r.version);
        let g = group_camel(r.group);
        let v = capitalize(r.version);
        let scope = if r.namespaced { "Namespaced" } else { "" };
        let kind = r.kind;
        let gvk = (r.group.to_string(), r.version.to_string(), kind.to_string());
        let item_schema = self.schema_name(r.group, r.version, kind);
        let list_schema = super::definitions::list_schema_name(&item_schema);
        let has = |verb: &str| r.verbs.contains(&verb);
        let prefix = gv_prefix(r.group, r.version);
        let collection = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{prefix}/{}", r.plural)
        };
        let ns_param = (
            "namespace",
            "object name and auth scope, such as for teams and projects".to_string(),
        );
        let name_param = ("name", format!("name of the {kind}"));
        let collection_params: Vec<(&str, String)> = if r.namespaced {
            vec![ns_param.clone()]
        } else {
            vec![]
        };
        let item_params: Vec<(&str, String)> = if r.namespaced {
            vec![name_param.clone(), ns_param.clone()]
        } else {
            vec![name_param.clone()]
        };
        let op = |method,
                  action,
                  id: String,
                  description: String,
                  params: &[QueryParam],
                  body,
                  responses| Op {
            method,
            action,
            id,
            description,
            gvk: gvk.clone(),
            params: params.to_vec(),
            body,
            responses,
        };
        let some = |s: &str| Some(s.to_string());

        let mut ops = Vec::new();
        if has("list") {
            ops.push(op(
                "get",
                "list",
                format!("list{g}{v}{scope}{kind}"),
                format!("list or watch objects of kind {kind}"),
                LIST_PARAMS,
                Body::None,
                vec![("200", some(&list_schema))],
            ));
        }
        if has("create") {
            ops.push(op(
                "post",
                "post",
                format!("create{g}{v}{scope}{kind}"),
                format!("create a {kind}"),
                WRITE_PARAMS,
                Body::Schema(item_schema.clone()),
                vec![
                    ("200", some(&item_schema)),
                    ("201", some(&item_schema)),
                    ("202", some(&item_schema)),
                ],
            ));
        }
        if has("deletecollection") {
            let mut params = DELETE_PARAMS.to_vec();
            params.extend_from_slice(LIST_PARAMS);
            ops.push(op(
                "delete",
                "deletecollection",
                format!("deletecollection{g}{v}{scope}{kind}"),
                format!("delete collection of {kind}"),
                &params,
                Body::Schema(DELETE_OPTIONS.into()),
                vec![("200", some(STATUS))],
            ));
        }
        self.add_path(collection.clone(), &collection_params, ops, &tag);

        if r.namespaced && has("list") {
            let all = vec![op(
                "get",
                "list",
                format!("list{g}{v}{kind}ForAllNamespaces"),
                format!("list or watch objects of kind {kind}"),
                LIST_PARAMS,
                Body::None,
                vec![("200", some(&list_schema))],
            )];
            self.add_path(format!("{prefix}/{}", r.plural), &[], all, &tag);
        }

        let item = format!("{collection}/{{name}}");
        let mut ops = Vec::new();
        if has("get") {
            ops.push(op(
                "get",
                "get",
                format!("read{g}{v}{scope}{kind}"),
                format!("read the specified {kind}"),
                &[],
                Body::None,
                vec![("200", some(&item_schema))],
            ));
        }
        if has("update") {
            ops.push(op(
                "put",
                "put",
                format!("replace{g}{v}{scope}{kind}"),
                format!("replace the specified {kind}"),
                WRITE_PARAMS,
                Body::Schema(item_schema.clone()),
                vec![("200", some(&item_schema)), ("201", some(&item_schema))],
            ));
        }
        if has("delete") {
            ops.push(op(
                "delete",
                "delete",
                format!("delete{g}{v}{scope}{kind}"),
                format!("delete a {kind}"),
                DELETE_PARAMS,
                Body::Schema(DELETE_OPTIONS.into()),
                vec![("200", some(STATUS)), ("202", some(STATUS))],
            ));
        }
        if has("patch") {
            ops.push(op(
                "patch",
                "patch",
                format!("patch{g}{v}{scope}{kind}"),
                format!("partially update the specified {kind}"),
                PATCH_PARAMS,
                Body::Patch,
                vec![("200", some(&item_schema)), ("201", some(&item_schema))],
            ));
        }
        self.add_path(item.clone(), &item_params, ops, &tag);

        for sub in r.subresources {
            let sub_name = sub.name();
            let sub_camel = capitalize(sub_name);
            let path = format!("{item}/{sub_name}");
            let (sub_gvk, sub_schema) = match sub.kind() {
                Some((sg, sv, sk)) => (
                    (sg.to_string(), sv.to_string(), sk.to_string()),
                    self.schema_name(sg, sv, sk),
                ),
                None => (gvk.clone(), item_schema.clone()),
            };
            let mk = |method,
                      action,
                      verb: &str,
                      description: String,
                      params: &[QueryParam],
                      body,
                      responses| Op {
                method,
                action,
                id: format!("{verb}{g}{v}{scope}{kind}{sub_camel}"),
                description,
                gvk: sub_gvk.clone(),
                params: params.to_vec(),
                body,
                responses,
            };
            let ops = match sub {
                Subresource::Status | Subresource::Scale | Subresource::Approval => vec![
                    mk(
                        "get",
                        "get",
                        "read",
                        format!("read {sub_name} of the specified {kind}"),
                        &[],
                        Body::None,
                        vec![("200", some(&sub_schema))],
                    ),
                    mk(
                        "put",
                        "put",
                        "replace",
                        format!("replace {sub_name} of the specified {kind}"),
                        WRITE_PARAMS,
                        Body::Schema(sub_schema.clone()),
                        vec![("200", some(&sub_schema)), ("201", some(&sub_schema))],
                    ),
                    mk(
                        "patch",
                        "patch",
                        "patch",
                        format!("partially update {sub_name} of the specified {kind}"),
                        PATCH_PARAMS,
                        Body::Patch,
                        vec![("200", some(&sub_schema)), ("201", some(&sub_schema))],
                    ),
                ],
                Subresource::Binding | Subresource::Eviction | Subresource::Token => vec![mk(
                    "post",
                    "post",
                    "create",
                    format!("create {} of a {kind}", sub_gvk.2),
                    WRITE_PARAMS,
                    Body::Schema(sub_schema.clone()),
                    vec![
                        ("200", some(&sub_schema)),
                        ("201", some(&sub_schema)),
                        ("202", some(&sub_schema)),
                    ],
                )],
                Subresource::Log => vec![mk(
                    "get",
                    "get",
                    "read",
                    format!("read log of the specified {kind}"),
                    LOG_PARAMS,
                    Body::None,
                    vec![("200", None)],
                )],
                // Streaming/proxy subresources are `connect` operations upstream; kubectl
                // does not read them from OpenAPI.
                Subresource::Exec
                | Subresource::Attach
                | Subresource::PortForward
                | Subresource::Proxy => Vec::new(),
            };
            self.add_path(path, &item_params, ops, &tag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_follow_upstream_operation_ids() {
        assert_eq!(group_camel(""), "Core");
        assert_eq!(group_camel("apps"), "Apps");
        assert_eq!(
            group_camel("rbac.authorization.k8s.io"),
            "RbacAuthorization"
        );
        assert_eq!(group_camel("networking.k8s.io"), "Networking");
        assert_eq!(
            tag("rbac.authorization.k8s.io", "v1"),
            "rbacAuthorization_v1"
        );
        assert_eq!(tag("", "v1"), "core_v1");
    }
}
