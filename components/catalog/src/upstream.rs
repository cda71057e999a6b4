//! Asking the product source (dummyjson.com or a stand-in) through the
//! host's outbound HTTP; the component's grant must allow its host.

use corral_sdk::client::ClientRequest;

use crate::query::Route;
use crate::settings::Settings;

/// What the upstream said.
pub enum Fetched {
    /// A well-formed answer, as it came.
    Body(Vec<u8>),
    /// 404: no such product.
    NotFound,
}

/// Asks the upstream for `upstream_path`. Anything but a timely 200 with
/// the JSON shape `route` expects (or a 404 for one product) is an `Err`
/// saying why: the caller falls back to the cache or the snapshot.
pub fn fetch(settings: &Settings, route: &Route, upstream_path: &str) -> Result<Fetched, String> {
    let url = format!("{}{upstream_path}", settings.upstream);
    let response = ClientRequest::get(&url)
        .timeout(settings.upstream_timeout)
        .header("accept", "application/json")
        .send()
        .map_err(|e| format!("{url}: {e}"))?;
    match response.status {
        200 => {}
        404 if matches!(route, Route::One(_)) => return Ok(Fetched::NotFound),
        status => return Err(format!("{url}: status {status}")),
    }
    check_shape(route, &response.body).map_err(|problem| format!("{url}: {problem}"))?;
    Ok(Fetched::Body(response.body))
}

/// Whether `body` is the JSON `route` answers: an array of categories, a
/// product object, or a listing with a `products` array.
pub fn check_shape(route: &Route, body: &[u8]) -> Result<(), String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let ok = match route {
        Route::Categories => value.is_array(),
        Route::One(_) => value.get("id").is_some(),
        Route::List | Route::Search(_) | Route::Category(_) => value
            .get("products")
            .is_some_and(serde_json::Value::is_array),
    };
    if ok {
        Ok(())
    } else {
        Err("JSON of the wrong shape".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert!(check_shape(&Route::Categories, b"[]").is_ok());
        assert!(check_shape(&Route::Categories, b"{}").is_err());
        assert!(check_shape(&Route::One(1), br#"{"id":1}"#).is_ok());
        assert!(check_shape(&Route::List, br#"{"products":[],"total":0}"#).is_ok());
        assert!(check_shape(&Route::List, br#"{"items":[]}"#).is_err());
        let e = check_shape(&Route::List, b"{not json").unwrap_err();
        assert!(e.contains("malformed"), "{e}");
    }
}
