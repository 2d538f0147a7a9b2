//! Stream headers: the seed-derived [`RichHeader`] (the reference's `build_rich_header`,
//! which other implementations must reproduce value for value) and the
//! [`ConformanceHeader`] texts.

use std::collections::BTreeMap;

use vgi_rpc::schema::Bytes;
use vgi_rpc::{Result, RpcError};

use crate::pytext::python_float_repr;
use crate::types::{ConformanceHeader, Point, RichHeader, Status};

impl RichHeader {
    /// Builds the header for `seed` exactly as the reference does.
    ///
    /// Python integers do not overflow and `%` is a floored modulo; both are reproduced
    /// (wide intermediate arithmetic, `rem_euclid`), so negative seeds give the reference's
    /// values.
    ///
    /// # Errors
    /// `OverflowError` when a derived integer field (`7 * seed`, `seed + 2`, ...) does not
    /// fit `int64`, which the reference also cannot serialize.
    pub fn from_seed(seed: i64) -> Result<Self> {
        let s = i128::from(seed);
        let fits = |v: i128| -> Result<i64> {
            i64::try_from(v).map_err(|_| {
                RpcError::new(
                    "OverflowError",
                    format!("rich header value {v} for seed {seed} does not fit int64"),
                )
                .into()
            })
        };
        let byte = |v: i128| v.rem_euclid(256) as u8;
        let even = s.rem_euclid(2) == 0;
        let x = seed as f64;
        Ok(RichHeader {
            str_field: format!("seed-{seed}"),
            bytes_field: Bytes(vec![byte(s), byte(s + 1), byte(s + 2)]),
            int_field: fits(s * 7)?,
            float_field: x * 1.5,
            bool_field: even,
            list_of_int: vec![seed, fits(s + 1)?, fits(s + 2)?],
            list_of_str: vec![format!("item-{s}"), format!("item-{}", s + 1)],
            dict_field: BTreeMap::from([("a".to_owned(), seed), ("b".to_owned(), fits(s + 1)?)]),
            enum_field: Status::CYCLE[s.rem_euclid(3) as usize],
            nested_point: Point {
                x,
                y: (s * 2) as f64,
            },
            optional_str: even.then(|| format!("opt-{seed}")),
            optional_int: if even { None } else { Some(fits(s * 3)?) },
            optional_nested: (s.rem_euclid(3) == 0).then_some(Point { x, y: 0.0 }),
            list_of_nested: vec![Point {
                x,
                y: (s + 1) as f64,
            }],
            nested_list: vec![vec![seed, fits(s + 1)?], vec![fits(s + 2)?]],
            annotated_int32: s.rem_euclid(1000) as i32,
            annotated_float32: (x / 3.0) as f32,
            dict_str_str: BTreeMap::from([("key".to_owned(), format!("val-{seed}"))]),
        })
    }
}

impl ConformanceHeader {
    /// The header of `produce_with_header(count)`.
    pub fn producing(count: i64) -> Self {
        ConformanceHeader {
            total_expected: count,
            description: format!("producing {count} batches"),
        }
    }

    /// The header of `produce_with_header_and_logs(count)`.
    pub fn producing_with_logs(count: i64) -> Self {
        ConformanceHeader {
            total_expected: count,
            description: format!("producing {count} with logs"),
        }
    }

    /// The header of `exchange_with_header(factor)`; the factor is printed as Python
    /// prints floats (`scale by 2.0`).
    pub fn scaling(factor: f64) -> Self {
        ConformanceHeader {
            total_expected: 0,
            description: format!("scale by {}", python_float_repr(factor)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rich_header_matches_reference_for_seed_4() -> Result<()> {
        let h = RichHeader::from_seed(4)?;
        assert_eq!(h.str_field, "seed-4");
        assert_eq!(h.bytes_field, Bytes(vec![4, 5, 6]));
        assert_eq!(h.int_field, 28);
        assert_eq!(h.float_field, 6.0);
        assert!(h.bool_field);
        assert_eq!(h.list_of_int, vec![4, 5, 6]);
        assert_eq!(h.list_of_str, vec!["item-4", "item-5"]);
        assert_eq!(h.dict_field.get("b"), Some(&5));
        assert_eq!(h.enum_field, Status::Active);
        assert_eq!(h.nested_point, Point { x: 4.0, y: 8.0 });
        assert_eq!(h.optional_str.as_deref(), Some("opt-4"));
        assert_eq!(h.optional_int, None);
        assert_eq!(h.optional_nested, None);
        assert_eq!(h.nested_list, vec![vec![4, 5], vec![6]]);
        assert_eq!(h.annotated_int32, 4);
        assert_eq!(h.dict_str_str.get("key").map(String::as_str), Some("val-4"));
        Ok(())
    }

    #[test]
    fn rich_header_uses_floored_modulo() -> Result<()> {
        let h = RichHeader::from_seed(-1)?;
        assert_eq!(h.bytes_field, Bytes(vec![255, 0, 1]));
        assert_eq!(h.enum_field, Status::Closed);
        assert_eq!(h.annotated_int32, 999);
        assert!(!h.bool_field);
        assert_eq!(h.optional_int, Some(-3));
        let h = RichHeader::from_seed(3)?;
        assert_eq!(h.optional_nested, Some(Point { x: 3.0, y: 0.0 }));
        Ok(())
    }

    #[test]
    fn rich_header_refuses_int64_overflow() {
        assert!(RichHeader::from_seed(i64::MAX).is_err());
    }

    #[test]
    fn scale_header_prints_python_floats() {
        assert_eq!(ConformanceHeader::scaling(2.0).description, "scale by 2.0");
        assert_eq!(
            ConformanceHeader::scaling(1e-5).description,
            "scale by 1e-05"
        );
    }
}
