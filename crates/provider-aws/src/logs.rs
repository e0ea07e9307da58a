//! The last lines of CloudWatch Logs streams, for a failed rollout's report and
//! `recent_logs`.

use aws_sdk_cloudwatchlogs::types::OrderBy;
use staging_core::Result;

use crate::error::map_sdk_error;

/// Where a container's `awslogs` driver writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogTarget {
    pub(crate) group: String,
    /// `awslogs-stream-prefix`; streams are `PREFIX/CONTAINER/TASK_ID`.
    pub(crate) stream_prefix: Option<String>,
    pub(crate) container: String,
}

impl LogTarget {
    fn stream_of(&self, task_id: &str) -> Option<String> {
        self.stream_prefix
            .as_ref()
            .map(|p| format!("{p}/{}/{task_id}", self.container))
    }
}

/// The last `lines` lines of the streams of these tasks (written at or after `since`, in
/// milliseconds since the epoch, when given), with their times, oldest first; of the most
/// recent streams of the group when no task is known (or the driver has no stream prefix).
pub(crate) async fn tail(
    client: &aws_sdk_cloudwatchlogs::Client,
    target: &LogTarget,
    task_ids: &[String],
    lines: usize,
    since: Option<i64>,
) -> Result<Vec<(i64, String)>> {
    let mut streams: Vec<String> = task_ids
        .iter()
        .filter_map(|id| target.stream_of(id))
        .collect();
    if streams.is_empty() {
        let mut req = client
            .describe_log_streams()
            .log_group_name(&target.group)
            .limit(3);
        match &target.stream_prefix {
            Some(p) => req = req.log_stream_name_prefix(format!("{p}/{}/", target.container)),
            None => req = req.order_by(OrderBy::LastEventTime).descending(true),
        }
        let out = req
            .send()
            .await
            .map_err(|e| map_sdk_error("logs:DescribeLogStreams", e))?;
        let mut found: Vec<(i64, String)> = out
            .log_streams()
            .iter()
            .filter_map(|s| {
                Some((
                    s.last_event_timestamp.unwrap_or(0),
                    s.log_stream_name.clone()?,
                ))
            })
            .collect();
        found.sort();
        streams = found.into_iter().rev().take(3).map(|(_, n)| n).collect();
    }
    let mut events: Vec<(i64, String)> = vec![];
    for stream in streams {
        let out = client
            .get_log_events()
            .log_group_name(&target.group)
            .log_stream_name(&stream)
            .limit(lines.clamp(1, 10_000) as i32)
            .start_from_head(false)
            .set_start_time(since)
            .send()
            .await;
        let out = match out.map_err(|e| map_sdk_error("logs:GetLogEvents", e)) {
            Ok(o) => o,
            // A task that never started has no stream; the others still tell the story.
            Err(staging_core::Error::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        events.extend(
            out.events()
                .iter()
                .filter_map(|e| Some((e.timestamp.unwrap_or(0), e.message.clone()?))),
        );
    }
    events.sort_by_key(|(t, _)| *t);
    let skip = events.len().saturating_sub(lines);
    Ok(events
        .into_iter()
        .skip(skip)
        .map(|(t, m)| (t, m.trim_end().to_owned()))
        .collect())
}
