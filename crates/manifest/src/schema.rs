//! The Kubernetes API schema as k8s-openapi's types define it, walked down to its leaf
//! fields, for the tests that hold the allow-list ([`crate::supported`]) and
//! docs/kubernetes-compatibility.md to it.
//!
//! k8s-openapi's types name their fields to the deserializer (`deserialize_struct`), so a
//! deserializer that fills every field it is asked for ([`Filler`]) builds a fully populated
//! object; serialized again, that object shows every field of the schema. A field a new API
//! version adds appears there without anyone listing it. (k8s-openapi's `schemars` feature
//! would give the same, at the price of a second build of the whole crate.)

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The key a filled map gets. It marks the map as a leaf: a map's keys are data (label
/// names, resource names), not fields.
const MAP_KEY: &str = "<key>";

/// Every string filled: a time stamp, since `Time` fields parse theirs.
const FILLED_STRING: &str = "2000-01-01T00:00:00Z";

/// Deeper than any pod type nests: a recursive type would never end.
const MAX_DEPTH: usize = 32;

/// The leaf field paths of `T`, Kubernetes style (`containers[*].ports[*].name`), sorted. A
/// map is a leaf (`resources.limits`), and so is a list of scalars (`command`, without
/// `[*]`).
pub(crate) fn leaves<T: DeserializeOwned + serde::Serialize>() -> Vec<String> {
    let filled = T::deserialize(Filler { depth: 0 })
        .unwrap_or_else(|e| panic!("cannot fill {}: {e}", std::any::type_name::<T>()));
    let value = serde_json::to_value(filled).expect("k8s-openapi types serialize");
    let mut out = Vec::new();
    collect(&value, String::new(), &mut out);
    out.sort();
    out.dedup();
    out
}

fn collect(value: &Value, path: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) if !map.contains_key(MAP_KEY) => {
            for (key, child) in map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                collect(child, child_path, out);
            }
        }
        Value::Array(items) => match items.first() {
            Some(item @ (Value::Object(_) | Value::Array(_))) => {
                collect(item, format!("{path}[*]"), out)
            }
            _ => out.push(path),
        },
        _ => out.push(path),
    }
}

/// A deserializer that fills every field of the type asked for: each struct field (as the
/// type's `Deserialize` names them), each option `Some`, each list one element, each map one
/// entry under [`MAP_KEY`].
struct Filler {
    depth: usize,
}

#[derive(Debug)]
struct FillError(String);

impl std::fmt::Display for FillError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FillError {}

impl de::Error for FillError {
    fn custom<M: std::fmt::Display>(message: M) -> Self {
        FillError(message.to_string())
    }
}

impl Filler {
    fn deeper(&self) -> Result<Filler, FillError> {
        if self.depth >= MAX_DEPTH {
            return Err(FillError(format!(
                "nested deeper than {MAX_DEPTH} levels (a recursive type?)"
            )));
        }
        Ok(Filler {
            depth: self.depth + 1,
        })
    }
}

/// The entries of a filled struct (its fields) or map (one [`MAP_KEY`] entry).
struct Entries {
    keys: std::iter::Copied<std::slice::Iter<'static, &'static str>>,
    depth: usize,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = FillError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, FillError> {
        match self.keys.next() {
            Some(key) => seed
                .deserialize(de::value::StrDeserializer::new(key))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, FillError> {
        seed.deserialize(Filler { depth: self.depth }.deeper()?)
    }
}

/// A list of one element.
struct OneElement(Option<Filler>);

impl<'de> SeqAccess<'de> for OneElement {
    type Error = FillError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, FillError> {
        match self.0.take() {
            Some(filler) => seed.deserialize(filler.deeper()?).map(Some),
            None => Ok(None),
        }
    }
}

impl<'de> de::Deserializer<'de> for Filler {
    type Error = FillError;

    // IntOrString and free-form JSON ask for "any": a string suits both.
    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FillError> {
        v.visit_str(FILLED_STRING)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FillError> {
        v.visit_bool(true)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FillError> {
        v.visit_i32(1)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FillError> {
        v.visit_i64(1)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FillError> {
        v.visit_f64(1.0)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FillError> {
        v.visit_str(FILLED_STRING)
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FillError> {
        v.visit_str(FILLED_STRING)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FillError> {
        v.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, FillError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FillError> {
        v.visit_seq(OneElement(Some(self)))
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FillError> {
        v.visit_map(Entries {
            keys: [MAP_KEY].iter().copied(),
            depth: self.depth,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, FillError> {
        v.visit_map(Entries {
            keys: fields.iter().copied(),
            depth: self.depth,
        })
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i128 u8 u16 u32 u64 u128 f32 char bytes byte_buf unit unit_struct
        tuple tuple_struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    #[test]
    fn leaves_of_a_pod_spec() {
        let spec = leaves::<PodSpec>();
        for expected in [
            "activeDeadlineSeconds",
            "containers[*].name",
            "containers[*].command",
            "containers[*].ports[*].containerPort",
            "containers[*].resources.limits",
            "containers[*].livenessProbe.httpGet.port",
            "nodeSelector",
            "volumes[*].emptyDir.sizeLimit",
        ] {
            assert!(spec.contains(&expected.to_string()), "{expected}");
        }
        assert!(!spec.iter().any(|l| l.contains(MAP_KEY)), "maps are leaves");
        assert!(!spec.contains(&"containers".to_string()));
        // Every field of Container, at the top.
        let container = leaves::<Container>();
        assert!(container.contains(&"env[*].valueFrom.fieldRef.fieldPath".to_string()));
        assert!(container.contains(&"args".to_string()));
    }
}
