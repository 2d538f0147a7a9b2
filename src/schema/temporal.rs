//! Dates and times via chrono, all at microsecond resolution like Python's `datetime`:
//!
//! | Rust | Arrow |
//! |---|---|
//! | `NaiveDate` | `date32` (days since 1970-01-01) |
//! | `NaiveTime` | `time64(us)` |
//! | `NaiveDateTime` | `timestamp(us)` |
//! | `DateTime<Utc>` | `timestamp(us, tz=UTC)` |
//! | `TimeDelta` | `duration(us)` |
//!
//! Sub-microsecond precision is truncated when writing. Values outside chrono's range, or
//! a `time64` outside one day, read as type errors.

use arrow_array::types::{
    Date32Type, DurationMicrosecondType, Time64MicrosecondType, TimestampMicrosecondType,
};
use arrow_array::{
    Array, ArrayRef, Date32Array, DurationMicrosecondArray, Time64MicrosecondArray,
    TimestampMicrosecondArray,
};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Utc};

use super::ArrowValue;
use super::util::{exact_slot, primitive_array, slot};
use crate::{Error, Result};

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

fn out_of_range(what: &str, value: impl std::fmt::Display) -> Error {
    Error::type_error(format!("{what} {value} is out of range"))
}

fn unix_epoch() -> NaiveDate {
    NaiveDate::default()
}

impl ArrowValue for NaiveDate {
    fn data_type() -> DataType {
        DataType::Date32
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        primitive_array::<Date32Type, _>(items, DataType::Date32, |date| {
            let days = date.signed_duration_since(unix_epoch()).num_days();
            i32::try_from(days).map_err(|_| out_of_range("date", date))
        })
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        let Some(a) = exact_slot::<Date32Array>(array, index, &DataType::Date32)? else {
            return Ok(None);
        };
        let days = a.value(index);
        unix_epoch()
            .checked_add_signed(TimeDelta::days(i64::from(days)))
            .map(Some)
            .ok_or_else(|| out_of_range("date32 value", days))
    }
}

impl ArrowValue for NaiveTime {
    fn data_type() -> DataType {
        DataType::Time64(TimeUnit::Microsecond)
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        primitive_array::<Time64MicrosecondType, _>(items, Self::data_type(), |time| {
            // A leap second (nanosecond >= 1e9) is folded into the last second of the day.
            let micros = i64::from(time.num_seconds_from_midnight()) * MICROS_PER_SECOND
                + i64::from(time.nanosecond().min(999_999_999) / 1_000);
            Ok(micros)
        })
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        let Some(a) = exact_slot::<Time64MicrosecondArray>(array, index, &Self::data_type())?
        else {
            return Ok(None);
        };
        let micros = a.value(index);
        if !(0..MICROS_PER_DAY).contains(&micros) {
            return Err(out_of_range("time64(us) value", micros));
        }
        let seconds = u32::try_from(micros / MICROS_PER_SECOND)
            .map_err(|_| out_of_range("time64(us) value", micros))?;
        let nanos = u32::try_from(micros % MICROS_PER_SECOND * 1_000)
            .map_err(|_| out_of_range("time64(us) value", micros))?;
        NaiveTime::from_num_seconds_from_midnight_opt(seconds, nanos)
            .map(Some)
            .ok_or_else(|| out_of_range("time64(us) value", micros))
    }
}

fn timestamp_micros(instant: DateTime<Utc>) -> Result<i64> {
    // `timestamp_micros` cannot overflow: chrono's range is far inside i64 microseconds.
    Ok(instant.timestamp_micros())
}

fn from_timestamp_micros(micros: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| out_of_range("timestamp(us) value", micros))
}

impl ArrowValue for NaiveDateTime {
    fn data_type() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, None)
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        primitive_array::<TimestampMicrosecondType, _>(items, Self::data_type(), |dt| {
            timestamp_micros(dt.and_utc())
        })
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        let Some(a) = exact_slot::<TimestampMicrosecondArray>(array, index, &Self::data_type())?
        else {
            return Ok(None);
        };
        from_timestamp_micros(a.value(index)).map(|dt| Some(dt.naive_utc()))
    }
}

impl ArrowValue for DateTime<Utc> {
    fn data_type() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        primitive_array::<TimestampMicrosecondType, _>(items, Self::data_type(), timestamp_micros)
    }

    /// Accepts any timezone: Arrow stores zoned timestamps as UTC instants, so the zone only
    /// affects display.
    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        match array.data_type() {
            DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => {}
            other => {
                return Err(Error::type_error(format!(
                    "expected a timestamp(us) column with a timezone, got {other}"
                )));
            }
        }
        let Some(a) = slot::<TimestampMicrosecondArray>(array, index, "timestamp(us)")? else {
            return Ok(None);
        };
        from_timestamp_micros(a.value(index)).map(Some)
    }
}

impl ArrowValue for TimeDelta {
    fn data_type() -> DataType {
        DataType::Duration(TimeUnit::Microsecond)
    }

    fn to_array(items: Vec<Option<Self>>) -> Result<ArrayRef> {
        primitive_array::<DurationMicrosecondType, _>(items, Self::data_type(), |delta| {
            delta
                .num_microseconds()
                .ok_or_else(|| out_of_range("duration", delta))
        })
    }

    fn from_array(array: &dyn Array, index: usize) -> Result<Option<Self>> {
        let Some(a) = exact_slot::<DurationMicrosecondArray>(array, index, &Self::data_type())?
        else {
            return Ok(None);
        };
        Ok(Some(TimeDelta::microseconds(a.value(index))))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::schema::test_support::round_trip;
    use std::sync::Arc;

    #[test]
    fn dates_round_trip() {
        let d = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        let before = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap();
        round_trip(vec![
            Some(d),
            None,
            Some(before),
            Some(NaiveDate::MIN),
            Some(NaiveDate::MAX),
        ]);
        let array =
            NaiveDate::to_array(vec![Some(NaiveDate::from_ymd_opt(1970, 1, 2).unwrap())]).unwrap();
        assert_eq!(
            array
                .as_any()
                .downcast_ref::<Date32Array>()
                .unwrap()
                .value(0),
            1
        );
    }

    #[test]
    fn times_round_trip() {
        let t = NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap();
        round_trip(vec![Some(t), None, Some(NaiveTime::MIN)]);
        let bad: ArrayRef = Arc::new(Time64MicrosecondArray::from(vec![MICROS_PER_DAY, -1]));
        assert!(NaiveTime::from_array(bad.as_ref(), 0).is_err());
        assert!(NaiveTime::from_array(bad.as_ref(), 1).is_err());
    }

    #[test]
    fn timestamps_round_trip() {
        let dt = NaiveDate::from_ymd_opt(2025, 1, 2)
            .unwrap()
            .and_hms_micro_opt(3, 4, 5, 6)
            .unwrap();
        round_trip(vec![Some(dt), None]);
        round_trip(vec![Some(dt.and_utc()), None]);
        let naive = NaiveDateTime::to_array(vec![Some(dt)]).unwrap();
        assert!(<DateTime<Utc>>::from_array(naive.as_ref(), 0).is_err());
        let zoned = <DateTime<Utc>>::to_array(vec![Some(dt.and_utc())]).unwrap();
        assert!(NaiveDateTime::from_array(zoned.as_ref(), 0).is_err());
        let huge: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![i64::MAX]));
        assert!(NaiveDateTime::from_array(huge.as_ref(), 0).is_err());
        let paris: ArrayRef =
            Arc::new(TimestampMicrosecondArray::from(vec![0]).with_timezone("Europe/Paris"));
        assert_eq!(
            <DateTime<Utc>>::from_array(paris.as_ref(), 0).unwrap(),
            Some(DateTime::UNIX_EPOCH)
        );
    }

    #[test]
    fn durations_round_trip() {
        round_trip(vec![
            Some(TimeDelta::microseconds(-1)),
            None,
            Some(TimeDelta::days(3)),
            Some(TimeDelta::microseconds(i64::MIN)),
            Some(TimeDelta::microseconds(i64::MAX)),
        ]);
        assert!(TimeDelta::to_array(vec![Some(TimeDelta::MAX)]).is_err());
    }

    #[test]
    fn wrong_units_are_errors() {
        let millis: ArrayRef = Arc::new(arrow_array::DurationMillisecondArray::from(vec![1]));
        assert!(TimeDelta::from_array(millis.as_ref(), 0).is_err());
        let date64: ArrayRef = Arc::new(arrow_array::Date64Array::from(vec![1]));
        assert!(NaiveDate::from_array(date64.as_ref(), 0).is_err());
    }
}
