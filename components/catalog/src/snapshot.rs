//! The bundled snapshot (`data/products.json`, made up by
//! `data/generate.py`) and the dummyjson semantics applied to it: what the
//! catalog answers when neither the upstream nor the cache can.

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

use crate::query::{Order, Page, Query, Route};

const SNAPSHOT: &str = include_str!("../data/products.json");

/// The snapshot's products, parsed.
pub struct Snapshot {
    products: Vec<Map<String, Value>>,
    /// When it was generated (Unix ms): its `Age`.
    pub generated_at_ms: i64,
}

impl Snapshot {
    pub fn load() -> Self {
        Self::parse(SNAPSHOT).expect("the bundled snapshot is valid (checked by a test)")
    }

    fn parse(text: &str) -> Result<Self, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let generated = doc["generatedAt"].as_str().ok_or("no generatedAt")?;
        let generated_at_ms = corral_sdk::time::parse_timestamp(generated)?;
        let products = doc["products"]
            .as_array()
            .ok_or("no products")?
            .iter()
            .map(|p| p.as_object().cloned().ok_or("a product is not an object"))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            products,
            generated_at_ms,
        })
    }

    /// The answer to `query`, or `None` for an unknown product id.
    /// `base_url` makes the categories' `url`s.
    pub fn answer(&self, query: &Query, base_url: &str) -> Option<Value> {
        let matching: Vec<&Map<String, Value>> = match &query.route {
            Route::One(id) => {
                return self
                    .products
                    .iter()
                    .find(|p| p["id"].as_u64() == Some(*id))
                    .map(|p| Value::Object(p.clone()));
            }
            Route::Categories => return Some(self.categories(base_url)),
            Route::List => self.products.iter().collect(),
            Route::Search(q) => {
                let q = q.to_lowercase();
                let has = |p: &Map<String, Value>, field: &str| {
                    p[field]
                        .as_str()
                        .is_some_and(|text| text.to_lowercase().contains(&q))
                };
                self.products
                    .iter()
                    .filter(|p| has(p, "title") || has(p, "description"))
                    .collect()
            }
            Route::Category(slug) => self
                .products
                .iter()
                .filter(|p| p["category"].as_str() == Some(slug.as_str()))
                .collect(),
        };
        Some(paginate(matching, &query.page))
    }

    fn categories(&self, base_url: &str) -> Value {
        let mut slugs: Vec<&str> = self
            .products
            .iter()
            .filter_map(|p| p["category"].as_str())
            .collect();
        slugs.sort_unstable();
        slugs.dedup();
        let base = base_url.trim_end_matches('/');
        Value::Array(
            slugs
                .into_iter()
                .map(|slug| {
                    json!({
                        "slug": slug,
                        "name": title_case(slug),
                        "url": format!("{base}/products/category/{slug}"),
                    })
                })
                .collect(),
        )
    }
}

/// Sorts, pages and shapes a listing the way dummyjson does: `total` is
/// every match, `limit` what this page holds.
fn paginate(mut products: Vec<&Map<String, Value>>, page: &Page) -> Value {
    if let Some((field, order)) = &page.sort {
        products.sort_by(|a, b| {
            let ordering = compare(&a[field.as_str()], &b[field.as_str()]);
            match order {
                Order::Asc => ordering,
                Order::Desc => ordering.reverse(),
            }
        });
    }
    let total = products.len();
    let shown: Vec<Value> = products
        .into_iter()
        .skip(page.skip as usize)
        .take(page.limit as usize)
        .map(|p| select(p, &page.select))
        .collect();
    json!({
        "products": shown,
        "total": total,
        "skip": page.skip,
        "limit": shown.len(),
    })
}

fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// `id` and the `fields` asked for; every field when none are.
fn select(product: &Map<String, Value>, fields: &[String]) -> Value {
    if fields.is_empty() {
        return Value::Object(product.clone());
    }
    let mut out = Map::new();
    for field in std::iter::once("id").chain(fields.iter().map(String::as_str)) {
        if let Some(value) = product.get(field) {
            out.insert(field.to_owned(), value.clone());
        }
    }
    Value::Object(out)
}

/// `mens-shirts` → `Mens Shirts`.
fn title_case(slug: &str) -> String {
    slug.split('-')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<String>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Page;

    fn query(route: Route, page: impl Fn(&str) -> Option<String>) -> Query {
        Query {
            route,
            page: Page::parse(page).unwrap(),
        }
    }

    fn params<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_bundled_snapshot_is_big_enough_and_dummyjson_shaped() {
        let snapshot = Snapshot::load();
        assert!(snapshot.products.len() >= 100);
        let categories = snapshot.categories("https://dummyjson.com");
        assert!(categories.as_array().unwrap().len() >= 5);
        for product in &snapshot.products {
            for field in crate::query::FIELDS {
                assert!(product.contains_key(*field), "{field} in {product:?}");
            }
        }
        let ids: std::collections::BTreeSet<u64> = snapshot
            .products
            .iter()
            .map(|p| p["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids.len(), snapshot.products.len(), "unique ids");
    }

    #[test]
    fn listing_pages_sorts_and_selects() {
        let snapshot = Snapshot::load();
        let all = snapshot.products.len();
        let page = snapshot
            .answer(
                &query(
                    Route::List,
                    params(&[
                        ("limit", "5"),
                        ("skip", "2"),
                        ("sortBy", "price"),
                        ("order", "desc"),
                        ("select", "title,price"),
                    ]),
                ),
                "",
            )
            .unwrap();
        assert_eq!(
            (page["total"].as_u64(), page["skip"].as_u64()),
            (Some(all as u64), Some(2))
        );
        let products = page["products"].as_array().unwrap();
        assert_eq!(products.len(), 5);
        assert_eq!(page["limit"], 5);
        let prices: Vec<f64> = products
            .iter()
            .map(|p| p["price"].as_f64().unwrap())
            .collect();
        assert!(prices.windows(2).all(|w| w[0] >= w[1]), "{prices:?}");
        let keys: Vec<&String> = products[0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "price", "title"]);

        let tail = snapshot
            .answer(
                &query(Route::List, params(&[("skip", &(all - 3).to_string())])),
                "",
            )
            .unwrap();
        assert_eq!(tail["limit"], 3);
    }

    #[test]
    fn search_category_categories_and_one() {
        let snapshot = Snapshot::load();
        let found = snapshot
            .answer(&query(Route::Search("PHONE".into()), params(&[])), "")
            .unwrap();
        assert!(found["total"].as_u64().unwrap() > 0);
        for p in found["products"].as_array().unwrap() {
            let text = format!("{} {}", p["title"], p["description"]).to_lowercase();
            assert!(text.contains("phone"), "{text}");
        }
        let laptops = snapshot
            .answer(&query(Route::Category("laptops".into()), params(&[])), "")
            .unwrap();
        assert!(laptops["total"].as_u64().unwrap() > 0);
        assert!(
            laptops["products"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["category"] == "laptops")
        );
        let none = snapshot
            .answer(&query(Route::Category("nothing".into()), params(&[])), "")
            .unwrap();
        assert_eq!(none["total"], 0);
        let categories = snapshot
            .answer(&query(Route::Categories, params(&[])), "http://up/")
            .unwrap();
        assert_eq!(
            categories[0],
            json!({"slug": "beauty", "name": "Beauty", "url": "http://up/products/category/beauty"})
        );
        assert_eq!(
            snapshot
                .answer(&query(Route::One(1), params(&[])), "")
                .unwrap()["id"],
            1
        );
        assert!(
            snapshot
                .answer(&query(Route::One(99_999), params(&[])), "")
                .is_none()
        );
    }
}
