//! Reference data the models may consult while the streams run: subscribers
//! (age, home, activation), the jurisdiction, and the names of patrol units.
//! Loaded once before the dataflow starts and shared read-only by every worker.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::event::UnitToken;
use crate::geo::Point;
use crate::jurisdiction::Jurisdiction;
use crate::pseudonym::Token;

/// One subscriber's registration data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Subscriber {
    /// Age in years, when registered.
    pub age: Option<u8>,
    /// Home position, when registered.
    pub home: Option<Point>,
    /// When the number was activated (ms since the epoch).
    pub activated_ms: Option<i64>,
}

/// Subscribers by pseudonym. Tokens are keyed HMAC outputs, well spread and
/// not choosable without the key, so the map uses a fast fixed hasher
/// (foldhash) instead of SipHash, whose protection against chosen keys is not
/// needed here: the models look a subscriber up on their hot paths.
pub type Subscribers = HashMap<Token, Subscriber, foldhash::fast::FixedState>;

/// Patrol unit names by token. The reader fills it before it sends the events
/// that mention a unit, so a model that reads it always finds the name.
#[derive(Debug, Clone, Default)]
pub struct UnitDirectory(Arc<RwLock<HashMap<UnitToken, String>>>);

impl UnitDirectory {
    /// Records a unit's name (idempotent).
    pub fn insert(&self, token: UnitToken, name: &str) {
        if self.0.read().expect("unit directory lock").contains_key(&token) {
            return;
        }
        self.0.write().expect("unit directory lock").entry(token).or_insert_with(|| name.to_owned());
    }

    /// The unit's name, or its token in hex when unknown.
    pub fn name(&self, token: UnitToken) -> String {
        self.0.read().expect("unit directory lock").get(&token).cloned().unwrap_or_else(|| format!("unit#{token:016x}"))
    }

    /// Number of units seen.
    pub fn len(&self) -> usize {
        self.0.read().expect("unit directory lock").len()
    }

    /// Whether no unit has been seen.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Everything read-only a model may consult.
#[derive(Debug, Clone)]
pub struct Reference {
    /// Subscribers by pseudonym (empty when the dataset has no subscribers table).
    pub subscribers: Arc<Subscribers>,
    /// Grids and officers.
    pub jurisdiction: Arc<Jurisdiction>,
    /// Patrol unit names.
    pub units: UnitDirectory,
}

impl Reference {
    /// Reference data with no subscribers and the default grid: for tests and demos.
    pub fn empty() -> Self {
        Reference {
            subscribers: Arc::new(Subscribers::default()),
            jurisdiction: Arc::new(Jurisdiction::default_grid(Vec::new())),
            units: UnitDirectory::default(),
        }
    }
}

/// Loads the reference tables of a dataset folder (officers, grids,
/// subscribers; each optional, the default grid without grids) for live mode.
/// Bad rows are returned as rejects, as in replay.
pub fn load(
    dir: &std::path::Path,
    pseudonymiser: &crate::pseudonym::Pseudonymiser,
) -> crate::Result<(Reference, Vec<crate::reject::Rejected>)> {
    use crate::contract::Table;
    use crate::read;
    if !dir.is_dir() {
        return Err(crate::Error::config(
            "reference folder",
            format!(
                "{} is not a folder; expected a dataset folder with grids/officers/subscribers tables",
                dir.display()
            ),
        ));
    }
    let mut rejects = Vec::new();
    let (jurisdiction, _) = load_jurisdiction(dir, &mut rejects)?;
    let subscribers = match read::locate(dir, Table::Subscribers)? {
        Some(f) => read::read_subscribers(&f, &mut pseudonymiser.clone(), &mut rejects)?,
        None => Subscribers::default(),
    };
    Ok((
        Reference {
            subscribers: Arc::new(subscribers),
            jurisdiction: Arc::new(jurisdiction),
            units: UnitDirectory::default(),
        },
        rejects,
    ))
}

/// Loads the officers and grids tables of a dataset folder into a
/// [`Jurisdiction`] (the default grid without a grids table), with the rows
/// read per table. Shared by replay and live mode.
pub fn load_jurisdiction(
    dir: &std::path::Path,
    rejects: &mut Vec<crate::reject::Rejected>,
) -> crate::Result<(Jurisdiction, std::collections::BTreeMap<crate::contract::Table, u64>)> {
    use crate::contract::Table;
    use crate::read;
    let mut rows = std::collections::BTreeMap::new();
    let officers = match read::locate(dir, Table::Officers)? {
        Some(f) => {
            rows.insert(Table::Officers, read::check(&f)?);
            read::read_officers(&f, rejects)?
        }
        None => Vec::new(),
    };
    let jurisdiction = match read::locate(dir, Table::Grids)? {
        Some(f) => {
            rows.insert(Table::Grids, read::check(&f)?);
            read::read_jurisdiction(&f, officers, rejects)?
        }
        None => Jurisdiction::default_grid(officers),
    };
    Ok((jurisdiction, rows))
}
