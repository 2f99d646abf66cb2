//! The replay's progress bar: the engine reports rows read through
//! [`citywatch_engine::replay::Progress`], and the binary draws them.

use std::sync::Arc;

use citywatch_engine::replay::Progress;

/// A bar on stderr (hidden when stderr is not a terminal), filled by rows read.
#[derive(Debug)]
pub struct Bar(indicatif::ProgressBar);

impl Bar {
    /// A bar, ready for [`Progress::start`].
    pub fn shared() -> Arc<dyn Progress> {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {percent}% {msg}")
                .expect("valid template"),
        );
        Arc::new(Bar(bar))
    }
}

impl Progress for Bar {
    fn start(&self, rows: u64) {
        self.0.set_length(rows);
    }

    fn advance(&self, rows: u64) {
        self.0.inc(rows);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
