//! Where an access record's `user_id` comes from: the one place.
//!
//! Only the gateway's own authentication may name the user, never a
//! header the client sent. Once it has verified a request's credentials
//! (a JWT's subject, say), it calls [`set_user`] on the request before the
//! request goes on to the component; [`user_of`] is what the access log
//! (or anything else in the host) reads. Both work through a request
//! extension, [`VerifiedUser`], that no client can set.
//!
//! The access record is written after the response, when the request
//! itself is long gone (handed to the component). So the access log puts a
//! shared [`Slot`] in the request's extensions before dispatch, and
//! `set_user` fills it in as well as inserting the extension.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use http::Request;

/// The verified subject of a request, as a request extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedUser(pub String);

/// Attributes `request` to `user`: call it once `user` is verified.
pub fn set_user<B>(request: &mut Request<B>, user: impl Into<String>) {
    let user = user.into();
    if let Some(slot) = request.extensions().get::<Slot>() {
        let _ = slot.0.user.set(user.clone());
    }
    request.extensions_mut().insert(VerifiedUser(user));
}

/// The verified user of `request`, if authentication named one.
pub fn user_of<B>(request: &Request<B>) -> Option<&str> {
    request
        .extensions()
        .get::<VerifiedUser>()
        .map(|user| user.0.as_str())
}

/// What the access log learns about a request while the rest of the host
/// has it: the verified user, and the request body bytes read.
#[derive(Debug, Default)]
pub struct Shared {
    pub user: OnceLock<String>,
    pub bytes_in: AtomicU64,
}

impl Shared {
    pub fn user(&self) -> Option<&str> {
        self.user.get().map(String::as_str)
    }

    pub fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }
}

/// The request extension through which [`set_user`] reaches [`Shared`].
#[derive(Debug, Clone)]
pub struct Slot(pub Arc<Shared>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_user_fills_the_slot_and_the_extension() {
        let shared = Arc::new(Shared::default());
        let mut request = Request::new(());
        assert_eq!(user_of(&request), None);
        request.extensions_mut().insert(Slot(shared.clone()));
        set_user(&mut request, "user-7");
        assert_eq!(user_of(&request), Some("user-7"));
        assert_eq!(shared.user(), Some("user-7"));
        // Without a slot (access log off) the extension still works.
        let mut plain = Request::new(());
        set_user(&mut plain, "u");
        assert_eq!(user_of(&plain), Some("u"));
    }
}
