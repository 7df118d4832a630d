//! Kubernetes resource quantities (`500m`, `1.5Gi`, `129e6`, `2`), exactly enough for the
//! downward API: the kubelet reports CPU in whole millicores and memory in whole bytes,
//! both rounded up, so a quantity is kept here in nano-units (rounded up) and read back as
//! [`Quantity::milli_value`] or [`Quantity::value`].

use k8s_openapi::api::core::v1::Container;

/// The quantity `container` declares as `resources.<which>.<name>` (`which`: `limits` or
/// `requests`); `None` when it declares none, an error naming the field when it is not a
/// quantity.
pub fn declared(
    container: &Container,
    which: &str,
    name: &str,
) -> Result<Option<Quantity>, String> {
    let resources = container.resources.as_ref();
    let map = match which {
        "limits" => resources.and_then(|r| r.limits.as_ref()),
        _ => resources.and_then(|r| r.requests.as_ref()),
    };
    match map.and_then(|m| m.get(name)) {
        None => Ok(None),
        Some(q) => Quantity::parse(&q.0).map(Some).ok_or_else(|| {
            format!(
                "container `{}`: resources.{which}.{name}: {:?} is not a quantity",
                container.name, q.0
            )
        }),
    }
}

/// A non-negative quantity in nano-units (1 = 10⁻⁹ of the unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity {
    nanos: u128,
}

const NANO: u128 = 1_000_000_000;

/// The suffixes of Kubernetes' quantity grammar with their factor as (multiplier, divisor).
fn suffix_factor(suffix: &str) -> Option<(u128, u128)> {
    Some(match suffix {
        "" => (1, 1),
        "n" => (1, NANO),
        "u" => (1, 1_000_000),
        "m" => (1, 1_000),
        "k" => (1_000, 1),
        "M" => (1_000_000, 1),
        "G" => (NANO, 1),
        "T" => (1_000 * NANO, 1),
        "P" => (1_000_000 * NANO, 1),
        "E" => (NANO * NANO, 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        "Ti" => (1 << 40, 1),
        "Pi" => (1 << 50, 1),
        "Ei" => (1 << 60, 1),
        _ => return None,
    })
}

impl Quantity {
    /// A whole number of units.
    pub fn from_units(units: u64) -> Quantity {
        Quantity {
            nanos: u128::from(units) * NANO,
        }
    }

    /// A whole number of thousandths (millicores).
    pub fn from_millis(millis: u64) -> Quantity {
        Quantity {
            nanos: u128::from(millis) * 1_000_000,
        }
    }

    /// Parses Kubernetes' quantity syntax: a decimal number (`1`, `1.5`, `.5`, `+2`) and a
    /// binary (`Ki`…`Ei`), decimal (`n u m k M G T P E`) or exponent (`e3`, `E-2`) suffix.
    /// Negative quantities and values beyond 10¹⁸ units are refused (None): no resource of
    /// a pod is negative or that large.
    pub fn parse(text: &str) -> Option<Quantity> {
        let text = text.strip_prefix('+').unwrap_or(text);
        let number_end = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return None;
        }
        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 30 {
            return None;
        }
        let mantissa: u128 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        // value = mantissa * 10^-scale * factor
        let mut scale = fraction.len() as i32;
        let (mul, div) = match suffix_factor(suffix) {
            Some(f) => f,
            None => {
                let exponent = suffix.strip_prefix(['e', 'E'])?;
                let exponent: i32 = exponent.parse().ok()?;
                if !(-30..=30).contains(&exponent) {
                    return None;
                }
                scale -= exponent;
                (1, 1)
            }
        };
        // nanos = mantissa * mul * 10^9 / (div * 10^scale), rounded up.
        let mut numerator = mantissa.checked_mul(mul)?.checked_mul(NANO)?;
        let mut denominator = div;
        if scale >= 0 {
            denominator = denominator.checked_mul(10u128.checked_pow(scale as u32)?)?;
        } else {
            numerator = numerator.checked_mul(10u128.checked_pow((-scale) as u32)?)?;
        }
        let nanos = numerator.div_ceil(denominator);
        (nanos <= NANO * NANO * NANO).then_some(Quantity { nanos })
    }

    /// Whole thousandths, rounded up (Kubernetes' `MilliValue`).
    pub fn milli_value(self) -> u128 {
        self.nanos.div_ceil(1_000_000)
    }

    /// Whole units, rounded up (Kubernetes' `Value`).
    pub fn value(self) -> u128 {
        self.nanos.div_ceil(NANO)
    }

    pub fn is_zero(self) -> bool {
        self.nanos == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Quantity {
        Quantity::parse(text).unwrap_or_else(|| panic!("{text} parses"))
    }

    #[test]
    fn kubernetes_quantities() {
        assert_eq!(q("500m").milli_value(), 500);
        assert_eq!(q("500m").value(), 1, "rounded up");
        assert_eq!(q("2").milli_value(), 2000);
        assert_eq!(q("0.25").milli_value(), 250);
        assert_eq!(q(".5").milli_value(), 500);
        assert_eq!(q("1.5Gi").value(), 1_610_612_736);
        assert_eq!(q("123Mi").value(), 128_974_848);
        assert_eq!(q("129M").value(), 129_000_000);
        assert_eq!(q("129e6").value(), 129_000_000);
        assert_eq!(q("12E-1").milli_value(), 1200);
        assert_eq!(q("64Ki").value(), 65536);
        assert_eq!(q("1E").value(), 1_000_000_000_000_000_000);
        assert_eq!(
            q("100n").milli_value(),
            1,
            "a nano-core rounds up to a millicore"
        );
        assert_eq!(q("+1k").value(), 1000);
        assert_eq!(q("0").value(), 0);
        assert_eq!(q("1m").value(), 1);
        assert_eq!(Quantity::from_millis(1500), q("1.5"));
        assert_eq!(Quantity::from_units(3), q("3"));
    }

    #[test]
    fn not_quantities() {
        for bad in [
            "", "abc", "-1", "1.2.3", "1Mb", "Mi", ".", "1e", "1e999", "1 Mi", "0x10",
        ] {
            assert!(Quantity::parse(bad).is_none(), "{bad:?}");
        }
    }
}
