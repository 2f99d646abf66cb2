//! Arrow IPC streams from outside (an ingest body, a log record), read
//! bounded and without letting a malformed stream take the thread down.

use std::io::Cursor;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

/// Why a stream was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpcError {
    /// Not an Arrow IPC stream, a malformed one, or a schema `check` refused:
    /// the reason, in words.
    Bad(String),
    /// More rows than allowed (reading stopped there).
    TooManyRows,
}

/// The record batches of an Arrow IPC stream, at most `max_rows` rows in
/// all. `check` sees the schema before any batch is read. arrow-ipc panics on
/// some malformed streams (a buffer length past the message, found by the
/// ingest fuzzer): that is a bad stream here, not a failed thread.
pub fn read_stream(
    bytes: &[u8],
    max_rows: usize,
    check: impl FnOnce(&SchemaRef) -> Result<(), String>,
) -> Result<Vec<RecordBatch>, IpcError> {
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let reader = arrow_ipc::reader::StreamReader::try_new(Cursor::new(bytes), None)
            .map_err(|e| IpcError::Bad(format!("not an Arrow IPC stream: {e}")))?;
        check(&reader.schema()).map_err(IpcError::Bad)?;
        let mut batches = Vec::new();
        let mut rows = 0;
        for b in reader {
            let b = b.map_err(|e| IpcError::Bad(format!("bad Arrow IPC stream: {e}")))?;
            rows += b.num_rows();
            if rows > max_rows {
                return Err(IpcError::TooManyRows);
            }
            batches.push(b);
        }
        Ok(batches)
    }));
    read.unwrap_or_else(|_| Err(IpcError::Bad("bad Arrow IPC stream: the reader failed on a malformed message".into())))
}
