//! Recovery-job records: what is being done about the holes, so that a
//! restarted archiver resumes where a job broke off. Stored as JSON in the
//! `jobs` tree (layout in the [parent module](super)).

use serde::{Deserialize, Serialize};

use super::keys::{check_secs, job_key, stream_prefix};
use super::{corrupt, CoverageMap};
use crate::error::{Error, Result};
use crate::layout::check_label;

/// Where a recovery job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Planned, waiting for a slot (at most 2 jobs run per account) or for
    /// the connection rate limit.
    Queued,
    /// A recovery connection is open or being opened. Only these give the
    /// [`Overlay::Recovering`](super::Overlay::Recovering) overlay.
    Running,
    /// Given up (for example its range left the recovery window); kept for
    /// inspection until removed.
    Failed,
}

/// A recovery job, stored as JSON in the `jobs` tree. The holes are the
/// source of truth for what to recover; job records say what is being done
/// about them and let a restarted archiver resume where a job broke off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// From [`CoverageMap::new_job_id`]; unique within the store.
    pub id: u64,
    pub stream: String,
    /// The partition requested, or `None` for every partition (or an
    /// unpartitioned stream).
    pub partition: Option<u32>,
    /// The requested range `[start_secs, end_secs)`.
    pub start_secs: i64,
    pub end_secs: i64,
    /// Progress: everything before this is covered by the job (the start of
    /// the minute of the last activity it delivered). In
    /// `start_secs..=end_secs`.
    pub resume_secs: i64,
    pub state: JobState,
    /// Connections opened for this job so far.
    pub attempts: u32,
}

impl CoverageMap {
    /// A new job ID, unique in this store, across restarts too.
    pub fn new_job_id(&self) -> Result<u64> {
        Ok(self.db.generate_id()?)
    }

    /// Inserts or replaces the job `job.id` of `job.stream`. Not flushed
    /// (the holes, not the jobs, say what to recover).
    pub fn put_job(&self, job: &JobRecord) -> Result<()> {
        check_label(&job.stream)?;
        check_secs(&(job.start_secs..job.end_secs))?;
        if !(job.start_secs..=job.end_secs).contains(&job.resume_secs) {
            return Err(Error::BadRecord(format!(
                "job {}: resume_secs {} outside {}..={}",
                job.id, job.resume_secs, job.start_secs, job.end_secs
            )));
        }
        if job.partition == Some(0) {
            return Err(Error::BadRecord(format!("job {}: partition 0", job.id)));
        }
        let json = serde_json::to_vec(job).map_err(|e| Error::BadRecord(format!("job {}: {e}", job.id)))?;
        self.jobs.insert(job_key(&job.stream, job.id), json)?;
        Ok(())
    }

    /// The jobs of `stream`, by ID.
    pub fn jobs(&self, stream: &str) -> Result<Vec<JobRecord>> {
        check_label(stream)?;
        let mut out = Vec::new();
        for kv in self.jobs.scan_prefix(stream_prefix(stream)) {
            let (_, v) = kv?;
            let job: JobRecord =
                serde_json::from_slice(&v).map_err(|e| corrupt(format!("stream {stream}: job record: {e}")))?;
            out.push(job);
        }
        Ok(out)
    }

    /// Removes a job; `true` if it existed.
    pub fn remove_job(&self, stream: &str, id: u64) -> Result<bool> {
        check_label(stream)?;
        Ok(self.jobs.remove(job_key(stream, id))?.is_some())
    }
}
