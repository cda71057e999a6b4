//! A catalog request, checked: which listing or product, and the
//! dummyjson paging and shaping parameters (`limit`, `skip`, `select`,
//! `sortBy`, `order`). Bad values are a 400 naming the parameter.
//!
//! Its canonical upstream path ([`Query::upstream_path`]) is also its cache
//! key, so two spellings of the same request share one entry.

use corral_sdk::http::{Error, Request};

/// Default page size, as dummyjson's.
pub const DEFAULT_LIMIT: u32 = 30;
/// Largest page a client may ask for.
pub const MAX_LIMIT: u32 = 100;
/// Longest search text.
const MAX_Q: usize = 100;

/// Every field of a product (what `select` may name).
pub const FIELDS: &[&str] = &[
    "id",
    "title",
    "description",
    "category",
    "price",
    "discountPercentage",
    "rating",
    "stock",
    "tags",
    "brand",
    "sku",
    "weight",
    "dimensions",
    "warrantyInformation",
    "shippingInformation",
    "availabilityStatus",
    "reviews",
    "returnPolicy",
    "minimumOrderQuantity",
    "meta",
    "images",
    "thumbnail",
];

/// The fields `sortBy` may name: the ones with one comparable value.
pub const SORTABLE: &[&str] = &[
    "id",
    "title",
    "description",
    "category",
    "price",
    "discountPercentage",
    "rating",
    "stock",
    "brand",
    "sku",
    "weight",
    "warrantyInformation",
    "shippingInformation",
    "availabilityStatus",
    "returnPolicy",
    "minimumOrderQuantity",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /products`
    List,
    /// `GET /products/search?q=`
    Search(String),
    /// `GET /products/category/{slug}`
    Category(String),
    /// `GET /products/categories`
    Categories,
    /// `GET /products/{id}`
    One(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// Paging and shaping of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub skip: u32,
    /// Fields to keep besides `id`; empty: all.
    pub select: Vec<String>,
    pub sort: Option<(String, Order)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub route: Route,
    pub page: Page,
}

fn bad(field: &str, message: String) -> Error {
    Error::bad_request("invalid_parameter", message).with_field(field)
}

impl Query {
    /// Reads the route from `request.path` (under `/products`) and its
    /// parameters from the query string.
    pub fn parse(request: &Request) -> Result<Self, Error> {
        let Some(segments) = request.segments_after("/products") else {
            return Err(Error::not_found(&request.path));
        };
        let route = match segments.as_slice() {
            [] => Route::List,
            ["search"] => {
                let q = request.required_query_param("q")?;
                if q.chars().count() > MAX_Q {
                    return Err(bad("q", format!("q is longer than {MAX_Q} characters")));
                }
                Route::Search(q)
            }
            ["categories"] => Route::Categories,
            ["category", slug] => {
                let valid = !slug.is_empty()
                    && slug.len() <= 64
                    && slug
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !valid {
                    return Err(bad(
                        "category",
                        format!("{slug:?} is not a category slug (a-z, 0-9, '-')"),
                    ));
                }
                Route::Category((*slug).to_owned())
            }
            [id] => match id.parse::<u64>() {
                Ok(id) if id > 0 => Route::One(id),
                _ => return Err(bad("id", format!("{id:?} is not a product id"))),
            },
            _ => return Err(Error::not_found(&request.path)),
        };
        let page = Page::parse(|name| request.query_param(name))?;
        Ok(Self { route, page })
    }

    /// The path and query to ask the upstream, in one canonical spelling.
    pub fn upstream_path(&self) -> String {
        match &self.route {
            Route::Categories => "/products/categories".to_owned(),
            Route::One(id) => format!("/products/{id}"),
            Route::List => format!("/products?{}", self.page.query()),
            Route::Search(q) => {
                format!("/products/search?q={}&{}", encode(q), self.page.query())
            }
            Route::Category(slug) => format!("/products/category/{slug}?{}", self.page.query()),
        }
    }
}

impl Page {
    pub fn parse(param: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let number = |name: &str, default: u32, max: u32| -> Result<u32, Error> {
            let Some(text) = param(name) else {
                return Ok(default);
            };
            match text.parse::<i64>() {
                Ok(n) if n < 0 => Err(bad(name, format!("{name} must not be negative"))),
                Ok(n) if n <= i64::from(max) => Ok(n as u32),
                Ok(_) => Err(bad(name, format!("{name} must be at most {max}"))),
                Err(_) => Err(bad(
                    name,
                    format!("{name} must be a whole number, not {text:?}"),
                )),
            }
        };
        let limit = number("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
        if limit == 0 {
            return Err(bad(
                "limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let skip = number("skip", 0, 1_000_000)?;
        let mut select = Vec::new();
        if let Some(list) = param("select") {
            for field in list.split(',').map(str::trim) {
                if !FIELDS.contains(&field) {
                    return Err(bad(
                        "select",
                        format!("{field:?} is not a product field ({})", FIELDS.join(", ")),
                    ));
                }
                if field != "id" && !select.iter().any(|f| f == field) {
                    select.push(field.to_owned());
                }
            }
        }
        let order = match param("order").as_deref() {
            None | Some("asc") => Order::Asc,
            Some("desc") => Order::Desc,
            Some(other) => {
                return Err(bad(
                    "order",
                    format!("order must be asc or desc, not {other:?}"),
                ));
            }
        };
        let sort = match param("sortBy") {
            None => None,
            Some(field) if SORTABLE.contains(&field.as_str()) => Some((field, order)),
            Some(field) => {
                return Err(bad(
                    "sortBy",
                    format!(
                        "{field:?} is not a sortable field ({})",
                        SORTABLE.join(", ")
                    ),
                ));
            }
        };
        Ok(Self {
            limit,
            skip,
            select,
            sort,
        })
    }

    fn query(&self) -> String {
        let mut query = format!("limit={}&skip={}", self.limit, self.skip);
        if !self.select.is_empty() {
            query.push_str(&format!("&select={}", self.select.join(",")));
        }
        if let Some((field, order)) = &self.sort {
            let order = match order {
                Order::Asc => "asc",
                Order::Desc => "desc",
            };
            query.push_str(&format!("&sortBy={field}&order={order}"));
        }
        query
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path_and_query: &str) -> Request {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (path_and_query, None),
        };
        Request {
            method: "GET".into(),
            path: path.into(),
            query,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn parse(path: &str) -> Result<Query, Error> {
        Query::parse(&request(path))
    }

    #[test]
    fn routes_and_their_canonical_upstream_paths() {
        for (path, upstream) in [
            ("/products", "/products?limit=30&skip=0"),
            (
                "/products/?order=desc&sortBy=price&skip=5&limit=10&select=title,price,id",
                "/products?limit=10&skip=5&select=title,price&sortBy=price&order=desc",
            ),
            ("/products/7", "/products/7"),
            ("/products/categories", "/products/categories"),
            (
                "/products/category/smartphones?limit=2",
                "/products/category/smartphones?limit=2&skip=0",
            ),
            (
                "/products/search?q=red+phone%21",
                "/products/search?q=red%20phone%21&limit=30&skip=0",
            ),
        ] {
            assert_eq!(parse(path).unwrap().upstream_path(), upstream, "{path}");
        }
    }

    #[test]
    fn bad_parameters_are_400s_naming_them() {
        for (path, field) in [
            ("/products?limit=101", "limit"),
            ("/products?limit=0", "limit"),
            ("/products?limit=ten", "limit"),
            ("/products?skip=-1", "skip"),
            ("/products?select=title,secret", "select"),
            ("/products?sortBy=tags", "sortBy"),
            ("/products?sortBy=price&order=up", "order"),
            ("/products/search", "q"),
            (&format!("/products/search?q={}", "x".repeat(101)), "q"),
            ("/products/0", "id"),
            ("/products/abc", "id"),
            ("/products/category/Bad_Slug", "category"),
        ] {
            let error = parse(path).unwrap_err();
            assert_eq!(error.status, 400, "{path}");
            assert_eq!(error.field.as_deref(), Some(field), "{path}: {error}");
        }
        assert_eq!(parse("/products/1/2").unwrap_err().status, 404);
        assert_eq!(parse("/productsx").unwrap_err().status, 404);
    }
}
