//! Cleaning up after a test or benchmark run that used Redis: every key
//! under the run's prefix goes. Best effort: a Redis that is gone has
//! nothing left to clean.

/// Deletes every key of the Redis at `url` whose name starts with `prefix`.
pub fn delete_under(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_connection() else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut conn)
        .unwrap_or_default();
    for chunk in keys.chunks(500) {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(chunk).query(&mut conn);
    }
}
