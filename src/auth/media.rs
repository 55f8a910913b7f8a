//! Signed audio links: `/audio_recordings/...?exp=UNIX&sig=…`, where `sig` is an HMAC-SHA256 (under a key
//! derived from the auth secret) of the exact path and the expiry. A link works in an `<audio>` tag (no
//! header needed), for one object only, until it expires; an unsigned, expired or altered link is refused.

use base64::Engine as _;
use ring::hmac;

/// Signs and checks audio links.
pub struct MediaSigner {
    key: hmac::Key,
}

impl std::fmt::Debug for MediaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MediaSigner(..)")
    }
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is not signed")]
    Unsigned,
    #[error("the link has expired")]
    Expired,
    #[error("the link's signature does not match")]
    Altered,
}

impl MediaSigner {
    /// Links are signed under a key of their own, derived from `secret`, so a token signature and a link
    /// signature can never stand for each other.
    pub fn new(secret: &[u8]) -> MediaSigner {
        let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), b"parley media links v1");
        MediaSigner { key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()) }
    }

    fn signature(&self, path: &str, exp: i64) -> String {
        let tag = hmac::sign(&self.key, format!("GET\n{path}\n{exp}").as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// `path` with its expiry and signature appended as a query.
    pub fn sign(&self, path: &str, exp: i64) -> String {
        format!("{path}?exp={exp}&sig={}", self.signature(path, exp))
    }

    /// Checks the `exp` and `sig` of a request for `path` at `now`.
    pub fn verify(&self, path: &str, exp: Option<&str>, sig: Option<&str>, now: i64) -> Result<(), LinkError> {
        let (Some(exp), Some(sig)) = (exp, sig) else {
            return Err(LinkError::Unsigned);
        };
        let exp: i64 = exp.parse().map_err(|_| LinkError::Altered)?;
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig).map_err(|_| LinkError::Altered)?;
        hmac::verify(&self.key, format!("GET\n{path}\n{exp}").as_bytes(), &tag).map_err(|_| LinkError::Altered)?;
        if exp < now {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(link: &str) -> (String, String) {
        let q = link.split_once('?').unwrap().1;
        let get = |k: &str| q.split('&').find_map(|p| p.strip_prefix(&format!("{k}="))).unwrap().to_string();
        (get("exp"), get("sig"))
    }

    #[test]
    fn a_link_opens_its_object_until_it_expires_and_nothing_else() {
        let s = MediaSigner::new(&[5u8; 32]);
        let path = "/audio_recordings/ada/s1/user_x.wav";
        let link = s.sign(path, 1000);
        let (exp, sig) = query(&link);
        assert_eq!(s.verify(path, Some(&exp), Some(&sig), 999), Ok(()));
        assert_eq!(s.verify(path, Some(&exp), Some(&sig), 1001), Err(LinkError::Expired));
        assert_eq!(s.verify("/audio_recordings/ada/s1/other.wav", Some(&exp), Some(&sig), 1), Err(LinkError::Altered));
        assert_eq!(s.verify(path, Some("5000"), Some(&sig), 1), Err(LinkError::Altered), "a longer expiry");
        assert_eq!(s.verify(path, None, Some(&sig), 1), Err(LinkError::Unsigned));
        assert_eq!(s.verify(path, Some(&exp), Some("!!"), 1), Err(LinkError::Altered));
        assert_eq!(MediaSigner::new(&[6u8; 32]).verify(path, Some(&exp), Some(&sig), 1), Err(LinkError::Altered));
    }
}
