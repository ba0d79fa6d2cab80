//! Record/replay cassettes: the recording layer and the replay provider.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::fingerprint::{fingerprint, mask_volatile, normalized_fingerprint};
use crate::{
    ApiKey, CallLabels, ChatRequest, ChatResponse, ChatStream, LlmClient, LlmError, Message,
    ProbeReport, StreamEvent,
};

/// One recorded exchange: a line of a cassette.
///
/// A cassette is a JSON-lines file, one exchange per line:
/// `{"fingerprint": "…", "provider": "openai", "recorded_at": "…", "labels": {…},
/// "request": {…}, "response": {…}}`, where `request` and `response` are the serde forms
/// of [`ChatRequest`] (with the model, temperature and max_tokens the client resolved)
/// and [`ChatResponse`]. Cassettes are meant to be read and edited by hand: the
/// fingerprint is recomputed from `request` on load (the stored one is informative),
/// unknown fields are errors naming the line, and empty lines and lines starting with
/// `#` or `//` are skipped. Recording never writes the API key: any occurrence of it in
/// an answer is replaced by `***`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CassetteEntry {
    /// Fingerprint of `request` when it was recorded (recomputed on load).
    #[serde(default)]
    pub fingerprint: String,
    /// The provider that answered.
    #[serde(default)]
    pub provider: String,
    /// When the exchange was recorded (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
    /// Who made the call; informative only, not used for matching.
    #[serde(default, skip_serializing_if = "is_unlabelled")]
    pub labels: CallLabels,
    /// The request, with the model and parameters the client resolved.
    pub request: ChatRequest,
    /// The answer.
    pub response: ChatResponse,
}

fn is_unlabelled(labels: &CallLabels) -> bool {
    *labels == CallLabels::default()
}

/// Replaces every occurrence of the key in `text` with `***`. Keys shorter than 8
/// characters are not real keys; replacing them would corrupt ordinary text.
fn scrub(text: String, secret: Option<&ApiKey>) -> String {
    match secret.map(ApiKey::expose) {
        Some(key) if key.len() >= 8 && text.contains(key) => text.replace(key, "***"),
        _ => text,
    }
}

/// Appends exchanges to a cassette, creating it (and its directory) at the first write.
/// Appending, not truncating, keeps what a crashed and restarted run recorded before.
struct CassetteWriter {
    path: PathBuf,
    provider: &'static str,
    secret: Option<ApiKey>,
    file: Mutex<Option<std::fs::File>>,
}

impl CassetteWriter {
    fn append(&self, request: &ChatRequest, response: &ChatResponse) -> Result<(), LlmError> {
        let mut response = response.clone();
        // Latency and cache flags describe this run, not the answer.
        response.from_cache = false;
        let entry = CassetteEntry {
            fingerprint: fingerprint(request),
            provider: self.provider.to_owned(),
            recorded_at: Some(chrono::Utc::now().to_rfc3339()),
            labels: request.options.labels.clone(),
            request: request.clone(),
            response,
        };
        let error = |message: String| LlmError::Cassette {
            path: self.path.clone(),
            message,
        };
        let line = serde_json::to_string(&entry).map_err(|e| error(e.to_string()))?;
        let mut line = scrub(line, self.secret.as_ref());
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if file.is_none() {
            if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| error(format!("cannot create its directory: {e}")))?;
            }
            *file = Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
                    .map_err(|e| error(format!("cannot open for appending: {e}")))?,
            );
        }
        let Some(handle) = file.as_mut() else {
            return Err(error("not open".into()));
        };
        handle
            .write_all(line.as_bytes())
            .and_then(|()| handle.flush())
            .map_err(|e| error(format!("cannot write: {e}")))
    }
}

/// Records every answer that reaches it to a cassette.
pub(crate) struct RecordingClient {
    inner: Arc<dyn LlmClient>,
    writer: Arc<CassetteWriter>,
}

impl RecordingClient {
    pub(crate) fn new(
        inner: Arc<dyn LlmClient>,
        path: PathBuf,
        provider: &'static str,
        secret: Option<ApiKey>,
    ) -> Self {
        Self {
            inner,
            writer: Arc::new(CassetteWriter {
                path,
                provider,
                secret,
                file: Mutex::new(None),
            }),
        }
    }
}

#[async_trait]
impl LlmClient for RecordingClient {
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let response = self.inner.chat(request.clone()).await?;
        self.writer.append(&request, &response)?;
        Ok(response)
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let stream = self.inner.chat_stream(request.clone()).await?;
        let writer = Arc::clone(&self.writer);
        Ok(stream
            .map(move |item| match item {
                Ok(StreamEvent::Done(response)) => writer
                    .append(&request, &response)
                    .map(|()| StreamEvent::Done(response)),
                other => other,
            })
            .boxed())
    }

    async fn probe(&self) -> Result<ProbeReport, LlmError> {
        self.inner.probe().await
    }
}

struct Recorded {
    line: usize,
    fingerprint: String,
    request: ChatRequest,
    response: ChatResponse,
}

/// Answers from a cassette, without network. The n-th call with a given fingerprint
/// gets the n-th answer recorded for it (the last one repeats when calls outnumber
/// answers), so concurrent identical calls get the recorded answers, each once.
///
/// A request whose exact fingerprint was not recorded is matched by its
/// [`normalized_fingerprint`] (ids, numbers, temp names and absolute paths masked), with
/// the same n-th rule: a recorded pipeline replays although its task ids, commit ids,
/// timings and directories differ from the recording's.
pub(crate) struct ReplayClient {
    path: PathBuf,
    recorded: Vec<Recorded>,
    by_fingerprint: HashMap<String, Vec<usize>>,
    by_normalized: HashMap<String, Vec<usize>>,
    served: Mutex<HashMap<String, usize>>,
}

impl ReplayClient {
    pub(crate) fn load(path: &Path) -> Result<Self, LlmError> {
        let error = |message: String| LlmError::Cassette {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read: {e}")))?;
        let mut recorded = Vec::new();
        let mut by_fingerprint: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_normalized: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("//") {
                continue;
            }
            let entry: CassetteEntry = serde_json::from_str(trimmed)
                .map_err(|e| error(format!("line {}: {e}", index + 1)))?;
            let fingerprint = fingerprint(&entry.request);
            by_fingerprint
                .entry(fingerprint.clone())
                .or_default()
                .push(recorded.len());
            by_normalized
                .entry(normalized_fingerprint(&entry.request))
                .or_default()
                .push(recorded.len());
            recorded.push(Recorded {
                line: index + 1,
                fingerprint,
                request: entry.request,
                response: entry.response,
            });
        }
        Ok(Self {
            path: path.to_owned(),
            recorded,
            by_fingerprint,
            by_normalized,
            served: Mutex::new(HashMap::new()),
        })
    }

    fn answer(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let fingerprint = fingerprint(request);
        let normalized = normalized_fingerprint(request);
        let (key, answers) = match (
            self.by_fingerprint.get(&fingerprint),
            self.by_normalized.get(&normalized),
        ) {
            (Some(answers), _) => (fingerprint, answers),
            (None, Some(answers)) => (format!("~{normalized}"), answers),
            (None, None) => {
                return Err(LlmError::ReplayMiss {
                    path: self.path.clone(),
                    summary: summary(request),
                    nearest: self.nearest(request),
                    fingerprint,
                });
            }
        };
        let turn = {
            let mut served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
            let count = served.entry(key).or_insert(0);
            let turn = *count;
            *count += 1;
            turn
        };
        let index = answers
            .get(turn)
            .or_else(|| answers.last())
            .copied()
            .unwrap_or_default();
        let recorded = self.recorded.get(index).ok_or_else(|| LlmError::Cassette {
            path: self.path.clone(),
            message: format!("internal index {index} out of range"),
        })?;
        let mut response = recorded.response.clone();
        response.latency_ms = 0;
        response.from_cache = false;
        Ok(response)
    }

    /// Describes the recorded request closest to `request` and how they differ.
    fn nearest(&self, request: &ChatRequest) -> String {
        let best = self
            .recorded
            .iter()
            .map(|recorded| (differences(&recorded.request, request), recorded))
            .min_by_key(|(diffs, recorded)| (diffs.len(), std::cmp::Reverse(recorded.line)));
        match best {
            None => "the cassette has no entries".into(),
            Some((diffs, recorded)) => format!(
                "nearest recorded request: line {} (fingerprint {}), differs in {}",
                recorded.line,
                recorded.fingerprint,
                diffs.join(", ")
            ),
        }
    }
}

fn summary(request: &ChatRequest) -> String {
    let last = request.messages.last().map_or(String::new(), |message| {
        let text = match message {
            Message::User { content }
            | Message::Assistant { content, .. }
            | Message::Tool { content, .. } => content,
        };
        let mut short: String = text.chars().take(60).collect();
        if short.len() < text.len() {
            short.push('…');
        }
        short
    });
    format!(
        "model {}, {} messages, last {:?}",
        request.model(),
        request.messages.len(),
        last
    )
}

/// The fields (and first message) in which two requests differ.
fn differences(recorded: &ChatRequest, wanted: &ChatRequest) -> Vec<String> {
    let mut diffs = Vec::new();
    if recorded.model() != wanted.model() {
        diffs.push(format!(
            "model ({} vs {})",
            recorded.model(),
            wanted.model()
        ));
    }
    if recorded.system != wanted.system {
        diffs.push("system".into());
    }
    if recorded.messages != wanted.messages {
        let first = recorded
            .messages
            .iter()
            .zip(&wanted.messages)
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| recorded.messages.len().min(wanted.messages.len()));
        let snippet = match (recorded.messages.get(first), wanted.messages.get(first)) {
            (Some(a), Some(b)) => first_difference(&message_text(a), &message_text(b)),
            _ => String::new(),
        };
        diffs.push(format!(
            "messages from [{first}] ({} recorded vs {} now){snippet}",
            recorded.messages.len(),
            wanted.messages.len()
        ));
    }
    if recorded.tools != wanted.tools || recorded.tool_choice != wanted.tool_choice {
        diffs.push("tools".into());
    }
    if recorded.response_format != wanted.response_format {
        diffs.push("response_format".into());
    }
    if recorded.options.temperature != wanted.options.temperature {
        diffs.push(format!(
            "temperature ({:?} vs {:?})",
            recorded.options.temperature, wanted.options.temperature
        ));
    }
    if recorded.options.max_tokens != wanted.options.max_tokens {
        diffs.push(format!(
            "max_tokens ({:?} vs {:?})",
            recorded.options.max_tokens, wanted.options.max_tokens
        ));
    }
    diffs
}

fn message_text(message: &Message) -> String {
    match message {
        Message::User { content } | Message::Tool { content, .. } => content.clone(),
        Message::Assistant {
            content,
            tool_calls,
        } => {
            format!(
                "{content}{}",
                serde_json::to_string(tool_calls).unwrap_or_default()
            )
        }
    }
}

/// Where two texts first differ once volatile parts are masked: `: "…recorded…" vs "…now…"`.
fn first_difference(recorded: &str, now: &str) -> String {
    let (a, b) = (mask_volatile(recorded), mask_volatile(now));
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let Some(at) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) else {
        return String::new();
    };
    let window = |text: &[char]| -> String {
        let start = at.saturating_sub(30);
        let end = (at + 50).min(text.len());
        text.get(start..end)
            .map(|s| s.iter().collect())
            .unwrap_or_default()
    };
    format!(", first at char {at}: {:?} vs {:?}", window(&a), window(&b))
}

#[async_trait]
impl LlmClient for ReplayClient {
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        self.answer(&request)
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        self.answer(&request).map(ChatResponse::into_stream)
    }

    async fn probe(&self) -> Result<ProbeReport, LlmError> {
        Ok(ProbeReport {
            provider: "replay".into(),
            endpoint: self.path.display().to_string(),
            detail: format!(
                "{} recorded exchanges, {} distinct requests",
                self.recorded.len(),
                self.by_fingerprint.len()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FinishReason;

    fn entry(user: &str, answer: &str) -> String {
        let entry = CassetteEntry {
            fingerprint: String::new(),
            provider: "openai".into(),
            recorded_at: None,
            labels: CallLabels::default(),
            request: ChatRequest::new("You review code.", user),
            response: ChatResponse {
                text: answer.into(),
                tool_calls: Vec::new(),
                usage: crate::Usage::default(),
                model: "m".into(),
                finish_reason: FinishReason::Stop,
                latency_ms: 7,
                request_id: None,
                from_cache: false,
            },
        };
        serde_json::to_string(&entry).unwrap()
    }

    #[test]
    fn a_rerun_with_new_ids_and_paths_replays_in_recorded_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        let recorded = [
            entry(
                "Review task 01a212d8-b3da-73da-b327-40156c16a274 in /tmp/.tmpAAAAAA/wt: 3 passed in 0.2s",
                "first",
            ),
            entry(
                "Review task 01a212d8-b3da-73da-b327-40156c16a275 in /tmp/.tmpAAAAAA/wt: 3 passed in 0.3s",
                "second",
            ),
        ];
        std::fs::write(&path, recorded.join("\n")).unwrap();
        let replay = ReplayClient::load(&path).unwrap();
        let rerun = |id: &str| {
            ChatRequest::new(
                "You review code.",
                format!("Review task {id} in /home/u/.agentd/worktrees/x: 3 passed in 1.9s"),
            )
        };
        let first = replay
            .answer(&rerun("0193aaaa-0000-7000-8000-000000000001"))
            .unwrap();
        let second = replay
            .answer(&rerun("0193aaaa-0000-7000-8000-000000000002"))
            .unwrap();
        assert_eq!(
            (first.text.as_str(), second.text.as_str()),
            ("first", "second")
        );

        let other = ChatRequest::new(
            "You review code.",
            "Merge task 0193aaaa-0000-7000-8000-000000000001 in /x: 3 passed in 1.9s",
        );
        assert!(
            matches!(replay.answer(&other), Err(LlmError::ReplayMiss { .. })),
            "a different word is a different request"
        );
    }
}
