//! Time in API objects (`metav1.Time` is a jiff timestamp in k8s-openapi).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

pub fn now() -> Time {
    // The wire format has second precision; compare like with like.
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now()))
}

/// Seconds from `t` until now (negative when `t` is in the future).
pub fn seconds_since(t: &Time) -> i64 {
    Timestamp::now().as_second() - t.0.as_second()
}
