//! Named values (a step's scalars, a problem's extra metrics): names borrowed from the code that
//! reports them, owned when read back from a file.

use std::borrow::Cow;

/// The name of a reported quantity: borrowed from the solver or problem that reports it, owned
/// when read back from a file.
pub type Name = Cow<'static, str>;

/// Named values (a step's scalars, a problem's extra metrics), in the order reported.
pub type Named = Vec<(Name, f64)>;

/// `names` as [`Named`] values.
pub fn named(values: Vec<(&'static str, f64)>) -> Named {
    values
        .into_iter()
        .map(|(k, v)| (Cow::Borrowed(k), v))
        .collect()
}

/// Serde for [`Named`]: a list of `[name, value]` pairs, a non-finite value as `null` (read back
/// as NaN), so the order survives and no number is lost.
pub(crate) mod named_serde {
    use super::Named;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Named, s: S) -> Result<S::Ok, S::Error> {
        let pairs: Vec<(&str, Option<f64>)> = v
            .iter()
            .map(|(k, x)| (k.as_ref(), x.is_finite().then_some(*x)))
            .collect();
        pairs.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Named, D::Error> {
        let pairs = Vec::<(String, Option<f64>)>::deserialize(d)?;
        Ok(pairs
            .into_iter()
            .map(|(k, x)| (k.into(), x.unwrap_or(f64::NAN)))
            .collect())
    }
}
