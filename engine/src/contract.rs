//! The input contract (documented for users in
//! `docs/input-contract.md`): which tables exist, their columns and Arrow
//! types, and the closed vocabularies of the string columns.
//!
//! This module is the single source of truth: readers validate files against
//! [`Table::columns`], the generator writes with [`Table::schema`], and the
//! docs list the same columns. Changing anything here changes a public
//! interface other people's data is written against.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};

/// One column of a contract table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Column name, exactly as in the files.
    pub name: &'static str,
    /// Arrow type.
    pub data_type: ColumnType,
    /// Whether nulls are allowed.
    pub nullable: bool,
}

/// The Arrow types the contract uses (a closed, `Copy` subset of `DataType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `uint64`
    UInt64,
    /// `uint32`
    UInt32,
    /// `uint8`
    UInt8,
    /// `int64`
    Int64,
    /// `float64`
    Float64,
    /// `utf8` (also accepted: `large_utf8`, `utf8_view` when reading)
    Utf8,
}

impl ColumnType {
    /// The Arrow type written for this column.
    pub fn arrow(self) -> DataType {
        match self {
            ColumnType::UInt64 => DataType::UInt64,
            ColumnType::UInt32 => DataType::UInt32,
            ColumnType::UInt8 => DataType::UInt8,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Utf8 => DataType::Utf8,
        }
    }

    /// The contract's name for the type, as the docs spell it.
    pub fn contract_name(self) -> &'static str {
        match self {
            ColumnType::UInt64 => "uint64",
            ColumnType::UInt32 => "uint32",
            ColumnType::UInt8 => "uint8",
            ColumnType::Int64 => "int64",
            ColumnType::Float64 => "float64",
            ColumnType::Utf8 => "utf8",
        }
    }

    /// Whether a file's Arrow type is accepted for this column. Strings may
    /// come as any of Arrow's three string layouts; numbers must match exactly
    /// (a silent cast could hide a unit mistake, e.g. seconds for milliseconds).
    pub fn accepts(self, found: &DataType) -> bool {
        match self {
            ColumnType::Utf8 => matches!(found, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View),
            other => &other.arrow() == found,
        }
    }
}

const fn col(name: &'static str, data_type: ColumnType, nullable: bool) -> Column {
    Column { name, data_type, nullable }
}

use ColumnType::*;

const CALLS: &[Column] = &[
    col("call_id", UInt64, false),
    col("event", Utf8, false),
    col("ts_ms", Int64, false),
    col("caller", Utf8, false),
    col("callee", Utf8, false),
    col("caller_lat", Float64, true),
    col("caller_lon", Float64, true),
    col("callee_lat", Float64, true),
    col("callee_lon", Float64, true),
    col("duration_s", UInt32, true),
];

const ALARMS: &[Column] = &[
    col("alarm_id", UInt64, false),
    col("ts_ms", Int64, false),
    col("category", Utf8, false),
    col("priority", UInt8, false),
    col("lat", Float64, false),
    col("lon", Float64, false),
    col("reporter", Utf8, true),
    col("suspect_number", Utf8, true),
    col("source", Utf8, false),
];

const PATROLS: &[Column] = &[
    col("unit_id", Utf8, false),
    col("ts_ms", Int64, false),
    col("lat", Float64, false),
    col("lon", Float64, false),
    col("status", Utf8, false),
    col("alarm_id", UInt64, true),
];

const SUBSCRIBERS: &[Column] = &[
    col("number", Utf8, false),
    col("age", UInt8, true),
    col("home_lat", Float64, true),
    col("home_lon", Float64, true),
    col("activated_ms", Int64, true),
];

const GRIDS: &[Column] = &[
    col("cell", Utf8, false),
    col("grid", Utf8, false),
    col("community", Utf8, false),
    col("street", Utf8, false),
    col("district", Utf8, false),
];

const OFFICERS: &[Column] =
    &[col("officer_id", Utf8, false), col("name", Utf8, false), col("role", Utf8, false), col("scope", Utf8, false)];

const DATED_WITH_STATUS: &[Column] = &[col(VALID_FROM, Int64, true), col(STATUS, Utf8, true)];

const FRAUD_LABELS: &[Column] = &[
    col("call_id", UInt64, false),
    col("caller", Utf8, false),
    col("victim", Utf8, false),
    col("loss_ts_ms", Int64, true),
];

/// The tables of a dataset folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Table {
    /// Call signalling events (`start`/`end`).
    Calls,
    /// Alarms received (110/911, sensors, apps, officers).
    Alarms,
    /// Patrol unit GPS fixes and status changes.
    Patrols,
    /// Real-name registration data (reference, optional).
    Subscribers,
    /// H3 cell -> grid/community/street/district (reference).
    Grids,
    /// Officers and their scopes (reference).
    Officers,
    /// Ground truth for fraud evaluation (`labels/fraud_calls`); never read by models.
    FraudLabels,
}

impl Table {
    /// The three event streams, in the order of their source positions (ties in event time).
    pub const STREAMS: [Table; 3] = [Table::Calls, Table::Alarms, Table::Patrols];

    /// Every table, for docs and tests.
    pub const ALL: [Table; 7] = [
        Table::Calls,
        Table::Alarms,
        Table::Patrols,
        Table::Subscribers,
        Table::Grids,
        Table::Officers,
        Table::FraudLabels,
    ];

    /// Name used in messages and rejected rows.
    pub fn name(self) -> &'static str {
        match self {
            Table::Calls => "calls",
            Table::Alarms => "alarms",
            Table::Patrols => "patrols",
            Table::Subscribers => "subscribers",
            Table::Grids => "grids",
            Table::Officers => "officers",
            Table::FraudLabels => "labels/fraud_calls",
        }
    }

    /// Path of the table inside a dataset folder, without `.parquet`:
    /// the reader accepts `<path>.parquet` or a folder `<path>/` of parts.
    pub fn path_stem(self) -> &'static str {
        self.name()
    }

    /// The contract's columns, in order.
    pub fn columns(self) -> &'static [Column] {
        match self {
            Table::Calls => CALLS,
            Table::Alarms => ALARMS,
            Table::Patrols => PATROLS,
            Table::Subscribers => SUBSCRIBERS,
            Table::Grids => GRIDS,
            Table::Officers => OFFICERS,
            Table::FraudLabels => FRAUD_LABELS,
        }
    }

    /// **(citywatch)** The optional columns a reference table may carry
    /// to version its rows ([`VALID_FROM`], [`STATUS`]); empty for the
    /// other tables. Absent from a file: every row in force for all time.
    pub fn optional_columns(self) -> &'static [Column] {
        match self {
            Table::Subscribers | Table::Officers => DATED_WITH_STATUS,
            Table::Grids => &DATED_WITH_STATUS[..1],
            _ => &[],
        }
    }

    /// The Arrow schema of this table with its optional columns (the
    /// generator's dated tables, the live reference ingest).
    pub fn schema_with_optional(self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns()
            .iter()
            .chain(self.optional_columns())
            .map(|c| Field::new(c.name, c.data_type.arrow(), c.nullable))
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// The Arrow schema a writer uses for this table.
    pub fn schema(self) -> SchemaRef {
        let fields: Vec<Field> =
            self.columns().iter().map(|c| Field::new(c.name, c.data_type.arrow(), c.nullable)).collect();
        Arc::new(Schema::new(fields))
    }
}

/// Defines a closed vocabulary of a string column: parse, print, list.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident, $column:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name { $($(#[$vmeta])* #[doc = concat!("`", $text, "`")] $variant),+ }

        impl $name {
            /// Every value, in contract order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The column this vocabulary belongs to.
            pub const COLUMN: &'static str = $column;

            /// Parses the contract's spelling (exact, lower case).
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            /// The contract's spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The accepted spellings, for error messages.
            pub fn expected() -> String {
                [$($text),+].join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// `calls.event`: a call is answered (`start`) and later released (`end`).
    CallPhase, "event" { Start = "start", End = "end" }
}

vocabulary! {
    /// `alarms.category`.
    Category, "category" {
        Burglary = "burglary",
        Theft = "theft",
        Robbery = "robbery",
        Assault = "assault",
        VehicleTheft = "vehicle_theft",
        FraudReport = "fraud_report",
        Disturbance = "disturbance",
        Traffic = "traffic",
        Fire = "fire",
        Medical = "medical",
        Other = "other",
    }
}

vocabulary! {
    /// `alarms.source`.
    AlarmSource, "source" { Hotline = "110", Sensor = "sensor", App = "app", Officer = "officer" }
}

vocabulary! {
    /// `patrols.status`.
    PatrolStatus, "status" {
        Available = "available",
        Dispatched = "dispatched",
        EnRoute = "en_route",
        OnScene = "on_scene",
        OffDuty = "off_duty",
    }
}

vocabulary! {
    /// `officers.role`: how far up the hierarchy an officer sits.
    Role, "role" { Community = "community", Station = "station", District = "district", Analyst = "analyst" }
}

vocabulary! {
    /// `subscribers.status` (optional column): a row registers the number
    /// (`active`, also when the column is absent or null) or cancels it.
    SubscriberStatus, "status" { Active = "active", Cancelled = "cancelled" }
}

vocabulary! {
    /// `officers.status` (optional column): the officer takes the post
    /// (`on_duty`, also when the column is absent or null) or leaves it.
    DutyStatus, "status" { OnDuty = "on_duty", OffDuty = "off_duty" }
}

/// **(citywatch)** The optional column that versions a reference table's
/// rows (subscribers, grids, officers): int64 ms since the epoch, from when
/// the row is in force. Absent or null: in force for all time (see
/// `docs/input-contract.md`, "Reference data that changes").
pub const VALID_FROM: &str = "valid_from_ms";

/// **(citywatch)** The optional status column of subscribers and officers
/// ([`SubscriberStatus`], [`DutyStatus`]).
pub const STATUS: &str = "status";

/// The first time: a row without [`VALID_FROM`] is in force from here.
pub const ALWAYS: i64 = i64::MIN;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabularies_round_trip() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(*c));
        }
        assert_eq!(AlarmSource::parse("110"), Some(AlarmSource::Hotline));
        assert_eq!(Category::parse("Burglary"), None, "spellings are exact");
    }

    #[test]
    fn schemas_follow_columns() {
        for t in Table::ALL {
            let s = t.schema();
            assert_eq!(s.fields().len(), t.columns().len());
            for (f, c) in s.fields().iter().zip(t.columns()) {
                assert_eq!(f.name(), c.name);
                assert_eq!(f.is_nullable(), c.nullable);
            }
        }
    }

    #[test]
    fn strings_accept_all_layouts_numbers_do_not_cast() {
        assert!(ColumnType::Utf8.accepts(&DataType::LargeUtf8));
        assert!(!ColumnType::Int64.accepts(&DataType::Int32));
        assert!(!ColumnType::UInt64.accepts(&DataType::Int64));
    }
}
