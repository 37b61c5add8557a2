//! Parquet output: typed columns that DuckDB, pyarrow and polars read as
//! they are, plus the raw JSON.
//!
//! | column | type | from |
//! |---|---|---|
//! | `kind` | string | post, delete, like, unlike, compliance, activity |
//! | `key` | string | the natural key (as `stream-sim truth` prints it) |
//! | `time` | timestamp(ms, UTC) | activity time (`timestamp_ms`, ...): the export's order |
//! | `id` | int64 | the Post the record is about: a Post's ID, the deleted Post's, the liked Post's |
//! | `created_at` | timestamp(ms, UTC) | `created_at` (native) or `postedTime` (Activity Streams) |
//! | `user_id` | int64 | `user.id_str`, `actor.id`, a delete's `user_id_str`, an unlike's user |
//! | `screen_name` | string | `user.screen_name`, `actor.preferredUsername` |
//! | `lang` | string | `lang`, `twitter_lang` |
//! | `text` | string | the full text: `extended_tweet.full_text`, `full_text`, `text`, `long_object.body`, `body` |
//! | `retweeted_id` | int64 | `retweeted_status.id_str`; a share's object |
//! | `quoted_id` | int64 | `quoted_status_id_str` |
//! | `in_reply_to_id` | int64 | `in_reply_to_status_id_str`; `inReplyTo.link` |
//! | `raw` | string | the activity's bytes exactly as received |

use std::io::Write;
use std::sync::Arc;

use anyhow::Result;
use arrow_array::builder::{Int64Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use gapless_storage::frame::Entry;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::fields::extract;

/// Rows per record batch handed to the writer.
const BATCH_ROWS: usize = 8192;

pub fn schema() -> Arc<Schema> {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("kind", DataType::Utf8, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("time", ts.clone(), false),
        Field::new("id", DataType::Int64, true),
        Field::new("created_at", ts, true),
        Field::new("user_id", DataType::Int64, true),
        Field::new("screen_name", DataType::Utf8, true),
        Field::new("lang", DataType::Utf8, true),
        Field::new("text", DataType::Utf8, true),
        Field::new("retweeted_id", DataType::Int64, true),
        Field::new("quoted_id", DataType::Int64, true),
        Field::new("in_reply_to_id", DataType::Int64, true),
        Field::new("raw", DataType::Utf8, false),
    ]))
}

struct Builders {
    kind: StringBuilder,
    key: StringBuilder,
    time: TimestampMillisecondBuilder,
    id: Int64Builder,
    created_at: TimestampMillisecondBuilder,
    user_id: Int64Builder,
    screen_name: StringBuilder,
    lang: StringBuilder,
    text: StringBuilder,
    retweeted_id: Int64Builder,
    quoted_id: Int64Builder,
    in_reply_to_id: Int64Builder,
    raw: StringBuilder,
    rows: usize,
}

impl Builders {
    fn new() -> Builders {
        Builders {
            kind: StringBuilder::new(),
            key: StringBuilder::new(),
            time: TimestampMillisecondBuilder::new().with_timezone("UTC"),
            id: Int64Builder::new(),
            created_at: TimestampMillisecondBuilder::new().with_timezone("UTC"),
            user_id: Int64Builder::new(),
            screen_name: StringBuilder::new(),
            lang: StringBuilder::new(),
            text: StringBuilder::new(),
            retweeted_id: Int64Builder::new(),
            quoted_id: Int64Builder::new(),
            in_reply_to_id: Int64Builder::new(),
            raw: StringBuilder::new(),
            rows: 0,
        }
    }

    fn finish(&mut self, schema: &Arc<Schema>) -> Result<RecordBatch> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.kind.finish()),
            Arc::new(self.key.finish()),
            Arc::new(self.time.finish()),
            Arc::new(self.id.finish()),
            Arc::new(self.created_at.finish()),
            Arc::new(self.user_id.finish()),
            Arc::new(self.screen_name.finish()),
            Arc::new(self.lang.finish()),
            Arc::new(self.text.finish()),
            Arc::new(self.retweeted_id.finish()),
            Arc::new(self.quoted_id.finish()),
            Arc::new(self.in_reply_to_id.finish()),
            Arc::new(self.raw.finish()),
        ];
        self.rows = 0;
        Ok(RecordBatch::try_new(schema.clone(), cols)?)
    }
}

/// Builds record batches on the calling thread (parsing each line's
/// fields) and encodes and compresses them into Parquet on a second thread:
/// the two halves cost about the same, so an export keeps both cores busy.
pub struct ParquetSink<W: Write + Send + 'static> {
    tx: Option<std::sync::mpsc::SyncSender<RecordBatch>>,
    writer: Option<std::thread::JoinHandle<Result<W>>>,
    schema: Arc<Schema>,
    b: Builders,
}

impl<W: Write + Send + 'static> ParquetSink<W> {
    pub fn new(out: W, zstd_level: i32) -> Result<ParquetSink<W>> {
        let schema = schema();
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(zstd_level)?))
            .set_max_row_group_row_count(Some(64 * 1024))
            .set_created_by(format!("gapless segment-export {}", env!("CARGO_PKG_VERSION")));
        for col in ["raw", "text", "key"] {
            props = props
                .set_column_dictionary_enabled(ColumnPath::from(col), false)
                .set_column_statistics_enabled(ColumnPath::from(col), EnabledStatistics::None);
        }
        let mut writer = ArrowWriter::try_new(out, schema.clone(), Some(props.build()))?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<RecordBatch>(2);
        let handle = std::thread::Builder::new().name("parquet-writer".into()).spawn(move || -> Result<W> {
            for batch in rx {
                writer.write(&batch)?;
            }
            // Writes the footer, then hands back the writer.
            Ok(writer.into_inner()?)
        })?;
        Ok(ParquetSink { tx: Some(tx), writer: Some(handle), schema, b: Builders::new() })
    }

    pub fn push(&mut self, e: &Entry, raw: &[u8]) -> Result<()> {
        let f = extract(e, raw);
        let b = &mut self.b;
        b.kind.append_value(e.kind.name());
        b.key.append_value(e.key.display());
        b.time.append_value(e.time_ms);
        b.id.append_option(f.id);
        b.created_at.append_option(f.created_at_ms);
        b.user_id.append_option(f.user_id);
        b.screen_name.append_option(f.screen_name);
        b.lang.append_option(f.lang);
        b.text.append_option(f.text);
        b.retweeted_id.append_option(f.retweeted_id);
        b.quoted_id.append_option(f.quoted_id);
        b.in_reply_to_id.append_option(f.in_reply_to_id);
        // Stored lines were checked to be UTF-8 when classified.
        b.raw.append_value(String::from_utf8_lossy(raw));
        b.rows += 1;
        if b.rows >= BATCH_ROWS {
            self.send_batch()?;
        }
        Ok(())
    }

    fn send_batch(&mut self) -> Result<()> {
        if self.b.rows == 0 {
            return Ok(());
        }
        let batch = self.b.finish(&self.schema)?;
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(batch).is_ok());
        if !sent {
            // The writer stopped: its error says why.
            self.tx = None;
            return Err(self.join().err().unwrap_or_else(|| anyhow::anyhow!("the Parquet writer stopped")));
        }
        Ok(())
    }

    fn join(&mut self) -> Result<W> {
        self.tx = None;
        match self.writer.take() {
            Some(h) => h.join().map_err(|_| anyhow::anyhow!("the Parquet writer panicked"))?,
            None => Err(anyhow::anyhow!("the Parquet writer is gone")),
        }
    }

    /// Writes the last batch and the footer; returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        self.send_batch()?;
        self.join()
    }
}
