//! Query parameters of API requests.

use std::collections::HashMap;

use api_types::{
    selectors::{FieldSelector, LabelSelector},
    ApiError,
};

/// The parsed query string (last value wins, as Go's `url.Values.Get` takes the first;
/// clients never repeat these).
#[derive(Debug, Default)]
pub struct Query {
    params: HashMap<String, String>,
    dry_run_all: bool,
}

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let mut params = HashMap::new();
        let mut dry_run_all = false;
        if let Some(q) = q {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                if k == "dryRun" && v == "All" {
                    dry_run_all = true;
                }
                params
                    .entry(k.into_owned())
                    .or_insert_with(|| v.into_owned());
            }
        }
        Query {
            params,
            dry_run_all,
        }
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.params.get(k).map(String::as_str)
    }

    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("1" | "true" | "True"))
    }

    pub fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(_) if self.dry_run_all => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "unsupported dryRun value: {other:?}, supported: All"
            ))),
        }
    }

    pub fn label_selector(&self) -> Result<Option<LabelSelector>, ApiError> {
        match self.get("labelSelector").filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => LabelSelector::parse(s)
                .map(Some)
                .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}"))),
        }
    }

    pub fn field_selector(&self) -> Result<Option<FieldSelector>, ApiError> {
        match self.get("fieldSelector").filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => FieldSelector::parse(s)
                .map(Some)
                .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}"))),
        }
    }

    pub fn i64(&self, k: &str) -> Result<Option<i64>, ApiError> {
        match self.get(k).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid {k} value: {s:?}"))),
        }
    }
}
