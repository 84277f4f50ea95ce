//! A feature's name parts (scenario, phase, source, name), shared: a verdict reads 30
//! runs of thousands of features each, and the same few hundred strings make up all of
//! their ids. Read through one [`Names`], equal parts are one allocation, and comparing
//! ids — the merge of the runs' sorted features compares them at every step — is a
//! pointer comparison wherever they are equal (strings are compared only where they
//! differ). Ordering, equality, hashing and serialization are those of the string, so a
//! `Name` from anywhere compares right with any other.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Default)]
pub struct Name(Arc<str>);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for Name {}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            std::cmp::Ordering::Equal
        } else {
            self.0.cmp(&other.0)
        }
    }
}

impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name(Arc::from(s))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        Name(Arc::from(s))
    }
}

impl From<&String> for Name {
    fn from(s: &String) -> Name {
        Name(Arc::from(s.as_str()))
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        String::deserialize(d).map(Name::from)
    }
}

/// The names read so far: each string once.
#[derive(Default)]
pub struct Names(HashSet<Name>);

impl Names {
    /// `s` as the one shared [`Name`] for it.
    pub fn get(&mut self, s: &str) -> Name {
        if let Some(n) = self.0.get(s) {
            return n.clone();
        }
        let n = Name::from(s);
        self.0.insert(n.clone());
        n
    }

    /// `n` as the shared name for its string (itself, the first time).
    pub fn share(&mut self, n: &Name) -> Name {
        if let Some(shared) = self.0.get(n.as_str()) {
            return shared.clone();
        }
        self.0.insert(n.clone());
        n.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_order_compare_and_hash_as_their_strings() {
        let mut names = Names::default();
        let (a, b) = (names.get("alpha"), Name::from("beta"));
        assert!(a < b);
        assert_eq!(a, Name::from("alpha"), "equal without being shared");
        assert_eq!(a.cmp(&Name::from("alpha")), std::cmp::Ordering::Equal);
        assert_eq!(a, "alpha");
        let hash = |x: &dyn Fn(&mut std::collections::hash_map::DefaultHasher)| {
            use std::hash::Hasher as _;
            let mut h = std::collections::hash_map::DefaultHasher::new();
            x(&mut h);
            h.finish()
        };
        use std::hash::Hash as _;
        assert_eq!(hash(&|h| a.hash(h)), hash(&|h| "alpha".hash(h)));
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"alpha\"");
        let back: Name = serde_json::from_str("\"alpha\"").unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn a_name_read_twice_is_one_allocation() {
        let mut names = Names::default();
        let (x, y) = (names.get("steps"), names.get("steps"));
        assert!(Arc::ptr_eq(&x.0, &y.0));
        let outside = Name::from("steps");
        assert!(Arc::ptr_eq(&names.share(&outside).0, &x.0));
        let fresh = Name::from("scenario");
        assert!(Arc::ptr_eq(&names.share(&fresh).0, &fresh.0));
    }
}
