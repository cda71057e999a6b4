//! `${NAME}` references to environment variables inside config values: a
//! component's `config` table and the `[auth]` secret, so secrets stay in
//! the environment, out of the file.

use std::collections::BTreeMap;

/// Why a value could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed ${{...}} in {0:?}")]
    Unclosed(String),
    #[error("environment variable {0} is not set")]
    Unset(String),
}

/// Replaces each `${NAME}` in `raw` by `env[NAME]`; `$$` is a literal `$`.
/// A missing variable or an unclosed reference is an error naming it.
pub fn expand(raw: &str, env: &BTreeMap<String, String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(reference) = after.strip_prefix('{') {
            let end = reference
                .find('}')
                .ok_or_else(|| TemplateError::Unclosed(raw.to_owned()))?;
            let name = &reference[..end];
            let value = env
                .get(name)
                .ok_or_else(|| TemplateError::Unset(name.to_owned()))?;
            out.push_str(value);
            rest = &reference[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion() {
        let env: BTreeMap<_, _> = [("A".to_owned(), "1".to_owned())].into();
        assert_eq!(expand("x${A}y", &env).unwrap(), "x1y");
        assert_eq!(expand("$$A $5", &env).unwrap(), "$A $5");
        assert_eq!(expand("${B}", &env), Err(TemplateError::Unset("B".into())));
        assert!(expand("${A", &env).is_err());
    }
}
